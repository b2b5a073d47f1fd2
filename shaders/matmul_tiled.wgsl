// Tiled matrix product C (m x n) = A (m x k) · B (k x n) with every fused epilogue of the engine,
// in one entry point (matmul_tiled) specialised by pipeline-overridable constants.
//
// Operands are addressed as in matmul.wgsl (offsets and row / column strides in f32 elements):
//   A[i, l] = a[a_off + i·a_rs + l·a_cs],  B[l, j] = b[b_off + l·b_rs + j·b_cs],
//   C[i, j] = c[c_off + i·c_rs + j·c_cs],  D[i, j] = d[d_off + i·d_rs + j·d_cs],
//   M[i, j] = mask[mask_off + i·mask_rs + j·mask_cs]  (read by the masked loss only).
// The layout of A and B is a pipeline constant: A_T = false means A is row-major (a_cs = 1,
// contiguous along l), A_T = true that A is the transpose of a row-major matrix (a_rs = 1,
// contiguous along i); B_T likewise (B_T = false: b_cs = 1; B_T = true: b_rs = 1). So A·B, Aᵀ·B
// and A·Bᵀ are three pipelines of this one source, and the only strides left are those of the
// tile loads, resolved once per tile.
//
// A workgroup of WG_X x WG_Y invocations owns a BM x BN tile of C, BM = WG_Y·TM, BN = WG_X·TN;
// invocation (x, y) owns the TM x TN register block at rows y·TM.., columns x·TN... The inner
// dimension is walked in steps of BK: the workgroup loads A[BM rows, BK] and B[BK, BN cols] into
// workgroup memory (4 consecutive entries along the contiguous direction per load, one vec4 load
// when the host bound the operand as vec4, i.e. its offset and leading dimension are multiples of
// 4; entries outside the matrix read as 0), then every invocation forms its block from vec4 reads
// of the staged tiles: TM/4 + TN/4 vec4 reads per TM·TN multiply-adds.
//
// The lines between "header:" and "end of header" are replaced per configuration by the host
// (tiled.rs): the tile constants, and the declaration of a and b with their load helpers
// (array<f32> with scalar loads, or array<vec4<f32>> with vec4 loads). Private and workgroup
// arrays need constant sizes, hence constants rather than overrides for the tile shape.
//
// Split over the inner dimension: the workgroup with z index s sums only l in
// [s·k_chunk, min(k, (s + 1)·k_chunk)) and stores at c_off + s·c_slice (the store epilogue); a
// second pass (slices.wgsl) adds the slices up. With vec4 operands k_chunk is a multiple of 4.
//
// The epilogues (the override EPILOGUE, codes EPI_*), the parameter block `Gemm` and the
// bindings c, d, p and mask are matmul.wgsl's, shared through gemm.wgsl: the same epilogue
// function runs on each entry (AB)[i, j] of the register block, and the loss epilogues write
// one partial per workgroup at c[c_off + workgroup index].

// header:
const WG_X: u32 = 16u;
const WG_Y: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const BK: u32 = 16u;
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
fn a_one(e: u32) -> f32 { return a[e]; }
fn a_quad(e: u32) -> vec4<f32> { return vec4<f32>(a[e], a[e + 1u], a[e + 2u], a[e + 3u]); }
fn b_one(e: u32) -> f32 { return b[e]; }
fn b_quad(e: u32) -> vec4<f32> { return vec4<f32>(b[e], b[e + 1u], b[e + 2u], b[e + 3u]); }
// end of header

override A_T: bool = false;
override B_T: bool = false;

const BM: u32 = WG_Y * TM;
const BN: u32 = WG_X * TN;
const THREADS: u32 = WG_X * WG_Y;

// Staged tiles, entry (l, i) of A at l·BM + i and (l, j) of B at l·BN + j, four entries a vec4.
var<workgroup> a_tile: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> b_tile: array<vec4<f32>, BK * BN / 4u>;

// A[i, l0 .. l0 + 4] (A row-major) or A[i0 .. i0 + 4, l] (A transposed) from the flat index of
// its first entry, entries past `count` (outside the matrix) read as 0.
fn a_load(e: u32, step: u32, count: u32) -> vec4<f32> {
    if (count >= 4u) {
        return a_quad(e);
    }
    var q = vec4<f32>(0.0);
    for (var t = 0u; t < count; t++) {
        q[t] = a_one(e + t * step);
    }
    return q;
}

fn b_load(e: u32, step: u32, count: u32) -> vec4<f32> {
    if (count >= 4u) {
        return b_quad(e);
    }
    var q = vec4<f32>(0.0);
    for (var t = 0u; t < count; t++) {
        q[t] = b_one(e + t * step);
    }
    return q;
}

