//! Symmetric NMF of a sparse adjacency: the dense path's iterations from the same start, for
//! every method and preprocessing, on the CPU and the GPU engine; the same input errors.

use crate::common::gpu_or_skip;
use nmf_gpu::graph::planted_partition;
use nmf_gpu::ndarray::{array, Array2};
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::symmetric::{Preprocess, SymFactorization, SymMethod, SymNmf, SymNmfParams};
use nmf_gpu::{Backend, NmfError};

fn adjacency() -> Array2<f32> {
    let g = planted_partition(3, 30, 0.3, 0.03, 5).unwrap();
    g.graph().adjacency().to_owned()
}

fn assert_same(dense: &SymFactorization, sparse: &SymFactorization, tol: f64, what: &str) {
    assert_eq!(dense.losses().len(), sparse.losses().len(), "{what}");
    for (k, (d, s)) in dense.losses().iter().zip(sparse.losses()).enumerate() {
        assert!(
            (d - s).abs() <= tol * d.abs().max(1e-12),
            "{what}: check {k}: dense {d}, sparse {s}"
        );
    }
    let rel = (dense.residual() - sparse.residual()).abs() / dense.residual().max(1e-12);
    assert!(
        rel <= tol,
        "{what}: residual {} vs {}",
        dense.residual(),
        sparse.residual()
    );
    let scale = dense.h().iter().fold(1e-30f32, |m, x| m.max(x.abs()));
    let diff = dense
        .h()
        .iter()
        .zip(sparse.h().iter())
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 10.0 * tol as f32 * scale,
        "{what}: H differs by {diff}"
    );
    assert_eq!(dense.labels(), sparse.labels(), "{what}");
}

fn params(method: SymMethod, preprocess: Preprocess) -> SymNmfParams {
    SymNmf::params(3)
        .method(method)
        .preprocess(preprocess)
        .max_iter(40)
        .tol(0.0)
}

#[test]
fn sparse_symmetric_equals_dense_from_the_same_start() {
    let a = adjacency();
    let csr = CsrMatrix::from_dense(a.view()).unwrap();
    for method in [
        SymMethod::Anls,
        SymMethod::Multiplicative,
        SymMethod::TriFactor,
    ] {
        for pre in [Preprocess::NormalizedAdjacency, Preprocess::None] {
            let p = params(method, pre);
            let dense = p.fit(a.view()).unwrap();
            let sparse = p.fit_sparse(&csr).unwrap();
            assert!(sparse.engine().starts_with("cpu"), "{}", sparse.engine());
            assert_same(&dense, &sparse, 1e-4, &format!("{method:?} {pre:?}"));
        }
    }
}

#[test]
fn sparse_symmetric_on_the_gpu_matches_the_cpu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let csr = CsrMatrix::from_dense(adjacency().view()).unwrap();
    for method in [SymMethod::Anls, SymMethod::Multiplicative] {
        let p = params(method, Preprocess::NormalizedAdjacency);
        let cpu = p.clone().fit_sparse(&csr).unwrap();
        let gpu = p
            .backend(Backend::Gpu(ctx.clone()))
            .fit_sparse(&csr)
            .unwrap();
        assert!(gpu.engine().starts_with("gpu"), "{}", gpu.engine());
        assert_same(&cpu, &gpu, 1e-3, &format!("gpu {method:?}"));
    }
}

#[test]
fn sparse_symmetric_input_errors() {
    let p = SymNmf::params(2);
    let asym =
        CsrMatrix::from_dense(array![[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 2.0, 0.0]].view())
            .unwrap();
    match p.fit_sparse(&asym) {
        Err(NmfError::NotSymmetric {
            row,
            col,
            value,
            mirror,
            ..
        }) => {
            assert_eq!((row, col), (0, 1));
            assert_eq!((value, mirror), (1.0, 0.0));
        }
        other => panic!("expected NotSymmetric, got {other:?}"),
    }
    let rect = CsrMatrix::from_triplets(3, 4, [(0, 1, 1.0)]).unwrap();
    assert!(matches!(
        p.fit_sparse(&rect),
        Err(NmfError::NotSquare { .. })
    ));
    let zeros = CsrMatrix::from_triplets(3, 3, []).unwrap();
    assert!(matches!(
        p.fit_sparse(&zeros),
        Err(NmfError::InvalidParameter { name: "A", .. })
    ));
    let small = CsrMatrix::from_triplets(2, 2, [(0, 1, 1.0), (1, 0, 1.0)]).unwrap();
    assert!(matches!(
        SymNmf::params(3).fit_sparse(&small),
        Err(NmfError::InvalidParameter { name: "k", .. })
    ));
}
