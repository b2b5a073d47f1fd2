// Multiplicative update of one factor, X ← X ⊙ N ⊘ d with d = D + l1 + l2·X (d = 0 → eps),
// written to a second buffer (the caller swaps them) so every invocation reads the old X.
//
// side 0 (Left):  X = W (rows = m, cols = r); the component of entry (i, t) is t.
// side 1 (Right): X = H (rows = r, cols = n); the component of entry (t, j) is t.
// den 0 (Gram):   D = (W G)[i, t] = Σ_k W[i, k] G[k, t]   or   (K H)[t, j] = Σ_k K[t, k] H[k, j],
//                 formed here from the r x r matrix since r is small;
// den 1 (Sums):   D = s[t], a length-r vector (the KL denominators).

struct Mu {
    rows: u32,
    cols: u32,
    r: u32,
    side: u32,
    den: u32,
    l1: f32,
    l2: f32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> num: array<f32>;
@group(0) @binding(2) var<storage, read> small: array<f32>;
@group(0) @binding(3) var<storage, read_write> x_out: array<f32>;
@group(0) @binding(4) var<uniform> p: Mu;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn mu_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    if (idx >= p.rows * p.cols) {
        return;
    }
    let i = idx / p.cols;
    let j = idx % p.cols;
    var t = j;
    if (p.side != 0u) {
        t = i;
    }
    var dd = 0.0;
    if (p.den == 0u) {
        if (p.side == 0u) {
            for (var k = 0u; k < p.r; k++) {
                dd = fma(x_in[i * p.r + k], small[k * p.r + t], dd);
            }
        } else {
            for (var k = 0u; k < p.r; k++) {
                dd = fma(small[t * p.r + k], x_in[k * p.cols + j], dd);
            }
        }
    } else {
        dd = small[t];
    }
    let x = x_in[idx];
    var den = dd + p.l1 + p.l2 * x;
    if (den == 0.0) {
        den = p.eps;
    }
    x_out[idx] = x * (num[idx] / den);
}
