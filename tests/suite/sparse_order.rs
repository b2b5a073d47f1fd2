//! Sparse fits with V's rows and columns renumbered by degree (`SparseOrder::Degree`): the
//! same factorization as in the stored order, in V's own order, to rounding.

use std::sync::{Arc, Mutex};

use nmf_gpu::ndarray::Array2;
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::{Factorization, Init, Loss, Nmf, NmfParams, Solver, SparseOrder};

use crate::common::{max_rel_diff, uniform};

/// The renumbered fit sums each product's and Gram's terms in another order, so its factors
/// and losses differ from the stored order's by float rounding, amplified a little by the
/// iterations (measured: at most 5e-6 on these cases after 40 iterations; 0 where no sum
/// changes order: 1 x 1, one column).
const ORDER_REL_TOL: f64 = 1e-4;

/// A 150 x 110 matrix with power-law degrees scattered over the indices: row `i` keeps about
/// `1 / (ρ(i) + 1)` of its entries, column `j` `1 / (σ(j) + 1)`, with `ρ`, `σ` fixed
/// shuffles; rows 5 and 60 and column 33 empty.
fn power_law() -> CsrMatrix {
    let (m, n) = (150usize, 110usize);
    let noise = uniform(m, n, 21);
    let values = uniform(m, n, 22);
    let mut triplets = Vec::new();
    for i in 0..m {
        for j in 0..n {
            let (ri, rj) = ((i * 37) % m, (j * 29) % n);
            let p = 4.0 / ((ri + 1) as f32).sqrt() / ((rj + 1) as f32).sqrt();
            if noise[[i, j]] < p && ![5, 60].contains(&i) && j != 33 {
                triplets.push((i, j, values[[i, j]] + 0.01));
            }
        }
    }
    CsrMatrix::from_triplets(m, n, triplets).unwrap()
}

fn params(r: usize, solver: Solver, loss: Loss, init: Init) -> NmfParams {
    Nmf::params(r)
        .solver(solver)
        .loss(loss)
        .init(init)
        .max_iter(40)
        .tol(0.0)
        .check_every(5)
}

/// The fit in both orders; asserts they agree and returns them (stored, degree).
fn assert_orders_agree(p: &NmfParams, v: &CsrMatrix, what: &str) -> (Factorization, Factorization) {
    let stored = p
        .clone()
        .sparse_order(SparseOrder::Stored)
        .fit_sparse(v)
        .unwrap();
    let degree = p
        .clone()
        .sparse_order(SparseOrder::Degree)
        .fit_sparse(v)
        .unwrap();
    assert_eq!(stored.loss_iterations(), degree.loss_iterations(), "{what}");
    assert_eq!(stored.n_iter(), degree.n_iter(), "{what}");
    for (a, b) in stored.losses().iter().zip(degree.losses()) {
        let rel = (a - b).abs() / a.abs().max(1e-30);
        assert!(rel < ORDER_REL_TOL, "{what}: losses {a} and {b}");
    }
    let (dw, dh) = (
        max_rel_diff(&degree.w().to_owned(), &stored.w().to_owned()),
        max_rel_diff(&degree.h().to_owned(), &stored.h().to_owned()),
    );
    assert!(
        dw < ORDER_REL_TOL && dh < ORDER_REL_TOL,
        "{what}: W {dw:e}, H {dh:e}"
    );
    (stored, degree)
}

#[test]
fn degree_order_fits_equal_the_stored_order() {
    let v = power_law();
    let (m, n) = v.dim();
    let custom = Init::Custom {
        w: uniform(m, 4, 11).mapv(|x| x + 0.1),
        h: uniform(4, n, 12).mapv(|x| x + 0.1),
    };
    for (solver, loss, init) in [
        (
            Solver::MultiplicativeUpdate,
            Loss::Frobenius,
            custom.clone(),
        ),
        (
            Solver::MultiplicativeUpdate,
            Loss::KullbackLeibler,
            custom.clone(),
        ),
        (Solver::Hals, Loss::Frobenius, custom),
        (Solver::AcceleratedHals, Loss::Frobenius, Init::Nndsvda),
        (Solver::MultiplicativeUpdate, Loss::Frobenius, Init::Random),
    ] {
        let what = format!("{solver:?} {loss:?} {init:?}");
        let (_, degree) = assert_orders_agree(&params(4, solver, loss, init), &v, &what);
        assert!(degree
            .w()
            .iter()
            .chain(degree.h().iter())
            .all(|x| x.is_finite() && *x >= 0.0));
    }
}

