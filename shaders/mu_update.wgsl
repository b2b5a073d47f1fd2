// Multiplicative update of one factor, X ← X ⊙ f(N ⊘ d) with d = D + l1 + l2·X (d = 0 → eps),
// written to a second buffer (the caller swaps them) so every invocation reads the old X.
// Results below the smallest normal f32 become 0 (as on the CPU engine).
//
// The mode fields of `Mu` take the codes below; the host writes them from the Rust enums
// `MuSide`, `MuDen` and `MuRuleCode` (src/engine/gpu/uniforms.rs), and a test checks that
// both sides give each name the same value.
//
// SIDE_LEFT:  X = W (rows = m, cols = r); the component of entry (i, t) is t.
// SIDE_RIGHT: X = H (rows = r, cols = n); the component of entry (t, j) is t.
// DEN_PRODUCT: D = (X P)[i, t] = Σ_k X[i, k] P[k, t]   (Left)
//              or (P X)[t, j] = Σ_k P[t, k] X[k, j]     (Right),
//              formed here from the general (not necessarily symmetric) r x r matrix P
//              since r is small; a Gram matrix is the symmetric case;
// DEN_SUMS:        D = s[t], a length-r vector (the KL denominators);
// DEN_ELEMENTWISE: D = small[idx], a matrix of X's shape.
// RULE_PLAIN: f(ρ) = ρ;  RULE_SQRT: f(ρ) = √ρ;  RULE_DAMPED: f(ρ) = ½ + ½ρ;
// RULE_POWER: f(ρ) = ρ^gamma (ρ itself when gamma = 1), the β-divergence rules.
// Results below max(floor, smallest normal f32) become 0.

const SIDE_LEFT: u32 = 0u;
const SIDE_RIGHT: u32 = 1u;
const DEN_PRODUCT: u32 = 0u;
const DEN_SUMS: u32 = 1u;
const DEN_ELEMENTWISE: u32 = 2u;
const RULE_PLAIN: u32 = 0u;
const RULE_SQRT: u32 = 1u;
const RULE_DAMPED: u32 = 2u;
const RULE_POWER: u32 = 3u;

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
    gamma: f32,
    floor: f32,
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
    let idx = flat_index(gid, nwg, WG);
    if (idx >= p.rows * p.cols) {
        return;
    }
    let i = idx / p.cols;
    let j = idx % p.cols;
    var t = j;
    if (p.side == SIDE_RIGHT) {
        t = i;
    }
    var dd = 0.0;
    if (p.den == DEN_PRODUCT) {
        if (p.side == SIDE_LEFT) {
            for (var k = 0u; k < p.r; k++) {
                dd = fma(x_in[i * p.r + k], small[k * p.r + t], dd);
            }
        } else {
            for (var k = 0u; k < p.r; k++) {
                dd = fma(small[t * p.r + k], x_in[k * p.cols + j], dd);
            }
        }
    } else if (p.den == DEN_SUMS) {
        dd = small[t];
    } else if (p.den == DEN_ELEMENTWISE) {
        dd = small[idx];
    }
    let x = x_in[idx];
    var den = dd + p.l1 + p.l2 * x;
    if (den == 0.0) {
        den = p.eps;
    }
    let rho = num[idx] / den;
    var f = rho;
    if (p.rule == RULE_SQRT) {
        f = sqrt(rho);
    } else if (p.rule == RULE_DAMPED) {
        f = 0.5 + 0.5 * rho;
    } else if (p.rule == RULE_POWER && p.gamma != 1.0) {
        f = pow(rho, p.gamma);
    }
    let y = x * f;
    x_out[idx] = select(y, 0.0, y < max(MIN_NORMAL, p.floor));
}
