//! Symmetric eigendecomposition by the cyclic Jacobi method, in `f64`.
//!
//! For a real symmetric `A` (n×n) the method applies plane rotations
//! `A ← Jᵀ A J`, each chosen to annihilate one off-diagonal pair `(p, q)`, sweeping all
//! pairs `p < q` in row order. The off-diagonal Frobenius norm decreases monotonically and
//! converges quadratically; at convergence `A = V Λ Vᵀ` with `V = J₁ J₂ ⋯` orthogonal and
//! `Λ` the final diagonal. Jacobi computes small eigenvalues to high relative accuracy
//! and always returns exactly orthogonal eigenvectors (up to rounding), which makes it
//! the method of choice for the small Gram matrices that appear in the SVD.

use ndarray::{Array1, Array2};

/// Upper bound on the number of sweeps; convergence normally takes 6–12.
const MAX_SWEEPS: usize = 60;

/// Eigendecomposition `A = V diag(λ) Vᵀ` of a symmetric matrix by cyclic Jacobi rotations.
///
/// Returns `(λ, V)` with the eigenvalues in descending order and the matching unit
/// eigenvectors as the columns of `V`. Only the symmetric part `(A + Aᵀ)/2` is used, so
/// slightly asymmetric input (rounding in a computed Gram matrix) is harmless.
///
/// Each rotation on the pair `(p, q)` uses
/// `θ = (a_qq − a_pp) / (2 a_pq)`, `t = sign(θ) / (|θ| + √(θ² + 1))`, `c = 1/√(t² + 1)`,
/// `s = t c`, which is the smaller of the two rotation angles that zero `a_pq`, and updates
/// `a_pp ← a_pp − t a_pq`, `a_qq ← a_qq + t a_pq`. A pair is skipped (and its entry set to
/// zero) once `|a_pq| ≤ ε √(|a_pp| |a_qq|)` or `|a_pq|` is negligible against `‖A‖_F`;
/// the iteration stops after the first sweep that rotates nothing.
pub(crate) fn symmetric_eigen(a: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows().min(a.ncols());
    // Dense row-major copy of the symmetrised matrix.
    let mut m = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = 0.5 * (a[[i, j]] + a[[j, i]]);
        }
    }
    // Eigenvectors stored as rows (row p = current column p of V) so rotations touch
    // contiguous memory.
    let mut vt = vec![0.0f64; n * n];
    for i in 0..n {
        vt[i * n + i] = 1.0;
    }

    let frob = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    // Entries below this are treated as zero whatever the diagonal looks like.
    let tiny = f64::MIN_POSITIVE.max(frob * f64::EPSILON * 1e-3);

    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = m[p * n + q];
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                let negligible =
                    apq.abs() <= tiny || apq.abs() <= f64::EPSILON * (app.abs() * aqq.abs()).sqrt();
                if negligible {
                    m[p * n + q] = 0.0;
                    m[q * n + p] = 0.0;
                    continue;
                }
                if !apq.is_finite() {
                    // Non-finite input: nothing meaningful to do, and rotating would only
                    // spread the NaN/∞ further.
                    continue;
                }
                rotated = true;
                let theta = (aqq - app) / (2.0 * apq);
                let t = if theta.is_finite() {
                    let sgn = if theta >= 0.0 { 1.0 } else { -1.0 };
                    sgn / (theta.abs() + (theta * theta + 1.0).sqrt())
                } else {
                    0.0
                };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                rotate(&mut m, n, p, q, c, s);
                m[p * n + p] = app - t * apq;
                m[q * n + q] = aqq + t * apq;
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
                // V ← V J: columns p and q of V (rows of `vt`).
                let (head, tail) = vt.split_at_mut(q * n);
                let vp = &mut head[p * n..p * n + n];
                let vq = &mut tail[..n];
                for (x, y) in vp.iter_mut().zip(vq.iter_mut()) {
                    let (xp, xq) = (*x, *y);
                    *x = c * xp - s * xq;
                    *y = s * xp + c * xq;
                }
            }
        }
        if !rotated {
            break;
        }
    }

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[j * n + j].total_cmp(&m[i * n + i]));
    let values = Array1::from_iter(order.iter().map(|&i| m[i * n + i]));
    let vectors = Array2::from_shape_fn((n, n), |(r, c)| vt[order[c] * n + r]);
    (values, vectors)
}

