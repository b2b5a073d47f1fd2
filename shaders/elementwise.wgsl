// Elementwise kernels on row-major matrices, one invocation per output entry
// (a two-dimensional grid when one dimension is not enough, as in mu_update.wgsl).
//
// transpose: out (cols x rows) = xᵀ for x (rows x cols):  out[j, i] = x[i, j];
// axpby:     y ← a·x + b·y for x, y (rows x cols);
// pin:       y ← x wherever x ≠ FREE (x the anchor: fixed entries, FREE elsewhere).

struct Ew {
    rows: u32,
    cols: u32,
    a: f32,
    b: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Ew;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    if (idx >= p.rows * p.cols) {
        return;
    }
    // Output entry (j, i) of the cols x rows transpose; consecutive invocations write
    // consecutive entries.
    let j = idx / p.rows;
    let i = idx % p.rows;
    y[idx] = x[i * p.cols + j];
}

@compute @workgroup_size(WG, 1, 1)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    if (idx >= p.rows * p.cols) {
        return;
    }
    y[idx] = p.a * x[idx] + p.b * y[idx];
}

// −f32::MAX: an anchor entry that leaves its target free.
const FREE: f32 = -3.40282347e38;

@compute @workgroup_size(WG, 1, 1)
fn pin(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    if (idx >= p.rows * p.cols) {
        return;
    }
    let a = x[idx];
    if (a != FREE) {
        y[idx] = a;
    }
}
