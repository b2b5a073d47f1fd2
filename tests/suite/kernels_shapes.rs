//! The CPU products reachable through `nmf_gpu::kernels::CpuProducts` (AVX-512 kernels where the
//! CPU has them, the general GEMM otherwise) check every shape: an output of the wrong size or a
//! factor with the wrong inner dimension is an `Err`, never a crash or a silent garbage result;
//! shapes that conform give the product, in any memory layout of the output.

use crate::common::{naive_matmul, uniform};
use nmf_gpu::kernels::CpuProducts;
use nmf_gpu::ndarray::{Array2, ShapeBuilder};
use nmf_gpu::NmfError;

const M: usize = 37;
const N: usize = 53;
const R: usize = 5;

fn close(a: &Array2<f32>, b: &Array2<f32>) -> bool {
    let scale = b.iter().fold(1e-30f32, |m, x| m.max(x.abs()));
    a.dim() == b.dim() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * scale)
}

fn is_shape_error<T: std::fmt::Debug>(r: nmf_gpu::Result<T>, what: &str) {
    match r {
        Err(NmfError::ShapeMismatch { .. }) => {}
        other => panic!("{what}: expected a shape error, got {other:?}"),
    }
}

#[test]
fn outputs_of_the_wrong_size_are_errors() {
    let v = uniform(M, N, 1);
    let w = uniform(M, R, 2);
    let h = uniform(R, N, 3);
    let mut e = CpuProducts::new(v.view());
    for (rows, cols) in [
        (M - 1, R),
        (M, R - 1),
        (1, 1),
        (0, 0),
        (M + 1, R),
        (M, R + 3),
    ] {
        let mut out = Array2::<f32>::zeros((rows, cols));
        is_shape_error(e.v_ht(&h, &mut out), "V Hᵀ into a wrong output");
    }
    for (rows, cols) in [(R - 1, N), (R, N - 1), (1, 1), (0, 0), (R, N + 9)] {
        let mut out = Array2::<f32>::zeros((rows, cols));
        is_shape_error(e.wt_v(&w, &mut out), "Wᵀ V into a wrong output");
    }
    for (rows, cols) in [(R - 1, R), (R, R - 1), (1, 1), (R + 2, R + 2)] {
        let mut out = Array2::<f32>::zeros((rows, cols));
        is_shape_error(e.h_ht(&h, &mut out), "H Hᵀ into a wrong output");
        is_shape_error(e.wt_w(&w, &mut out), "Wᵀ W into a wrong output");
    }
}

#[test]
fn factors_with_the_wrong_inner_dimension_are_errors() {
    let v = uniform(M, N, 4);
    let mut e = CpuProducts::new(v.view());
    let mut p = Array2::<f32>::zeros((M, R));
    for cols in [N - 1, N + 1, 1] {
        let h = uniform(R, cols, 5);
        is_shape_error(e.v_ht(&h, &mut p), "V Hᵀ with H of the wrong width");
    }
    let mut q = Array2::<f32>::zeros((R, N));
    for rows in [M - 1, M + 1, 1] {
        let w = uniform(rows, R, 6);
        is_shape_error(e.wt_v(&w, &mut q), "Wᵀ V with W of the wrong height");
    }
}

#[test]
fn conforming_shapes_give_the_products_in_any_output_layout() {
    let v = uniform(M, N, 7);
    let w = uniform(M, R, 8);
    let h = uniform(R, N, 9);
    let mut e = CpuProducts::new(v.view());
    let want_p = naive_matmul(&v, &h.t().to_owned());
    let want_q = naive_matmul(&w.t().to_owned(), &v);
    let want_g = naive_matmul(&h, &h.t().to_owned());
    let want_k = naive_matmul(&w.t().to_owned(), &w);
    for fortran in [false, true] {
        let mut p = Array2::<f32>::from_elem((M, R).set_f(fortran), f32::NAN);
        let mut q = Array2::<f32>::from_elem((R, N).set_f(fortran), f32::NAN);
        let mut g = Array2::<f32>::from_elem((R, R).set_f(fortran), f32::NAN);
        let mut k = Array2::<f32>::from_elem((R, R).set_f(fortran), f32::NAN);
        e.v_ht(&h, &mut p).unwrap();
        e.wt_v(&w, &mut q).unwrap();
        e.h_ht(&h, &mut g).unwrap();
        e.wt_w(&w, &mut k).unwrap();
        assert!(close(&p, &want_p), "V Hᵀ (column-major output: {fortran})");
        assert!(close(&q, &want_q), "Wᵀ V (column-major output: {fortran})");
        assert!(close(&g, &want_g), "H Hᵀ (column-major output: {fortran})");
        assert!(close(&k, &want_k), "Wᵀ W (column-major output: {fortran})");
    }
}
