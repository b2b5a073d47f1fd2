// What the matrix products (matmul.wgsl, the strided kernel, and matmul_tiled.wgsl, the tiled
// one) share: the parameter block, the bindings besides A and B, and the epilogues. Joined after
// the prelude and before each product's own file; the product declares a (binding 0), b
// (binding 1), WG_X and WG_Y.
//
// Addressing (offsets and row / column strides in f32 elements):
//   C[i, j] = c[c_off + i·c_rs + j·c_cs],  D[i, j] = d[d_off + i·d_rs + j·d_cs],
//   M[i, j] = mask[mask_off + i·mask_rs + j·mask_cs]  (only EPI_LOSS_MASKED reads M; the other
//   epilogues bind any read-only buffer there).
//
// The pipeline-overridable constant EPILOGUE chooses what a matmul does
// with each entry Y = (AB)[i, j] (the host's `Epilogue`, src/engine/gpu/pipelines.rs; a test
// checks the codes agree). The driver folds the switch away when the pipeline is compiled.
//   EPI_STORE            C = Y, or C += Y when `accumulate` is set;
//   EPI_KL_RATIO         C = D ⊘ max(Y, ε_f32)        (the KL ratio V ⊘ WH of one block);
//   EPI_MASKED           C = D ⊙ Y                    (the masked product M ⊙ WH of one block);
//   EPI_BETA_NUM         C = D ⊙ Y₁^(β−2), Y₁ = max(Y, ε_f32) for β < 2, Y else
//                        (the numerator block of the β-divergence rules, β = p.beta);
//   EPI_BETA_DEN         C = Y₂^(β−1),     Y₂ = max(Y, ε_f32) for β < 1, Y else
//                        (the denominator block; D is bound but not read, β = p.beta);
//   EPI_LOSS_FROBENIUS   partial[wg] = Σ (D − Y)²   over the tile (the host halves the sum);
//   EPI_LOSS_KL          partial[wg] = Σ D log(D / max(Y, ε)) − D + Y over the tile, with only
//                        Y counted where D ≤ ε (ε = p.eps);
//   EPI_LOSS_MASKED      partial[wg] = Σ (M ⊙ (D − Y))² over the tile (the host halves the sum);
//   EPI_LOSS_BETA        partial[wg] = Σ d_β(D | Y) over the tile, β = p.beta (β ∉ {1, 2}),
//                        with scikit-learn's guards (beta_entry in the prelude);
// the loss partials (codes from EPI_LOSS_FIRST on) are written to c[c_off + workgroup index];
// a second pass on the device (axis_sums in sums.wgsl) folds them in chunks, and only those few
// chunk sums are read back and added in f64 on the host.

const EPI_STORE: u32 = 0u;
const EPI_KL_RATIO: u32 = 1u;
const EPI_MASKED: u32 = 2u;
const EPI_BETA_NUM: u32 = 3u;
const EPI_BETA_DEN: u32 = 4u;
const EPI_LOSS_FROBENIUS: u32 = 5u;
const EPI_LOSS_KL: u32 = 6u;
const EPI_LOSS_MASKED: u32 = 7u;
const EPI_LOSS_BETA: u32 = 8u;
const EPI_LOSS_FIRST: u32 = 5u;

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
    beta: f32,
    pad1: u32,
}

@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> d: array<f32>;
@group(0) @binding(4) var<uniform> p: Gemm;
@group(0) @binding(5) var<storage, read> mask: array<f32>;

override EPILOGUE: u32 = 0u;

var<workgroup> partial: array<f32, MAX_WG>;

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

// The epilogue EPILOGUE applied to the entry Y = (AB)[row, col] of the workgroup's slice `z`:
// stores into C, or returns the entry's loss term (0 for the storing epilogues).
fn epilogue(row: u32, col: u32, z: u32, y: f32) -> f32 {
    let ci = p.c_off + z * p.c_slice + row * p.c_rs + col * p.c_cs;
    let di = p.d_off + row * p.d_rs + col * p.d_cs;
    switch EPILOGUE {
        case EPI_STORE: {
            var value = y;
            if (p.accumulate != 0u) {
                value += c[ci];
            }
            c[ci] = value;
        }
        case EPI_KL_RATIO: {
            c[ci] = d[di] / max(y, KL_GUARD);
        }
        case EPI_MASKED: {
            c[ci] = y * d[di];
        }
        case EPI_BETA_NUM: {
            c[ci] = beta_numerator(d[di], y, p.beta);
        }
        case EPI_BETA_DEN: {
            c[ci] = beta_denominator(y, p.beta);
        }
        case EPI_LOSS_FROBENIUS: {
            let r = d[di] - y;
            return r * r;
        }
        case EPI_LOSS_KL: {
            return kl_entry(d[di], y, p.eps);
        }
        case EPI_LOSS_MASKED: {
            let r = mask[p.mask_off + row * p.mask_rs + col * p.mask_cs] * (d[di] - y);
            return r * r;
        }
        case EPI_LOSS_BETA: {
            return beta_entry(d[di], y, p.beta);
        }
        default: {}
    }
    return 0.0;
}
