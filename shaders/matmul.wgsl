// Register-blocked matrix product C (m x n) = A (m x k) · B (k x n) and its fused epilogues.
//
// Every operand is addressed through an offset and a row and a column stride (in f32 elements),
// so AB, AᵀB and ABᵀ (and sub-blocks such as a column panel of H) are the same kernel:
//   A[i, l] = a[a_off + i·a_rs + l·a_cs],  B[l, j] = b[b_off + l·b_rs + j·b_cs],
//   C[i, j] = c[c_off + i·c_rs + j·c_cs],  D[i, j] = d[d_off + i·d_rs + j·d_cs],
//   M[i, j] = mask[mask_off + i·mask_rs + j·mask_cs]  (only EPI_LOSS_MASKED reads M; the other
//   epilogues bind any read-only buffer there).
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
// One entry point, `matmul`, with the parameter block, the bindings C, D, p and the mask, the
// override EPILOGUE and the epilogue function of gemm.wgsl (shared with matmul_tiled.wgsl).

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;

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
fn matmul(
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
                sum += epilogue(row, col, wg.z, acc[i * TN + j]);
            }
        }
    }
    if (EPILOGUE >= EPI_LOSS_FIRST) {
        reduce_and_store(wg, nwg, lid, sum);
    }
}
