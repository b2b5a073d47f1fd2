// Work at the stored entries of one row panel of a CSR matrix A (rows x q), one invocation
// per row i < rows: for each stored entry k = (i, j = col[k]) with value v = val[k], the
// model's entry  wh = Σ_t a[(row0 + i)·a_rs + t·a_cs] · b[j·x_rs + t·x_cs]  (t < r), then
// by `mode` (the codes below; the host writes them from `SparseMode` in
// src/engine/gpu/uniforms.rs, and a test checks both sides agree):
//
// MODE_KL_RATIO:  out[k] = v / max(wh, eps), the KL ratio at the stored entries (the
//                 values `spmm_rows` then multiplies: Z Hᵀ or Wᵀ Z);
// MODE_FROBENIUS: out[out_off + i] = Σ_k (v − wh)²  and
//                 out[out_off + out_stride2 + i] = Σ_k wh², the two stored-entry terms of
//                 ‖V − WH‖² = Σ_nz (v − wh)² + (⟨WᵀW, HHᵀ⟩ − Σ_nz wh²);
// MODE_KL_LOSS:   out[out_off + i] = Σ_{k: v > eps} v·log(v / max(wh, eps)) − v, the
//                 stored-entry part of the generalised KL divergence (the rest is Σ WH);
// MODE_MODEL:     out[k] = wh, the model at the stored entries (masked NMF whose mask is
//                 the pattern: `spmm_rows` then forms (P ⊙ WH) Hᵀ or Wᵀ (P ⊙ WH)).
//
// On V (CSR): a = W (a_rs = r, a_cs = 1), b = Hᵀ (n x r). On Vᵀ (CSC): a = Hᵀ, b = W.

const MODE_KL_RATIO: u32 = 0u;
const MODE_FROBENIUS: u32 = 1u;
const MODE_KL_LOSS: u32 = 2u;
const MODE_MODEL: u32 = 3u;

// struct Sparse: in the prelude (prelude.wgsl).

@group(0) @binding(0) var<storage, read> ptr: array<u32>;
@group(0) @binding(1) var<storage, read> col: array<u32>;
@group(0) @binding(2) var<storage, read> val: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> p: Sparse;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn sparse_entries(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.rows) {
        return;
    }
    let arow = (p.row0 + i) * p.a_rs;
    var s0 = 0.0;
    var s1 = 0.0;
    let end = ptr[i + 1u];
    for (var k = ptr[i]; k < end; k += 1u) {
        let brow = col[k] * p.x_rs;
        var wh = 0.0;
        for (var t = 0u; t < p.r; t += 1u) {
            wh += a[arow + t * p.a_cs] * b[brow + t * p.x_cs];
        }
        let v = val[k];
        if (p.mode == MODE_KL_RATIO) {
            out[k] = v / max(wh, p.eps);
        } else if (p.mode == MODE_MODEL) {
            out[k] = wh;
        } else if (p.mode == MODE_FROBENIUS) {
            let d = v - wh;
            s0 += d * d;
            s1 += wh * wh;
        } else if (p.mode == MODE_KL_LOSS && v > p.eps) {
            s0 += v * log(v / max(wh, p.eps)) - v;
        }
    }
    if (p.mode == MODE_FROBENIUS) {
        out[p.out_off + i] = s0;
        out[p.out_off + p.out_stride2 + i] = s1;
    } else if (p.mode == MODE_KL_LOSS) {
        out[p.out_off + i] = s0;
    }
}
