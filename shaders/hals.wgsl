// HALS sweeps in place over the components t = 0..r, in order.
//
// hals_rows (X = W, m x r, one invocation per row i; P = V Hᵀ, G = H Hᵀ):
//   W[i,t] ← max(0, W[i,t] − (Σ_k G[t,k] W[i,k] − P[i,t] + l1 + l2 W[i,t]) / (G[t,t] + l2)).
// hals_cols (X = H, r x n, one invocation per column j; Q = Wᵀ V, K = Wᵀ W):
//   H[t,j] ← max(0, H[t,j] − (Σ_k K[t,k] H[k,j] − Q[t,j] + l1 + l2 H[t,j]) / (K[t,t] + l2)).
// Components whose Gram diagonal (plus l2) is zero are left unchanged.
//
// Inner sweeps decided on the device (accelerated HALS, online encodings): the `_tracked`
// kernels are the same sweeps, run only while the flag track[0] is set (sweep 0 always runs),
// each invocation writing its row's (column's) squared move Σ_t (x_new − x_old)² to
// track[TRACK_HEAD + i] and Σ_t x_new² to track[TRACK_HEAD + count + i]. Then hals_stop, one
// workgroup, sums both and applies the rule `rule` with `tol_sq` = tol²:
//   STOP_FIRST_MOVE: sweep 0 stores its move Δ₀ in track[1] and sets the flag; sweep j ≥ 1
//                    clears the flag when Δ_j ≤ tol² Δ₀;
//   STOP_RELATIVE:   sweep j clears the flag when Δ_j ≤ tol² ‖X‖² (sweep 0 sets it first).
// A sweep skipped for a cleared flag leaves X (and the moves) as they were, and hals_stop after
// it changes nothing, so the sweeps that run are exactly those a host loop would run.

const STOP_FIRST_MOVE: u32 = 0u;
const STOP_RELATIVE: u32 = 1u;
// track[0] the flag, track[1] the first move, then the per-invocation moves and norms.
const TRACK_HEAD: u32 = 4u;

struct Hals {
    rows: u32,
    cols: u32,
    r: u32,
    sweep: u32,
    l1: f32,
    l2: f32,
    tol_sq: f32,
    rule: u32,
    count: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> num: array<f32>;
@group(0) @binding(2) var<storage, read> gram: array<f32>;
@group(0) @binding(3) var<uniform> p: Hals;
@group(0) @binding(4) var<storage, read_write> track: array<f32>;

override WG: u32 = 256u;

var<workgroup> moved_sum: array<f32, MAX_WG>;
var<workgroup> norm_sum: array<f32, MAX_WG>;

// One sweep over the r entries of row i of W; returns (Σ_t Δ², Σ_t x_new²).
fn sweep_row(i: u32) -> vec2<f32> {
    let base = i * p.r;
    var out = vec2<f32>(0.0, 0.0);
    for (var t = 0u; t < p.r; t++) {
        let old = x[base + t];
        var updated = old;
        let hess = gram[t * p.r + t] + p.l2;
        if (hess != 0.0) {
            var grad = p.l1 - num[base + t] + p.l2 * old;
            for (var k = 0u; k < p.r; k++) {
                grad = fma(gram[t * p.r + k], x[base + k], grad);
            }
            updated = max(0.0, old - grad / hess);
            x[base + t] = updated;
        }
        let d = updated - old;
        out += vec2<f32>(d * d, updated * updated);
    }
    return out;
}

// One sweep over the r entries of column j of H; returns (Σ_t Δ², Σ_t x_new²).
fn sweep_col(j: u32) -> vec2<f32> {
    var out = vec2<f32>(0.0, 0.0);
    for (var t = 0u; t < p.r; t++) {
        let old = x[t * p.cols + j];
        var updated = old;
        let hess = gram[t * p.r + t] + p.l2;
        if (hess != 0.0) {
            var grad = p.l1 - num[t * p.cols + j] + p.l2 * old;
            for (var k = 0u; k < p.r; k++) {
                grad = fma(gram[t * p.r + k], x[k * p.cols + j], grad);
            }
            updated = max(0.0, old - grad / hess);
            x[t * p.cols + j] = updated;
        }
        let d = updated - old;
        out += vec2<f32>(d * d, updated * updated);
    }
    return out;
}

@compute @workgroup_size(WG, 1, 1)
fn hals_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i < p.rows) {
        sweep_row(i);
    }
}

@compute @workgroup_size(WG, 1, 1)
fn hals_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg, WG);
    if (j < p.cols) {
        sweep_col(j);
    }
}

// Whether sweep `p.sweep` runs: always the first, later ones while the flag is set.
fn sweep_runs() -> bool {
    return p.sweep == 0u || track[0] != 0.0;
}

@compute @workgroup_size(WG, 1, 1)
fn hals_rows_tracked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i < p.rows && sweep_runs()) {
        let s = sweep_row(i);
        track[TRACK_HEAD + i] = s.x;
        track[TRACK_HEAD + p.count + i] = s.y;
    }
}

@compute @workgroup_size(WG, 1, 1)
fn hals_cols_tracked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg, WG);
    if (j < p.cols && sweep_runs()) {
        let s = sweep_col(j);
        track[TRACK_HEAD + j] = s.x;
        track[TRACK_HEAD + p.count + j] = s.y;
    }
}

@compute @workgroup_size(WG, 1, 1)
fn hals_stop(@builtin(local_invocation_id) lid: vec3<u32>) {
    var moved = 0.0;
    var norm = 0.0;
    for (var k = lid.x; k < p.count; k += WG) {
        moved += track[TRACK_HEAD + k];
        norm += track[TRACK_HEAD + p.count + k];
    }
    moved_sum[lid.x] = moved;
    norm_sum[lid.x] = norm;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            moved_sum[lid.x] += moved_sum[lid.x + stride];
            norm_sum[lid.x] += norm_sum[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x != 0u) {
        return;
    }
    if (p.sweep == 0u) {
        track[0] = 1.0;
    } else if (track[0] == 0.0) {
        return;
    }
    let total = moved_sum[0];
    if (p.rule == STOP_FIRST_MOVE) {
        if (p.sweep == 0u) {
            track[1] = total;
        } else if (total <= p.tol_sq * track[1]) {
            track[0] = 0.0;
        }
    } else if (total <= p.tol_sq * norm_sum[0]) {
        track[0] = 0.0;
    }
}

// The relative rule after a step of another update on the columns of H (online KL encodings):
// `num` holds H as it was before the step. A step the flag says must not run (sweep > 0, flag
// cleared) is undone (H ← the previous H); otherwise the column's Σ_t (H − H_prev)² and Σ_t H²
// go to the tracking buffer for hals_stop.
@compute @workgroup_size(WG, 1, 1)
fn track_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg, WG);
    if (j >= p.cols) {
        return;
    }
    if (!sweep_runs()) {
        for (var t = 0u; t < p.r; t++) {
            x[t * p.cols + j] = num[t * p.cols + j];
        }
        return;
    }
    var out = vec2<f32>(0.0, 0.0);
    for (var t = 0u; t < p.r; t++) {
        let now = x[t * p.cols + j];
        let d = now - num[t * p.cols + j];
        out += vec2<f32>(d * d, now * now);
    }
    track[TRACK_HEAD + j] = out.x;
    track[TRACK_HEAD + p.count + j] = out.y;
}
