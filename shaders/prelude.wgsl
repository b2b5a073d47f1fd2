// The prelude: declarations every shader module shares, prepended to each module when it is
// compiled (src/engine/gpu/shaders.rs). It holds no bindings and no entry points, only the
// structs, constants and pure functions that more than one module reads.

// f32::EPSILON: the guard of the KL ratio and of the β epilogues (scikit-learn's).
const KL_GUARD: f32 = 1.1920929e-7;
// The largest workgroup any one-dimensional kernel or reduction runs (its workgroup arrays).
const MAX_WG: u32 = 256u;

// The flat index of an invocation of a one-dimensional kernel of `wg` invocations per
// workgroup, launched over a two-dimensional grid when one dimension is not enough:
//   idx = gid.x + gid.y · (nwg.x · wg).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
    return gid.x + gid.y * nwg.x * wg;
}

// `struct Sparse` of spmm.wgsl and sparse_entries.wgsl: one row panel of a CSR matrix (`rows`
// rows from `row0`), the rank, the strides of the dense operands and the output, and where the
// loss partials go; `eps` the guard of the KL ratio.
struct Sparse {
    rows: u32,
    r: u32,
    row0: u32,
    mode: u32,
    x_rs: u32,
    x_cs: u32,
    out_rs: u32,
    out_cs: u32,
    a_rs: u32,
    a_cs: u32,
    out_off: u32,
    out_stride2: u32,
    eps: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Σ_{k ≥ 2} c_k t^k with c_2 = ½, c_{k+1} = c_k (β − k) / (k + 1): the β-divergence
// d_β(1 + t | 1) = ((1 + t)^β − 1 − β t) / (β (β − 1)) (the limits at β = 0 and 1 included),
// accurate for |t| < 1/4.
fn beta_series(t: f32, beta: f32) -> f32 {
    var power = t * t;
    var coef = 0.5;
    var sum = 0.0;
    for (var k = 2u; k < 14u; k++) {
        sum += coef * power;
        power *= t;
        coef *= (beta - f32(k)) / f32(k + 1u);
    }
    return sum;
}

// One entry of scikit-learn's β-divergence (β ∉ {1, 2}) of v from wh, q = max(wh, ε):
// where v ≤ ε only the WH term counts, wh^β / β (β ≠ 0) or −1 (β = 0, scikit-learn's
// "− n·m"); elsewhere q^β d_β(v/q | 1) + (wh^β − q^β) / β (the last term only for β ≠ 0 and
// wh < ε), with d_β(x | 1) by the series near x = 1 so that nearly equal v and wh lose no
// precision to cancellation.
fn beta_entry(v: f32, wh: f32, beta: f32) -> f32 {
    if (v <= KL_GUARD) {
        if (beta == 0.0) {
            return -1.0;
        }
        var whb = 0.0;
        if (wh > 0.0) {
            whb = pow(wh, beta);
        }
        return whb / beta;
    }
    let q = max(wh, KL_GUARD);
    let x = v / q;
    let t = x - 1.0;
    var f: f32;
    if (abs(t) < 0.25) {
        f = beta_series(t, beta);
    } else if (beta == 0.0) {
        f = x - log(x) - 1.0;
    } else {
        f = (pow(x, beta) - beta * x + beta - 1.0) / (beta * (beta - 1.0));
    }
    var value = f;
    if (beta != 0.0) {
        value = pow(q, beta) * f;
        if (wh < q) {
            var whb = 0.0;
            if (wh > 0.0) {
                whb = pow(wh, beta);
            }
            value += (whb - pow(q, beta)) / beta;
        }
    }
    return value;
}

// The numerator block of the β rules: v ⊙ y^(β−2), y = max(wh, ε_f32) for β < 2, wh else.
fn beta_numerator(v: f32, wh: f32, beta: f32) -> f32 {
    var y = wh;
    if (beta < 2.0) {
        y = max(y, KL_GUARD);
    }
    var f: f32;
    if (beta == 0.0) {
        let inv = 1.0 / y;
        f = inv * inv;
    } else {
        f = pow(y, beta - 2.0);
    }
    return v * f;
}

// The denominator block of the β rules: y^(β−1), y = max(wh, ε_f32) for β < 1, wh else.
fn beta_denominator(wh: f32, beta: f32) -> f32 {
    var y = wh;
    if (beta < 1.0) {
        y = max(y, KL_GUARD);
    }
    // pow(0, e) for e > 0 is 0 (exp2 of −∞); spelled out for drivers that differ.
    var f = 0.0;
    if (y > 0.0) {
        f = pow(y, beta - 1.0);
    }
    return f;
}

// Σ_{k ≥ 2} (−1)^k x^k / (k (k − 1)) = (1 + x) log(1 + x) − x, accurate for |x| < 1/4.
fn kl_series(x: f32) -> f32 {
    var power = x * x;
    var sum = 0.0;
    var sign = 1.0;
    for (var k = 2u; k < 14u; k++) {
        sum += sign * power / f32(k * (k - 1u));
        power *= x;
        sign = -sign;
    }
    return sum;
}

// One entry of the generalised KL divergence, v log(v / q) − v + wh with q = max(wh, eps),
// written as q·[(1 + x) log(1 + x) − x] + (wh − q), x = (v − q) / q, so that nearly equal
// v and wh lose no precision to cancellation.
fn kl_entry(v: f32, wh: f32, eps: f32) -> f32 {
    if (v <= eps) {
        return wh;
    }
    let q = max(wh, eps);
    let x = (v - q) / q;
    var f: f32;
    if (abs(x) < 0.25) {
        f = q * kl_series(x);
    } else {
        f = v * log(v / q) - v + q;
    }
    return f + (wh - q);
}