// Stage A[row0 .. row0 + BM, l0 .. l0 + BK] (l < l_end) in a_tile.
fn stage_a(tid: u32, row0: u32, l0: u32, l_end: u32) {
    for (var q = tid; q < BK * BM / 4u; q += THREADS) {
        if (A_T) {
            // Four consecutive rows i0.. of one column l: one vec4 of the tile.
            let l = q / (BM / 4u);
            let i0 = (q % (BM / 4u)) * 4u;
            let gi = row0 + i0;
            let gl = l0 + l;
            var v = vec4<f32>(0.0);
            if (gl < l_end && gi < p.m) {
                v = a_load(p.a_off + gi + gl * p.a_cs, 1u, min(4u, p.m - gi));
            }
            a_tile[(l * BM + i0) / 4u] = v;
        } else {
            // Four consecutive columns l.. of one row i: one entry of four vec4s of the tile.
            let i = q / (BK / 4u);
            let l = (q % (BK / 4u)) * 4u;
            let gi = row0 + i;
            let gl = l0 + l;
            var v = vec4<f32>(0.0);
            if (gl < l_end && gi < p.m) {
                v = a_load(p.a_off + gi * p.a_rs + gl, 1u, min(4u, l_end - gl));
            }
            for (var t = 0u; t < 4u; t++) {
                let e = (l + t) * BM + i;
                a_tile[e / 4u][e % 4u] = v[t];
            }
        }
    }
}

// Stage B[l0 .. l0 + BK, col0 .. col0 + BN] (l < l_end) in b_tile.
fn stage_b(tid: u32, col0: u32, l0: u32, l_end: u32) {
    for (var q = tid; q < BK * BN / 4u; q += THREADS) {
        if (B_T) {
            // Four consecutive rows l.. of one column j.
            let j = q / (BK / 4u);
            let l = (q % (BK / 4u)) * 4u;
            let gj = col0 + j;
            let gl = l0 + l;
            var v = vec4<f32>(0.0);
            if (gl < l_end && gj < p.n) {
                v = b_load(p.b_off + gl + gj * p.b_cs, 1u, min(4u, l_end - gl));
            }
            for (var t = 0u; t < 4u; t++) {
                let e = (l + t) * BN + j;
                b_tile[e / 4u][e % 4u] = v[t];
            }
        } else {
            // Four consecutive columns j0.. of one row l: one vec4 of the tile.
            let l = q / (BN / 4u);
            let j0 = (q % (BN / 4u)) * 4u;
            let gj = col0 + j0;
            let gl = l0 + l;
            var v = vec4<f32>(0.0);
            if (gl < l_end && gj < p.n) {
                v = b_load(p.b_off + gl * p.b_rs + gj, 1u, min(4u, p.n - gj));
            }
            b_tile[(l * BN + j0) / 4u] = v;
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tid = lid.y * WG_X + lid.x;
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<vec4<f32>, TM * TN / 4u>;
    let l_start = wg.z * p.k_chunk;
    let l_end = min(p.k, l_start + p.k_chunk);
    for (var l0 = l_start; l0 < l_end; l0 += BK) {
        stage_a(tid, row0, l0, l_end);
        stage_b(tid, col0, l0, l_end);
        workgroupBarrier();
        for (var l = 0u; l < BK; l++) {
            var av: array<vec4<f32>, TM / 4u>;
            var bv: array<vec4<f32>, TN / 4u>;
            for (var i = 0u; i < TM / 4u; i++) {
                av[i] = a_tile[(l * BM + lid.y * TM) / 4u + i];
            }
            for (var j = 0u; j < TN / 4u; j++) {
                bv[j] = b_tile[(l * BN + lid.x * TN) / 4u + j];
            }
            for (var i = 0u; i < TM; i++) {
                let ai = vec4<f32>(av[i / 4u][i % 4u]);
                for (var j = 0u; j < TN / 4u; j++) {
                    acc[i * (TN / 4u) + j] = fma(ai, bv[j], acc[i * (TN / 4u) + j]);
                }
            }
        }
        workgroupBarrier();
    }
    var sum = 0.0;
    for (var i = 0u; i < TM; i++) {
        let row = row0 + lid.y * TM + i;
        for (var j = 0u; j < TN; j++) {
            let col = col0 + lid.x * TN + j;
            if (row < p.m && col < p.n) {
                sum += epilogue(row, col, wg.z, acc[i * (TN / 4u) + j / 4u][j % 4u]);
            }
        }
    }
    if (EPILOGUE >= EPI_LOSS_FIRST) {
        reduce_and_store(wg, nwg, lid, sum);
    }
}
