//! The sparse kernels of the GPU engine against the CPU engine's sparse path: at the edges of
//! the one-dimensional workgroups, with empty rows and columns, and split into row panels.

use ndarray::Array2;

use super::tests::{assert_gpu_close, upload_pair, zeros_both};
use super::{GpuContext, GpuEngine};
use crate::engine::cpu::CpuEngine;
use crate::engine::{Engine, Side};
use crate::error::NmfError;
use crate::linalg::xorshift::XorShift;
use crate::options::Loss;
use crate::sparse::CsrMatrix;

include!("../../../tests/suite/common/gpu_available.rs");

/// A pseudo-random sparse matrix with about `density` of its entries stored, and every
/// third row and every fourth column empty.
fn sparse(rows: usize, cols: usize, density: f32, seed: u32) -> CsrMatrix {
    let mut stream = XorShift::seeded(seed, 11, 100_000);
    let mut t = Vec::new();
    for i in 0..rows {
        for j in 0..cols {
            let keep = stream.next_unit() < density;
            let value = 0.05 + stream.next_unit();
            if keep && i % 3 != 1 && j % 4 != 2 {
                t.push((i, j, value));
            }
        }
    }
    CsrMatrix::from_triplets(rows, cols, t).expect("valid triplets")
}

fn dense(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
    XorShift::new(seed.wrapping_mul(747796405).wrapping_add(3), 10_000).matrix(rows, cols, 0.05)
}

/// Every operation that reads sparse V, on both engines from the same factors.
fn compare(ctx: &GpuContext, v: &CsrMatrix, r: usize, tag: &str) {
    let (m, n) = v.dim();
    let vt = v.transpose();
    let mut cpu = CpuEngine::new_sparse(v, &vt);
    let mut gpu = GpuEngine::new_sparse(ctx, v, &vt).expect("gpu engine");
    let (w0, h0) = (dense(m, r, 5), dense(r, n, 7));
    let ((cw, ch), (gw, gh)) = upload_pair(&mut cpu, &mut gpu, &w0, &h0);

    // The products with V, then the KL numerators (V ⊘ WH in place of V), on each side.
    for (side, (rows, cols), product, kl) in [
        (Side::Left, (m, r), "V Hᵀ", "Z Hᵀ"),
        (Side::Right, (r, n), "Wᵀ V", "Wᵀ Z"),
    ] {
        let (mut c, mut g) = zeros_both(&mut cpu, &mut gpu, rows, cols);
        match side {
            Side::Left => {
                cpu.v_ht(&ch, &mut c).unwrap();
                gpu.v_ht(&gh, &mut g).unwrap();
            }
            Side::Right => {
                cpu.wt_v(&cw, &mut c).unwrap();
                gpu.wt_v(&gw, &mut g).unwrap();
            }
        }
        assert_gpu_close(&mut gpu, &format!("{product} {tag}"), &g, &c);
        cpu.kl_numerator(&cw, &ch, side, &mut c).unwrap();
        gpu.kl_numerator(&gw, &gh, side, &mut g).unwrap();
        assert_gpu_close(&mut gpu, &format!("{kl} {tag}"), &g, &c);
    }

    for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
        let a = cpu.loss(&cw, &ch, loss, f32::EPSILON).unwrap();
        let b = gpu.loss(&gw, &gh, loss, f32::EPSILON).unwrap();
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1e-12),
            "{loss:?} {tag}: cpu {a}, gpu {b}"
        );
    }
}

/// Shapes `(m, n, r)` whose `rows · r` and `rows` fall around the linear workgroup size.
fn shapes(ctx: &GpuContext) -> Vec<(usize, usize, usize)> {
    let wg = ctx.tuning().linear_wg as usize;
    vec![
        (wg - 1, 40, 1),
        (wg, 33, 1),
        (wg + 1, 31, 3),
        (wg / 4, wg + 1, 4),
        (13, 1, 2),
        (1, 9, 1),
        (70, 90, 17),
    ]
}

#[test]
fn sparse_kernels_match_cpu_at_workgroup_edges() {
    let Some(ctx) = gpu_or_skip() else {
        return;
    };
    for (m, n, r) in shapes(&ctx) {
        let v = sparse(m, n, 0.3, (m * 7 + n) as u32);
        compare(&ctx, &v, r, &format!("{m}x{n} r{r}"));
    }
}

#[test]
fn sparse_kernels_match_cpu_with_panels() {
    let Some(ctx) = gpu_or_skip() else {
        return;
    };
    let v = sparse(120, 80, 0.25, 3);
    let vt = v.transpose();
    let longest = |a: &CsrMatrix| (0..a.rows()).map(|i| a.row(i).0.len()).max().unwrap_or(0);
    // Room for the longest row of V and of Vᵀ (and their offsets), far less than the whole.
    let cap = longest(&v).max(longest(&vt)).max(8) + 2;
    let small = ctx.clone().with_max_panel_bytes(4 * cap as u64);
    let e = GpuEngine::new_sparse(&small, &v, &vt).expect("gpu engine");
    let (p, q) = e.sparse_panel_counts();
    assert!(p > 3 && q > 3, "panels {p}, {q}");
    compare(&small, &v, 5, "panels");
}

#[test]
fn all_zero_sparse_v_gives_zero_products() {
    let Some(ctx) = gpu_or_skip() else {
        return;
    };
    let v = CsrMatrix::from_triplets(6, 5, []).unwrap();
    compare(&ctx, &v, 2, "empty");
}

#[test]
fn a_row_longer_than_a_binding_is_a_typed_error() {
    let Some(ctx) = gpu_or_skip() else {
        return;
    };
    let v = sparse(10, 64, 0.9, 1);
    let vt = v.transpose();
    let small = ctx.with_max_panel_bytes(4 * 8);
    match GpuEngine::new_sparse(&small, &v, &vt) {
        Err(NmfError::GpuBufferTooLarge { what, .. }) => assert!(what.contains("row"), "{what}"),
        Err(e) => panic!("expected GpuBufferTooLarge, got {e}"),
        Ok(_) => panic!("expected GpuBufferTooLarge, got an engine"),
    }
}
