// Register-blocked matrix product C (m x n) = A (m x k) · B (k x n) and its fused epilogues.
//
// Every operand is addressed through an offset and a row and a column stride (in f32 elements),
// so AB, AᵀB and ABᵀ (and sub-blocks such as a column panel of H) are the same kernel:
//   A[i, l] = a[a_off + i·a_rs + l·a_cs],  B[l, j] = b[b_off + l·b_rs + j·b_cs],
//   C[i, j] = c[c_off + i·c_rs + j·c_cs],  D[i, j] = d[d_off + i·d_rs + j·d_cs],
//   M[i, j] = mask[mask_off + i·mask_rs + j·mask_cs]  (only matmul_loss_masked reads M).
// A workgroup of WG_X x WG_Y invocations owns a (WG_Y·TM) x (WG_X·TN) tile of C; each invocation
// accumulates TM x TN entries in registers (rows lid.y + p·WG_Y, columns lid.x + q·WG_X, so that
// neighbouring invocations read neighbouring columns of B). Edge tiles clamp their loads to the
// last row/column and skip out-of-range stores.
//
// Split over the inner dimension (for outputs too small to fill the device, e.g. Wᵀ W): the
// workgroup with z index s sums only l in [s·k_chunk, min(k, (s + 1)·k_chunk)) and writes its
// slice at c_off + s·c_slice; a second pass (slices.wgsl) adds the slices up. Without a split,
// k_chunk = k and there is one slice.
//
// Entry points:
//   matmul                 C = AB, or C += AB when `accumulate` is set;
//   matmul_kl_ratio        C = D ⊘ max(AB, ε_f32)      (the KL ratio V ⊘ WH of one block);
//   matmul_masked          C = D ⊙ AB                  (the masked product M ⊙ WH of one block);
//   matmul_beta_num        C = D ⊙ Y₁^(β−2), Y₁ = max(AB, ε_f32) for β < 2, AB else
//                          (the numerator block of the β-divergence rules, β = p.eps);
//   matmul_beta_den        C = Y₂^(β−1),     Y₂ = max(AB, ε_f32) for β < 1, AB else
//                          (the denominator block; D is bound but not read, β = p.eps);
//   matmul_loss_frobenius  partial[wg] = Σ (D − AB)²   over the tile (the host halves the sum);
//   matmul_loss_kl         partial[wg] = Σ D log(D / max(AB, eps)) − D + AB over the tile,
//                          with only AB counted where D ≤ eps;
//   matmul_loss_masked     partial[wg] = Σ (M ⊙ (D − AB))² over the tile (the host halves the sum);
//   matmul_loss_beta       partial[wg] = Σ d_β(D | AB) over the tile, β = p.eps (β ∉ {1, 2}),
//                          with scikit-learn's guards (see beta_entry);
// the loss partials are written to c[c_off + workgroup index]; a second pass on the device
// (axis_sums in sums.wgsl) folds them in chunks, and only those few chunk sums are read back and
// added in f64 on the host.