#[test]
fn degree_order_on_small_and_degenerate_matrices() {
    let one = CsrMatrix::from_triplets(1, 1, [(0, 0, 2.0)]).unwrap();
    let column = CsrMatrix::from_triplets(6, 5, (0..6).map(|i| (i, 3, 1.0 + i as f32))).unwrap();
    let with_empty = CsrMatrix::from_triplets(
        5,
        4,
        [
            (0, 3, 1.0),
            (2, 3, 2.0),
            (2, 0, 0.5),
            (4, 1, 3.0),
            (4, 3, 1.5),
        ],
    )
    .unwrap();
    for (v, what) in [
        (one, "1 x 1"),
        (column, "one column"),
        (with_empty, "empty rows"),
    ] {
        let (m, n) = v.dim();
        let init = Init::Custom {
            w: uniform(m, 1, 3).mapv(|x| x + 0.1),
            h: uniform(1, n, 4).mapv(|x| x + 0.1),
        };
        for loss in [Loss::Frobenius, Loss::KullbackLeibler] {
            let p = params(1, Solver::MultiplicativeUpdate, loss, init.clone());
            assert_orders_agree(&p, &v, &format!("{what} {loss:?}"));
        }
    }
}

/// W and H as a checkpoint saw them.
type Factors = (Array2<f32>, Array2<f32>);

#[test]
fn checkpoints_and_fixed_columns_see_v_order() {
    let v = power_law();
    let (m, n) = v.dim();
    let w0 = uniform(m, 3, 5).mapv(|x| x + 0.1);
    let saved = |order: SparseOrder| {
        let seen: Arc<Mutex<Vec<Factors>>> = Arc::default();
        let sink = Arc::clone(&seen);
        let fit = params(
            3,
            Solver::MultiplicativeUpdate,
            Loss::Frobenius,
            Init::Custom {
                w: w0.clone(),
                h: uniform(3, n, 6).mapv(|x| x + 0.1),
            },
        )
        .fix_w([1])
        .sparse_order(order)
        .checkpoint(10, move |c| {
            sink.lock().unwrap().push((c.w.to_owned(), c.h.to_owned()));
            Ok(())
        })
        .fit_sparse(&v)
        .unwrap();
        let seen = seen.lock().unwrap().clone();
        (fit, seen)
    };
    let (stored, at_stored) = saved(SparseOrder::Stored);
    let (degree, at_degree) = saved(SparseOrder::Degree);
    assert_eq!(at_stored.len(), 4);
    assert_eq!(at_degree.len(), 4);
    for ((ws, hs), (wd, hd)) in at_stored.iter().zip(&at_degree) {
        assert!(max_rel_diff(wd, ws) < ORDER_REL_TOL);
        assert!(max_rel_diff(hd, hs) < ORDER_REL_TOL);
    }
    // The last checkpoint is the result; the fixed column ends bit for bit as it started.
    assert_eq!(at_degree[3].0, degree.w());
    assert_eq!(degree.w().column(1), w0.column(1));
    let (dw, sw) = (degree.w().to_owned(), stored.w().to_owned());
    assert!(max_rel_diff(&dw, &sw) < ORDER_REL_TOL);
}

#[test]
fn degree_order_on_data_scaled_into_range() {
    // max(V) ≈ 1e30 is fitted as V / s (solver/scale.rs); the renumbering applies to V / s.
    let v = power_law();
    let big = CsrMatrix::from_parts(
        v.rows(),
        v.cols(),
        v.indptr().to_vec(),
        v.indices().to_vec(),
        v.values().iter().map(|&x| x * 1e30).collect(),
    )
    .unwrap();
    let p = params(
        3,
        Solver::MultiplicativeUpdate,
        Loss::Frobenius,
        Init::Nndsvd,
    );
    let (_, degree) = assert_orders_agree(&p, &big, "scaled by 1e30");
    assert!(degree.final_loss().is_finite() && degree.final_loss() > 0.0);
}
