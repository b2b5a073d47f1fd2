// HALS sweeps in place over the components t = 0..r, in order.
//
// hals_rows (X = W, m x r, one invocation per row i; P = V Hᵀ, G = H Hᵀ):
//   W[i,t] ← max(0, W[i,t] − (Σ_k G[t,k] W[i,k] − P[i,t] + l1 + l2 W[i,t]) / (G[t,t] + l2)).
// hals_cols (X = H, r x n, one invocation per column j; Q = Wᵀ V, K = Wᵀ W):
//   H[t,j] ← max(0, H[t,j] − (Σ_k K[t,k] H[k,j] − Q[t,j] + l1 + l2 H[t,j]) / (K[t,t] + l2)).
// Components whose Gram diagonal (plus l2) is zero are left unchanged.

struct Hals {
    rows: u32,
    cols: u32,
    r: u32,
    pad0: u32,
    l1: f32,
    l2: f32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> num: array<f32>;
@group(0) @binding(2) var<storage, read> gram: array<f32>;
@group(0) @binding(3) var<uniform> p: Hals;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn hals_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.rows) {
        return;
    }
    let base = i * p.r;
    for (var t = 0u; t < p.r; t++) {
        let hess = gram[t * p.r + t] + p.l2;
        if (hess == 0.0) {
            continue;
        }
        var grad = p.l1 - num[base + t] + p.l2 * x[base + t];
        for (var k = 0u; k < p.r; k++) {
            grad = fma(gram[t * p.r + k], x[base + k], grad);
        }
        x[base + t] = max(0.0, x[base + t] - grad / hess);
    }
}

@compute @workgroup_size(WG, 1, 1)
fn hals_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg, WG);
    if (j >= p.cols) {
        return;
    }
    for (var t = 0u; t < p.r; t++) {
        let hess = gram[t * p.r + t] + p.l2;
        if (hess == 0.0) {
            continue;
        }
        var grad = p.l1 - num[t * p.cols + j] + p.l2 * x[t * p.cols + j];
        for (var k = 0u; k < p.r; k++) {
            grad = fma(gram[t * p.r + k], x[k * p.cols + j], grad);
        }
        x[t * p.cols + j] = max(0.0, x[t * p.cols + j] - grad / hess);
    }
}
