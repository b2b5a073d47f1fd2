//! The sparse products against their definitions, and their shape checks.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::error::NmfError;
use crate::sparse::CsrMatrix;

/// A random `rows x cols` matrix with about `density` of its entries stored, and row 1 and
/// the last column empty.
fn random(rows: usize, cols: usize, density: f64, seed: u64) -> CsrMatrix {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = Vec::new();
    for i in 0..rows {
        for j in 0..cols {
            if i != 1 && j + 1 != cols && rng.random::<f64>() < density {
                t.push((i, j, rng.random::<f32>()));
            }
        }
    }
    CsrMatrix::from_triplets(rows, cols, t).unwrap()
}

fn dense_x(rows: usize, r: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows * r).map(|_| rng.random::<f32>() - 0.25).collect()
}

/// `A X` by the definition, in f64.
fn reference(a: &CsrMatrix, x: &[f32], r: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; a.rows() * r];
    for i in 0..a.rows() {
        let (idx, val) = a.row(i);
        for (&j, &v) in idx.iter().zip(val) {
            for t in 0..r {
                out[i * r + t] += v as f64 * x[j as usize * r + t] as f64;
            }
        }
    }
    out
}

/// `y[i,:] · x[j,:]` in f64, for `y` and `x` row-major with `r` columns.
fn row_dot(y: &[f32], i: usize, x: &[f32], j: usize, r: usize) -> f64 {
    crate::linalg::dot_in_order(&y[i * r..(i + 1) * r], &x[j * r..(j + 1) * r])
}

fn close(got: impl Iterator<Item = f32>, want: &[f64], what: &str) {
    let scale = want.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
    let mut n = 0;
    for (g, w) in got.zip(want) {
        assert!((g as f64 - w).abs() <= 1e-5 * scale, "{what}: {g} vs {w}");
        n += 1;
    }
    assert_eq!(n, want.len(), "{what}");
}

#[test]
fn panel_products_match_the_definition() {
    // 1100 rows: two row blocks; widths that split the columns unevenly; ranks on both
    // sides of every register count and one past the vector kernels.
    let a = random(1100, 45, 0.1, 1);
    let at = a.transpose();
    for r in [1, 5, 16, 17, 20, 33, 64, 70] {
        for width in [1, 7, 45, 1000] {
            let x = dense_x(45, r, 2);
            let want = reference(&a, &x, r);
            let mut out = vec![f32::NAN; 1100 * r];
            spmm(Operand::Panels(&Panels::new(&a, width)), &x, r, &mut out).unwrap();
            close(out.iter().copied(), &want, &format!("V X r={r} w={width}"));
            // (Aᵀ Y)ᵀ written as r x 45.
            let y = dense_x(1100, r, 3);
            let want_t = reference(&at, &y, r);
            let mut q = Array2::<f32>::from_elem((r, 45), f32::NAN);
            let p = Panels::new(&at, width);
            spmm_t(Operand::Panels(&p), &y, r, q.view_mut()).unwrap();
            close(
                q.t().iter().copied(),
                &want_t,
                &format!("Vᵀ Y r={r} w={width}"),
            );
        }
        let x = dense_x(45, r, 4);
        let mut out = vec![f32::NAN; 1100 * r];
        spmm(Operand::Csr(&a), &x, r, &mut out).unwrap();
        close(out.iter().copied(), &reference(&a, &x, r), "spmm");
        let y = dense_x(1100, r, 5);
        let mut q = Array2::<f32>::from_elem((r, 45), f32::NAN);
        spmm_t(Operand::Csr(&at), &y, r, q.view_mut()).unwrap();
        close(q.t().iter().copied(), &reference(&at, &y, r), "spmm_t");
    }
}

