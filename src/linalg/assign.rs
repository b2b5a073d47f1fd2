//! Optimal assignment (the Hungarian method), shared by the rank selection's cluster matching
//! and the movie example's component matching.

use ndarray::ArrayView2;

/// An optimal assignment maximising the total `score`: for a `rows x cols` matrix, the pairs
/// `(row, col)` (each row and column at most once, `min(rows, cols)` pairs) whose scores sum
/// to the most, sorted by row. The Hungarian method with potentials, `O(n²·m)`; non-finite
/// scores count as the lowest finite one.
pub fn assign_max(score: ArrayView2<'_, f64>) -> Vec<(usize, usize)> {
    let (r, c) = score.dim();
    if r == 0 || c == 0 {
        return Vec::new();
    }
    // Minimise cost = max − score over a matrix with rows ≤ columns (transpose otherwise).
    let transpose = r > c;
    let (n, m) = if transpose { (c, r) } else { (r, c) };
    let finite = score.iter().copied().filter(|x| x.is_finite());
    let hi = finite.clone().fold(f64::MIN, f64::max);
    let lo = finite.fold(f64::MAX, f64::min);
    let cost = |i: usize, j: usize| -> f64 {
        let s = if transpose {
            score[[j, i]]
        } else {
            score[[i, j]]
        };
        hi - if s.is_finite() { s } else { lo }
    };
    // 1-based arrays of the classic formulation: p[j] the row matched to column j (0: none).
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; m + 1]);
    let (mut p, mut way) = (vec![0usize; m + 1], vec![0usize; m + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let (mut delta, mut j1) = (inf, 0);
            for j in 1..=m {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut pairs: Vec<(usize, usize)> = (1..=m)
        .filter(|&j| p[j] != 0)
        .map(|j| {
            let (i, j) = (p[j] - 1, j - 1);
            if transpose {
                (j, i)
            } else {
                (i, j)
            }
        })
        .collect();
    pairs.sort_unstable();
    pairs
}