/// Applies the rotation `A ← Jᵀ A J` to rows and columns `p`, `q` of the symmetric
/// row-major `n×n` matrix `m`, for every index other than `p` and `q`
/// (`a_kp ← c a_kp − s a_kq`, `a_kq ← s a_kp + c a_kq`, mirrored to keep symmetry).
/// The 2×2 block at `(p, q)` is set by the caller.
fn rotate(m: &mut [f64], n: usize, p: usize, q: usize, c: f64, s: f64) {
    for k in 0..n {
        if k == p || k == q {
            continue;
        }
        let akp = m[k * n + p];
        let akq = m[k * n + q];
        let new_p = c * akp - s * akq;
        let new_q = s * akp + c * akq;
        m[k * n + p] = new_p;
        m[k * n + q] = new_q;
        m[p * n + k] = new_p;
        m[q * n + k] = new_q;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orthogonal `n×n` matrix from a product of Givens rotations at fixed angles.
    fn rotation(n: usize) -> Array2<f64> {
        let mut q = Array2::<f64>::eye(n);
        for p in 0..n {
            for r in (p + 1)..n {
                let ang = 0.3 + 0.7 * ((p * 31 + r * 17) % 13) as f64;
                let (c, s) = (ang.cos(), ang.sin());
                for k in 0..n {
                    let (a, b) = (q[[k, p]], q[[k, r]]);
                    q[[k, p]] = c * a - s * b;
                    q[[k, r]] = s * a + c * b;
                }
            }
        }
        q
    }

    fn check(a: &Array2<f64>, expected: &[f64]) {
        let n = a.nrows();
        let (vals, vecs) = symmetric_eigen(a);
        let scale = expected.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for (got, want) in vals.iter().zip(expected) {
            assert!((got - want).abs() <= 1e-10 * scale, "{got} vs {want}");
        }
        // A v = λ v and VᵀV = I
        let av = a.dot(&vecs);
        for j in 0..n {
            for i in 0..n {
                let r = av[[i, j]] - vals[j] * vecs[[i, j]];
                assert!(r.abs() <= 1e-10 * scale, "residual {r}");
            }
        }
        let vtv = vecs.t().dot(&vecs);
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((vtv[[i, j]] - want).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn recovers_known_spectrum() {
        let lambda = [7.5, 3.0, 2.999, 1.0, 0.0, -0.25, -4.0, 1e-9];
        let n = lambda.len();
        let q = rotation(n);
        let a = q
            .dot(&Array2::from_diag(&Array1::from(lambda.to_vec())))
            .dot(&q.t());
        let mut sorted = lambda.to_vec();
        sorted.sort_by(|x, y| y.total_cmp(x));
        check(&a, &sorted);
    }

    #[test]
    fn repeated_eigenvalues_and_zero_diagonal() {
        let a = ndarray::array![[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        check(&a, &[1.0, 1.0, -1.0]);
        let n = 20;
        let q = rotation(n);
        let mut d = vec![2.0; n];
        d[n - 1] = -1.0;
        let a = q
            .dot(&Array2::from_diag(&Array1::from(d.clone())))
            .dot(&q.t());
        d.sort_by(|x, y| y.total_cmp(x));
        check(&a, &d);
    }

    #[test]
    fn degenerate_sizes() {
        let (v, w) = symmetric_eigen(&Array2::zeros((0, 0)));
        assert_eq!((v.len(), w.dim()), (0, (0, 0)));
        let (v, w) = symmetric_eigen(&Array2::zeros((4, 4)));
        assert!(v.iter().all(|&x| x == 0.0));
        assert_eq!(w, Array2::<f64>::eye(4));
        let (v, w) = symmetric_eigen(&ndarray::array![[-3.0]]);
        assert_eq!((v[0], w[[0, 0]]), (-3.0, 1.0));
        let (v, _) = symmetric_eigen(&ndarray::array![[f64::NAN, 1.0], [1.0, 0.0]]);
        assert_eq!(v.len(), 2);
    }
}
