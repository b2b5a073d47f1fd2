// Sparse x skinny product over one row panel of a CSR matrix A (rows x q):
//   out[(row0 + i)·out_rs + t·out_cs] = Σ_{k ∈ row i} val[k] · x[col[k]·x_rs + t·x_cs],
// one invocation per output entry (i, t), i < rows, t < r (a two-dimensional grid when one
// dimension is not enough). `ptr` holds the panel's rows + 1 offsets into `col`/`val`,
// relative to the panel's first stored entry; an empty row gives zeros.
//
// V Hᵀ:  A = V (CSR), x = Hᵀ (n x r, row-major), out = m x r row-major;
// Wᵀ V:  A = Vᵀ (the CSC form of V), x = W (m x r), out = r x n row-major (out_rs = 1,
//        out_cs = n); each row of Vᵀ is one column of the result.
// `val` is V's values, or the KL ratios V ⊘ WH at the same stored entries
// (`sparse_entries`).

// struct Sparse: in the prelude (prelude.wgsl).

@group(0) @binding(0) var<storage, read> ptr: array<u32>;
@group(0) @binding(1) var<storage, read> col: array<u32>;
@group(0) @binding(2) var<storage, read> val: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Sparse;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn spmm_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    if (idx >= p.rows * p.r) {
        return;
    }
    // Consecutive invocations take consecutive components of one row: they read the same
    // stored entry and neighbouring entries of a row of x.
    let i = idx / p.r;
    let t = idx % p.r;
    var acc = 0.0;
    let end = ptr[i + 1u];
    for (var k = ptr[i]; k < end; k += 1u) {
        acc += val[k] * x[col[k] * p.x_rs + t * p.x_cs];
    }
    out[(p.row0 + i) * p.out_rs + t * p.out_cs] = acc;
}