struct Gemm {
    m: u32,
    n: u32,
    k: u32,
    accumulate: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    eps: f32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    k_chunk: u32,
    c_off: u32,
    c_rs: u32,
    c_cs: u32,
    c_slice: u32,
    d_off: u32,
    d_rs: u32,
    d_cs: u32,
    mask_off: u32,
    mask_rs: u32,
    mask_cs: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> d: array<f32>;
@group(0) @binding(4) var<uniform> p: Gemm;
// Bound only for matmul_loss_masked.
@group(0) @binding(5) var<storage, read> mask: array<f32>;

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const MAX_WG: u32 = 256u;
// f32::EPSILON: the guard of the KL ratio (scikit-learn's).
const KL_GUARD: f32 = 1.1920929e-7;

var<workgroup> partial: array<f32, MAX_WG>;

fn tile_row(wg: vec3<u32>, lid: vec3<u32>, i: u32) -> u32 {
    return wg.y * WG_Y * TM + lid.y + i * WG_Y;
}

fn tile_col(wg: vec3<u32>, lid: vec3<u32>, j: u32) -> u32 {
    return wg.x * WG_X * TN + lid.x + j * WG_X;
}

// The TM x TN register block of AB owned by this invocation (row-major in the array).
fn product(wg: vec3<u32>, lid: vec3<u32>) -> array<f32, 16> {
    var acc: array<f32, 16>;
    var a_base: array<u32, 4>;
    var b_base: array<u32, 4>;
    for (var i = 0u; i < TM; i++) {
        let row = min(tile_row(wg, lid, i), p.m - 1u);
        a_base[i] = p.a_off + row * p.a_rs;
    }
    for (var j = 0u; j < TN; j++) {
        let col = min(tile_col(wg, lid, j), p.n - 1u);
        b_base[j] = p.b_off + col * p.b_cs;
    }
    let l_end = min(p.k, (wg.z + 1u) * p.k_chunk);
    for (var l = wg.z * p.k_chunk; l < l_end; l++) {
        let la = l * p.a_cs;
        let lb = l * p.b_rs;
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var i = 0u; i < TM; i++) {
            av[i] = a[a_base[i] + la];
        }
        for (var j = 0u; j < TN; j++) {
            bv[j] = b[b_base[j] + lb];
        }
        for (var i = 0u; i < TM; i++) {
            for (var j = 0u; j < TN; j++) {
                acc[i * TN + j] = fma(av[i], bv[j], acc[i * TN + j]);
            }
        }
    }
    return acc;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = product(wg, lid);
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let ci = p.c_off + wg.z * p.c_slice + row * p.c_rs + col * p.c_cs;
                var value = acc[i * TN + j];
                if (p.accumulate != 0u) {
                    value += c[ci];
                }
                c[ci] = value;
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_kl_ratio(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = product(wg, lid);
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let v = d[p.d_off + row * p.d_rs + col * p.d_cs];
                c[p.c_off + row * p.c_rs + col * p.c_cs] = v / max(acc[i * TN + j], KL_GUARD);
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_masked(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = product(wg, lid);
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let mk = d[p.d_off + row * p.d_rs + col * p.d_cs];
                c[p.c_off + row * p.c_rs + col * p.c_cs] = acc[i * TN + j] * mk;
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_beta_num(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = product(wg, lid);
    let beta = p.eps;
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let v = d[p.d_off + row * p.d_rs + col * p.d_cs];
                var y = acc[i * TN + j];
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
                c[p.c_off + row * p.c_rs + col * p.c_cs] = v * f;
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_beta_den(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = product(wg, lid);
    let beta = p.eps;
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                var y = acc[i * TN + j];
                if (beta < 1.0) {
                    y = max(y, KL_GUARD);
                }
                // pow(0, e) for e > 0 is 0 (exp2 of −∞); spelled out for drivers that differ.
                var f = 0.0;
                if (y > 0.0) {
                    f = pow(y, beta - 1.0);
                }
                c[p.c_off + row * p.c_rs + col * p.c_cs] = f;
            }
        }
    }
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

// Sum the invocations' values over the workgroup and store the total at the workgroup's slot.
fn reduce_and_store(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>, value: f32) {
    let t = lid.y * WG_X + lid.x;
    partial[t] = value;
    workgroupBarrier();
    for (var stride = (WG_X * WG_Y) / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            partial[t] += partial[t + stride];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        c[p.c_off + wg.y * nwg.x + wg.x] = partial[0];
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_loss_frobenius(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let acc = product(wg, lid);
    var sum = 0.0;
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let r = d[p.d_off + row * p.d_rs + col * p.d_cs] - acc[i * TN + j];
                sum = fma(r, r, sum);
            }
        }
    }
    reduce_and_store(wg, nwg, lid, sum);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_loss_kl(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let acc = product(wg, lid);
    var sum = 0.0;
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let v = d[p.d_off + row * p.d_rs + col * p.d_cs];
                sum += kl_entry(v, acc[i * TN + j], p.eps);
            }
        }
    }
    reduce_and_store(wg, nwg, lid, sum);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_loss_masked(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let acc = product(wg, lid);
    var sum = 0.0;
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let v = d[p.d_off + row * p.d_rs + col * p.d_cs];
                let mk = mask[p.mask_off + row * p.mask_rs + col * p.mask_cs];
                let r = mk * (v - acc[i * TN + j]);
                sum = fma(r, r, sum);
            }
        }
    }
    reduce_and_store(wg, nwg, lid, sum);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_loss_beta(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let acc = product(wg, lid);
    var sum = 0.0;
    for (var i = 0u; i < TM; i++) {
        let row = tile_row(wg, lid, i);
        for (var j = 0u; j < TN; j++) {
            let col = tile_col(wg, lid, j);
            if (row < p.m && col < p.n) {
                let v = d[p.d_off + row * p.d_rs + col * p.d_cs];
                sum += beta_entry(v, acc[i * TN + j], p.eps);
            }
        }
    }
    reduce_and_store(wg, nwg, lid, sum);
}
