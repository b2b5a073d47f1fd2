// Strided sums: out[o] = Σ_{k < len} x[o·outer + k·inner] for o < count, one workgroup per o,
// counting only indices below `bound` (so the last chunk of a vector may be short).
// Row sums of H (r x n): outer = n, inner = 1. Column sums of W (m x r): outer = 1, inner = r.
// With `zero_to_one` set, a zero sum becomes 1 (scikit-learn's guard on the KL denominators).

struct Sums {
    count: u32,
    len: u32,
    outer: u32,
    inner: u32,
    zero_to_one: u32,
    bound: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Sums;

override WG: u32 = 256u;

var<workgroup> partial: array<f32, MAX_WG>;

@compute @workgroup_size(WG, 1, 1)
fn axis_sums(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = wg.x;
    var s = 0.0;
    for (var k = lid.x; k < p.len; k += WG) {
        let i = o * p.outer + k * p.inner;
        if (i < p.bound) {
            s += x[i];
        }
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            partial[lid.x] += partial[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        var total = partial[0];
        if (p.zero_to_one != 0u && total == 0.0) {
            total = 1.0;
        }
        out[o] = total;
    }
}