#[test]
fn kl_numerators_match_the_definition() {
    let a = random(1100, 40, 0.2, 5);
    let at = a.transpose();
    for r in [1, 6, 16, 20, 40, 70] {
        let w: Vec<f32> = dense_x(1100, r, 6).iter().map(|x| x + 0.3).collect();
        let ht: Vec<f32> = dense_x(40, r, 7).iter().map(|x| x + 0.3).collect();
        // Z = A ⊘ max(W H, ε) at the stored entries.
        let mut z = Vec::new();
        for i in 0..1100 {
            let (idx, val) = a.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                let p = row_dot(&w, i, &ht, j as usize, r);
                z.push((i, j as usize, v / (p as f32).max(f32::EPSILON)));
            }
        }
        let zm = CsrMatrix::from_triplets(1100, 40, z).unwrap();
        // Panels of 3 and 40 columns, and the CSR matrix itself (width 0).
        for width in [3, 40, 0] {
            let (pa, pat) = (Panels::new(&a, width), Panels::new(&at, width));
            let (oa, oat) = if width == 0 {
                (Operand::Csr(&a), Operand::Csr(&at))
            } else {
                (Operand::Panels(&pa), Operand::Panels(&pat))
            };
            let mut left = vec![f32::NAN; 1100 * r];
            kl_spmm(oa, &w, &ht, r, &mut left).unwrap();
            close(
                left.iter().copied(),
                &reference(&zm, &ht, r),
                &format!("Z Hᵀ r={r} w={width}"),
            );
            let mut right = Array2::<f32>::from_elem((r, 40), f32::NAN);
            kl_spmm_t(oat, &ht, &w, r, right.view_mut()).unwrap();
            close(
                right.t().iter().copied(),
                &reference(&zm.transpose(), &w, r),
                &format!("Wᵀ Z r={r} w={width}"),
            );
        }
    }
}

#[test]
fn wide_hypersparse_matrices_are_not_split() {
    // 3 x 2_000_000 with four entries: 31 panels of 65536 columns would store 4 offsets
    // each for V, and 2_000_001 each for Vᵀ, against 4 entries.
    let a = CsrMatrix::from_triplets(
        3,
        2_000_000,
        [
            (0, 0, 1.0),
            (1, 70_000, 2.0),
            (2, 1_999_999, 3.0),
            (0, 5, 1.0),
        ],
    )
    .unwrap();
    let w = Panels::width_for(2);
    assert!(Panels::build(&a, w).is_none());
    assert!(Panels::build(&a.transpose(), w).is_none());
    // 1100 x 45 at 30% has about 14500 entries: one panel (1101 offsets) pays, six do not.
    let b = random(1100, 45, 0.3, 1);
    assert!(Panels::build(&b, 64).is_some());
    assert!(Panels::build(&b, 8).is_none());
}

#[test]
fn short_x_is_refused() {
    let a = random(10, 8, 0.5, 1);
    let mut out = vec![0.0f32; 10 * 2];
    let e = spmm(Operand::Csr(&a), &[1.0; 15], 2, &mut out).unwrap_err();
    assert!(e.to_string().contains("X in the sparse product"), "{e}");
    let y = [1.0f32; 10 * 2];
    let e = kl_spmm(Operand::Csr(&a), &y[..19], &[1.0; 16], 2, &mut out).unwrap_err();
    assert!(e.to_string().contains("Y in the sparse KL product"), "{e}");
}

#[test]
fn short_result_is_refused() {
    let a = random(10, 8, 0.5, 1);
    let mut out = Array2::<f32>::zeros((2, 9));
    let e = spmm_t(Operand::Csr(&a), &[1.0; 16], 2, out.view_mut()).unwrap_err();
    assert!(matches!(e, NmfError::ShapeMismatch { .. }), "{e}");
    let p = Panels::new(&a, 3);
    let mut short = vec![0.0f32; 19];
    let e = spmm(Operand::Panels(&p), &[1.0; 16], 2, &mut short).unwrap_err();
    assert!(
        e.to_string().contains("the result of the sparse product"),
        "{e}"
    );
}

#[test]
fn pattern_products_match_the_definition() {
    // (P ⊙ Y Xᵀ) X with P the pattern of `a` (its values unread), over the CSR matrix and
    // panels of several widths; 1100 rows make several row blocks.
    let a = random(1100, 45, 0.1, 8);
    for r in [1, 5, 17, 33] {
        let y = dense_x(1100, r, 9);
        let x = dense_x(45, r, 10);
        let mut t = Vec::new();
        for i in 0..1100 {
            let (idx, _) = a.row(i);
            for &j in idx {
                let p = row_dot(&y, i, &x, j as usize, r);
                t.push((i, j as usize, p as f32));
            }
        }
        // The model at the pattern as a matrix of signed values, multiplied by X.
        let mut want = vec![0.0f64; 1100 * r];
        for &(i, j, z) in &t {
            for s in 0..r {
                want[i * r + s] += z as f64 * x[j * r + s] as f64;
            }
        }
        let mut out = vec![f32::NAN; 1100 * r];
        pattern_spmm(Operand::Csr(&a), &y, &x, r, &mut out).unwrap();
        close(out.iter().copied(), &want, &format!("pattern csr r={r}"));
        for width in [1, 7, 45] {
            let mut out = vec![f32::NAN; 1100 * r];
            let p = Panels::new(&a, width);
            pattern_spmm(Operand::Panels(&p), &y, &x, r, &mut out).unwrap();
            close(
                out.iter().copied(),
                &want,
                &format!("pattern r={r} w={width}"),
            );
        }
    }
    let mut out = vec![0.0f32; 1100 * 2];
    assert!(matches!(
        pattern_spmm(Operand::Csr(&a), &[0.0; 3], &[0.0; 90], 2, &mut out),
        Err(NmfError::ShapeMismatch { .. })
    ));
}

