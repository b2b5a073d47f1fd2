// Multiplicative update of one factor, X ← X ⊙ f(N ⊘ d) with d = D + l1 + l2·X (d = 0 → eps),
// written to a second buffer (the caller swaps them) so every invocation reads the old X.
// Results below the smallest normal f32 become 0 (as on the CPU engine).
//
// side 0 (Left):  X = W (rows = m, cols = r); the component of entry (i, t) is t.
// side 1 (Right): X = H (rows = r, cols = n); the component of entry (t, j) is t.
// den 0 (Product): D = (X P)[i, t] = Σ_k X[i, k] P[k, t]   (Left)
//                  or (P X)[t, j] = Σ_k P[t, k] X[k, j]     (Right),
//                  formed here from the general (not necessarily symmetric) r x r matrix P
//                  since r is small; a Gram matrix is the symmetric case;
// den 1 (Sums):    D = s[t], a length-r vector (the KL denominators);
// den 2 (Elementwise): D = small[idx], a matrix of X's shape.
// rule 0 (Plain):  f(ρ) = ρ;  rule 1 (Sqrt): f(ρ) = √ρ;  rule 2 (Damped): f(ρ) = ½ + ½ρ.

struct Mu {
    rows: u32,
    cols: u32,
    r: u32,
    side: u32,
    den: u32,
    l1: f32,
    l2: f32,
    eps: f32,
    rule: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> num: array<f32>;
@group(0) @binding(2) var<storage, read> small: array<f32>;
@group(0) @binding(3) var<storage, read_write> x_out: array<f32>;
@group(0) @binding(4) var<uniform> p: Mu;

override WG: u32 = 256u;
// f32::MIN_POSITIVE, the smallest normal f32.
const MIN_NORMAL: f32 = 1.17549435e-38;

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
    } else if (p.den == 1u) {
        dd = small[t];
    } else {
        dd = small[idx];
    }
    let x = x_in[idx];
    var den = dd + p.l1 + p.l2 * x;
    if (den == 0.0) {
        den = p.eps;
    }
    let rho = num[idx] / den;
    var f = rho;
    if (p.rule == 1u) {
        f = sqrt(rho);
    } else if (p.rule == 2u) {
        f = 0.5 + 0.5 * rho;
    }
    let y = x * f;
    x_out[idx] = select(y, 0.0, y < MIN_NORMAL);
}
