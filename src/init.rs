//! Initial factors: random, the NNDSVD family (Boutsidis & Gallopoulos 2008), or custom.
//!
//! NNDSVD takes the rank-r truncated SVD `V ≈ Σ_j s_j u_j v_jᵀ`. The leading pair is
//! nonnegative up to sign, so `W[:,0] = √s₀ |u₀|`, `H[0,:] = √s₀ |v₀|`. For j ≥ 1 split
//! `u_j = u⁺ − u⁻`, `v_j = v⁺ − v⁻`, keep the part pair with the larger `‖u^±‖·‖v^±‖ = σ`, and set
//! `W[:,j] = √(s_j σ) u^±/‖u^±‖`, `H[j,:] = √(s_j σ) v^±/‖v^±‖`. Entries below 1e-6 become 0;
//! NNDSVDa fills zeros with `mean(V)`, NNDSVDar with `mean(V)·|N(0,1)|/100`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::linalg::{auto_power_iters, randomized_svd, LinearOperator};
use crate::options::{Init, ValidParams};

/// Entries of NNDSVD factors below this are set to zero (scikit-learn's `eps`).
const NNDSVD_ZERO: f32 = 1e-6;
/// Oversampling of the randomized SVD (scikit-learn's default).
const SVD_OVERSAMPLES: usize = 10;

/// Mean of all entries of `v`, accumulated in f64.
pub(crate) fn mean(v: ArrayView2<'_, f32>) -> f64 {
    let n = v.len().max(1) as f64;
    v.iter().map(|&x| x as f64).sum::<f64>() / n
}

/// `scale · |N(0,1)|` entries.
fn abs_normal(rows: usize, cols: usize, scale: f32, rng: &mut impl Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || {
        let z: f32 = rng.sample(StandardNormal);
        scale * z.abs()
    })
}

/// The initial `(W, H)` for validated parameters. Shapes are `(m x r, r x n)`.
pub(crate) fn initialize(
    v: ArrayView2<'_, f32>,
    p: &ValidParams,
    rng: &mut impl Rng,
) -> (Array2<f32>, Array2<f32>) {
    initialize_op(v, || mean(v), p, rng)
}

/// [`initialize`] for a matrix known only through its products (a sparse `v`, whose operator
/// the CPU engine provides), with `sum` its sum of entries (computed only when needed): the
/// same factors as for the dense matrix up to float rounding (the sums run in a different
/// order; the SVD of NNDSVD runs on the operator's products), never forming `v` densely.
pub(crate) fn initialize_sparse<A: LinearOperator>(
    v: A,
    sum: impl Fn() -> f64,
    p: &ValidParams,
    rng: &mut impl Rng,
) -> (Array2<f32>, Array2<f32>) {
    let (m, n) = v.dim();
    let mean = || sum() / ((m as f64) * (n as f64)).max(1.0);
    initialize_op(v, mean, p, rng)
}

/// [`initialize`] over any operator, given how to compute the mean entry.
fn initialize_op<A: LinearOperator>(
    v: A,
    mean: impl Fn() -> f64,
    p: &ValidParams,
    rng: &mut impl Rng,
) -> (Array2<f32>, Array2<f32>) {
    start(v, mean, &p.init, p.rank, rng)
}

/// The start `init` of rank `r` for the operator `v`, given how to compute its mean entry
/// (every model's random and NNDSVD-family starts).
pub(crate) fn start<A: LinearOperator>(
    v: A,
    mean: impl Fn() -> f64,
    init: &Init,
    r: usize,
    rng: &mut impl Rng,
) -> (Array2<f32>, Array2<f32>) {
    let (m, n) = v.dim();
    match init {
        Init::Custom { w, h } => (w.clone(), h.clone()),
        Init::Random => {
            let scale = (mean() / r as f64).sqrt() as f32;
            let h = abs_normal(r, n, scale, rng);
            let w = abs_normal(m, r, scale, rng);
            (w, h)
        }
        Init::Nndsvd | Init::Nndsvda | Init::Nndsvdar => {
            let (mut w, mut h) = nndsvd(v, r, rng);
            let avg = mean() as f32;
            match init {
                Init::Nndsvda => {
                    w.mapv_inplace(|x| if x == 0.0 { avg } else { x });
                    h.mapv_inplace(|x| if x == 0.0 { avg } else { x });
                }
                Init::Nndsvdar => {
                    for x in w.iter_mut().chain(h.iter_mut()) {
                        if *x == 0.0 {
                            let z: f32 = rng.sample(StandardNormal);
                            *x = (avg * z / 100.0).abs();
                        }
                    }
                }
                _ => {}
            }
            (w, h)
        }
    }
}

fn norm(x: &Array1<f32>) -> f32 {
    x.iter()
        .map(|&a| (a as f64) * (a as f64))
        .sum::<f64>()
        .sqrt() as f32
}

