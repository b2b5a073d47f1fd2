// Sum of the slices of a split matrix product (see matmul.wgsl):
//   C[i, j] (+)= Σ_{s < slices} x[s·slice_len + i·cols + j],
// with C[i, j] = c[c_off + i·c_rs + j·c_cs]; one invocation per entry of C.

struct Slices {
    rows: u32,
    cols: u32,
    slices: u32,
    slice_len: u32,
    c_off: u32,
    c_rs: u32,
    c_cs: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<uniform> p: Slices;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn sum_slices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    if (idx >= p.rows * p.cols) {
        return;
    }
    let i = idx / p.cols;
    let j = idx % p.cols;
    var total = 0.0;
    for (var s = 0u; s < p.slices; s++) {
        total += x[s * p.slice_len + idx];
    }
    let ci = p.c_off + i * p.c_rs + j * p.c_cs;
    if (p.accumulate != 0u) {
        total += c[ci];
    }
    c[ci] = total;
}