/// Rows of a random sparse matrix as the row kernels read them: `ptr`, column indices below
/// `cols`, values; rows with 0 to 22 entries (every fifth row empty).
fn raw_rows(rows: usize, cols: usize, seed: u64) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ptr, mut idx, mut val) = (vec![0], Vec::new(), Vec::new());
    for i in 0..rows {
        let len = if i % 5 == 1 {
            0
        } else {
            rng.random_range(0..23)
        };
        for _ in 0..len {
            idx.push(rng.random_range(0..cols as u32));
            val.push(rng.random::<f32>());
        }
        ptr.push(idx.len());
    }
    (ptr, idx, val)
}

#[test]
fn row_kernels_match_the_portable_loop_at_every_level() {
    use super::super::simd::Level;
    use super::gather::{Gather, Weight};
    use super::panels::Start;
    use super::products::rows_kernel_at;
    let (rows, cols) = (37, 50);
    let (ptr, idx, val) = raw_rows(rows, cols, 11);
    let idx16: Vec<u16> = idx.iter().map(|&j| j as u16).collect();
    for r in [1, 7, 8, 9, 16, 17, 20, 33, 40, 64] {
        let x: Vec<f32> = dense_x(cols, r, 12).iter().map(|v| v + 0.3).collect();
        let y: Vec<f32> = dense_x(rows, r, 13).iter().map(|v| v + 0.3).collect();
        let init = dense_x(rows, r, 14);
        for start in [Start::Zero, Start::Out] {
            let run = |level: Level, kl: bool, narrow: bool| {
                let mut out = init.clone();
                let w = if kl {
                    Weight::KlRatio(&y)
                } else {
                    Weight::Value
                };
                let (ptr, val, x) = (&ptr[..], &val[..], &x[..]);
                if narrow {
                    let idx = &idx16[..];
                    rows_kernel_at(level, Gather::new(ptr, idx, val, x, w, r, start), &mut out);
                } else {
                    let idx = &idx[..];
                    rows_kernel_at(level, Gather::new(ptr, idx, val, x, w, r, start), &mut out);
                }
                out
            };
            for kl in [false, true] {
                let want: Vec<f64> = run(Level::None, kl, false)
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                // Empty rows hold their start: 0, or what out held.
                for i in (1..rows).step_by(5) {
                    for t in 0..r {
                        let s = if matches!(start, Start::Out) {
                            init[i * r + t]
                        } else {
                            0.0
                        };
                        assert_eq!(want[i * r + t], s as f64, "empty row {i}");
                    }
                }
                for level in Level::all_supported() {
                    for narrow in [false, true] {
                        let what = format!("{level:?} kl={kl} r={r} u16={narrow}");
                        close(run(level, kl, narrow).into_iter(), &want, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn loss_terms_are_the_same_through_panels() {
    // 2100 rows: three blocks of panel rows; the terms by their definition, in f64.
    let a = random(2100, 45, 0.1, 15);
    for r in [1, 7, 20, 33] {
        let w: Vec<f32> = dense_x(2100, r, 16).iter().map(|v| v + 0.3).collect();
        let x: Vec<f32> = dense_x(45, r, 17).iter().map(|v| v + 0.3).collect();
        let (mut res, mut sq, mut kl) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..2100 {
            let (idx, val) = a.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                let p = row_dot(&w, i, &x, j as usize, r);
                res += (v as f64 - p).powi(2);
                sq += p * p;
                let q = p.max(f32::EPSILON as f64);
                kl += v as f64 * (v as f64 / q).ln() - v as f64;
            }
        }
        let near = |got: f64, want: f64, what: &str| {
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{what} r={r}: {got} {want}"
            );
        };
        for width in [0, 3, 45] {
            let p = Panels::new(&a, width.max(1));
            let op = if width == 0 {
                Operand::Csr(&a)
            } else {
                Operand::Panels(&p)
            };
            let (gr, gs) = frobenius_terms(op, &w, &x, r);
            near(gr, res, "residual");
            near(gs, sq, "model squares");
            near(kl_term(op, &w, &x, r, f32::EPSILON), kl, "kl");
        }
    }
}