/// Plain NNDSVD (zeros kept). Requires `r ≤ min(m, n)` (checked by the caller).
pub(crate) fn nndsvd<A: LinearOperator>(
    v: A,
    r: usize,
    rng: &mut impl Rng,
) -> (Array2<f32>, Array2<f32>) {
    let (m, n) = v.dim();
    let iters = auto_power_iters(r, m, n);
    let svd = randomized_svd(v, r, SVD_OVERSAMPLES, iters, rng);
    let mut w = Array2::<f32>::zeros((m, r));
    let mut h = Array2::<f32>::zeros((r, n));
    let k = svd.s.len().min(r);
    for j in 0..k {
        let s = svd.s[j].max(0.0);
        let x: ArrayView1<f32> = svd.u.column(j);
        let y: ArrayView1<f32> = svd.vt.row(j);
        if j == 0 {
            let c = s.sqrt();
            w.column_mut(0).assign(&x.mapv(|a| c * a.abs()));
            h.row_mut(0).assign(&y.mapv(|a| c * a.abs()));
            continue;
        }
        let (xp, xn) = (x.mapv(|a| a.max(0.0)), x.mapv(|a| (-a).max(0.0)));
        let (yp, yn) = (y.mapv(|a| a.max(0.0)), y.mapv(|a| (-a).max(0.0)));
        let (xpn, ypn, xnn, ynn) = (norm(&xp), norm(&yp), norm(&xn), norm(&yn));
        let (mp, mn) = (xpn * ypn, xnn * ynn);
        let (u, uv, vv, vn, sigma) = if mp > mn {
            (xp, xpn, yp, ypn, mp)
        } else {
            (xn, xnn, yn, ynn, mn)
        };
        if sigma <= 0.0 || uv <= 0.0 || vn <= 0.0 {
            continue;
        }
        let lbd = (s * sigma).sqrt();
        w.column_mut(j).assign(&u.mapv(|a| lbd * a / uv));
        h.row_mut(j).assign(&vv.mapv(|a| lbd * a / vn));
    }
    w.mapv_inplace(|a| if a < NNDSVD_ZERO { 0.0 } else { a });
    h.mapv_inplace(|a| if a < NNDSVD_ZERO { 0.0 } else { a });
    (w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Nmf;
    use ndarray::Array2;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn outer(u: &[f32], v: &[f32]) -> Array2<f32> {
        Array2::from_shape_fn((u.len(), v.len()), |(i, j)| u[i] * v[j])
    }

    fn init_of(v: &Array2<f32>, r: usize, init: Init) -> (Array2<f32>, Array2<f32>) {
        let p = Nmf::params(r)
            .init(init)
            .check(v.nrows(), v.ncols())
            .unwrap();
        initialize(v.view(), &p, &mut StdRng::seed_from_u64(0))
    }

    #[test]
    fn nndsvd_is_exact_on_a_rank_one_matrix() {
        let v = outer(&[1.0, 2.0, 0.5, 3.0], &[0.2, 1.0, 4.0, 0.0, 2.0]);
        let (w, h) = init_of(&v, 1, Init::Nndsvd);
        let wh = w.dot(&h);
        let err = (&wh - &v).mapv(|x| x.abs()).fold(0.0f32, |a, &b| a.max(b));
        assert!(err < 1e-5, "max error {err}");
    }

    #[test]
    fn nndsvd_on_two_disjoint_blocks_finds_both() {
        // Block-diagonal rank 2: NNDSVD's second pair must pick the second block.
        let mut v = Array2::<f32>::zeros((6, 8));
        v.slice_mut(ndarray::s![0..3, 0..4]).fill(2.0);
        v.slice_mut(ndarray::s![3..6, 4..8]).fill(1.0);
        let (w, h) = init_of(&v, 2, Init::Nndsvd);
        let err = (&w.dot(&h) - &v)
            .mapv(|x| x.abs())
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(err < 1e-4, "max error {err}");
    }

    #[test]
    fn variants_fill_zeros_as_documented() {
        let v = Array2::from_shape_fn((20, 15), |(i, j)| ((i * 3 + j * 7) % 11) as f32);
        let avg = mean(v.view()) as f32;
        let (w, h) = init_of(&v, 4, Init::Nndsvd);
        let zeros = w.iter().chain(h.iter()).filter(|&&x| x == 0.0).count();
        assert!(zeros > 0, "NNDSVD of a rank > 1 matrix has zeros");
        let (wa, ha) = init_of(&v, 4, Init::Nndsvda);
        let (wr, hr) = init_of(&v, 4, Init::Nndsvdar);
        for ((x, a), r) in w
            .iter()
            .chain(h.iter())
            .zip(wa.iter().chain(ha.iter()))
            .zip(wr.iter().chain(hr.iter()))
        {
            if *x == 0.0 {
                assert_eq!(*a, avg);
                assert!(*r >= 0.0 && *r < avg * 0.1);
            } else {
                assert_eq!(x, a);
                assert_eq!(x, r);
            }
        }
    }

    #[test]
    fn random_init_scale_and_seed() {
        let v = Array2::from_elem((50, 60), 4.0f32);
        let (w, h) = init_of(&v, 4, Init::Random);
        // E|N(0,1)| = sqrt(2/π): mean entry ≈ sqrt(4/4)·0.798.
        let m =
            w.iter().chain(h.iter()).map(|&x| x as f64).sum::<f64>() / (w.len() + h.len()) as f64;
        assert!((m - 0.798).abs() < 0.05, "mean {m}");
        assert!(w.iter().all(|&x| x >= 0.0));
        assert_eq!(init_of(&v, 4, Init::Random), (w, h));
    }
}
