//! The benchmark cases and their data: uniform random V and a shared random start.

use nmf_gpu::ndarray::Array2;
use nmf_gpu::sparse::CsrMatrix;
use nmf_gpu::NmfError;

use crate::args::SparseLaw;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A benchmark case: V is m x n, the rank is r.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub m: usize,
    pub n: usize,
    pub r: usize,
}

impl Shape {
    pub const fn new(m: usize, n: usize, r: usize) -> Self {
        Shape { m, n, r }
    }

    /// `MxNrR`.
    pub fn name(&self) -> String {
        format!("{}x{}r{}", self.m, self.n, self.r)
    }

    /// Floating-point operations of one Frobenius MU iteration: 4mnr + 4(m+n)r².
    pub fn flops_per_iter(&self) -> f64 {
        let (m, n, r) = (self.m as f64, self.n as f64, self.r as f64);
        4.0 * m * n * r + 4.0 * (m + n) * r * r
    }
}

/// The cases run without --shape or --quick.
pub const DEFAULT_CASES: [Shape; 3] = [
    Shape::new(361, 2429, 49),
    Shape::new(4096, 4096, 64),
    Shape::new(10000, 5000, 128),
];
/// The cases of --quick.
pub const QUICK_CASES: [Shape; 2] = [Shape::new(361, 2429, 49), Shape::new(1024, 1024, 32)];

/// A sparse case: V is m x n with about `density·m·n` stored entries, the rank is r.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseCase {
    pub m: usize,
    pub n: usize,
    pub density: f64,
    pub r: usize,
}

impl SparseCase {
    /// `MxNrR dD`.
    pub fn name(&self) -> String {
        format!("{}x{}r{} d{}", self.m, self.n, self.r, self.density)
    }
}

/// One case's data and starting point, shared by every row of the case.
pub struct CaseData {
    pub v: Array2<f32>,
    pub w0: Array2<f32>,
    pub h0: Array2<f32>,
}

/// W0 (m x r) and H0 (r x n) = `sqrt(mean / r)·|N(0,1)|` (StdRng seed 1).
fn start(m: usize, n: usize, r: usize, mean: f64) -> (Array2<f32>, Array2<f32>) {
    let scale = (mean / r as f64).sqrt() as f32;
    let mut rng = StdRng::seed_from_u64(1);
    let mut draw = |rows, cols| {
        Array2::from_shape_simple_fn((rows, cols), || {
            scale * rng.sample::<f32, _>(StandardNormal).abs()
        })
    };
    let w0 = draw(m, r);
    let h0 = draw(r, n);
    (w0, h0)
}

/// A dense case's data: V uniform in [0, 1) (StdRng seed 0) and the start.
pub fn case_data(shape: Shape) -> CaseData {
    let Shape { m, n, r } = shape;
    let mut rng = StdRng::seed_from_u64(0);
    let v = Array2::from_shape_simple_fn((m, n), || rng.random::<f32>());
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / (m * n) as f64;
    let (w0, h0) = start(m, n, r, mean);
    CaseData { v, w0, h0 }
}

/// A sparse case's data: V with `density·m·n` entries drawn at random positions (repeats
/// summed), values uniform in [0, 1) (StdRng seed 0); W0, H0 as for the dense cases. Under
/// [`SparseLaw::Uniform`] every position is alike; under [`SparseLaw::Zipf`] row `i` is drawn
/// with weight `1 / (ρ(i) + 1)` and column `j` with `1 / (σ(j) + 1)`, `ρ` and `σ` random
/// permutations (the heavy rows and columns scattered, as a corpus's vocabulary is).
pub fn sparse_case_data(
    c: SparseCase,
    law: SparseLaw,
) -> Result<(CsrMatrix, Array2<f32>, Array2<f32>), NmfError> {
    let SparseCase { m, n, density, r } = c;
    let mut rng = StdRng::seed_from_u64(0);
    let count = (density * m as f64 * n as f64).round() as usize;
    let (rows, cols) = match law {
        SparseLaw::Uniform => (Draw::Uniform(m), Draw::Uniform(n)),
        SparseLaw::Zipf => (Draw::zipf(m, &mut rng), Draw::zipf(n, &mut rng)),
    };
    let triplets: Vec<(usize, usize, f32)> = (0..count)
        .map(|_| {
            (
                rows.sample(&mut rng),
                cols.sample(&mut rng),
                rng.random::<f32>(),
            )
        })
        .collect();
    let v = CsrMatrix::from_triplets(m, n, triplets)?;
    let mean = v.values().iter().map(|&x| x as f64).sum::<f64>() / (m as f64 * n as f64);
    let (w0, h0) = start(m, n, r, mean);
    Ok((v, w0, h0))
}

/// How one index (a row or a column) of a sparse case is drawn.
enum Draw {
    /// Uniform in `0..k`.
    Uniform(usize),
    /// Index `t` with weight `1 / (rank(t) + 1)`: the cumulative weights, in index order.
    Weighted(Vec<f64>),
}

impl Draw {
    /// Zipf weights over `0..k`, the ranks shuffled.
    fn zipf(k: usize, rng: &mut StdRng) -> Draw {
        let mut rank: Vec<usize> = (0..k).collect();
        rank.shuffle(rng);
        let mut total = 0.0;
        Draw::Weighted(
            rank.iter()
                .map(|&q| {
                    total += 1.0 / (q + 1) as f64;
                    total
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut StdRng) -> usize {
        match self {
            Draw::Uniform(k) => rng.random_range(0..*k),
            Draw::Weighted(cum) => {
                let total = cum.last().copied().unwrap_or(0.0);
                let u = rng.random::<f64>() * total;
                cum.partition_point(|&c| c <= u).min(cum.len() - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_cases_have_power_law_degrees() {
        let c = SparseCase {
            m: 400,
            n: 600,
            density: 0.02,
            r: 3,
        };
        let (u, _, _) = sparse_case_data(c, SparseLaw::Uniform).unwrap();
        let (z, w0, h0) = sparse_case_data(c, SparseLaw::Zipf).unwrap();
        assert_eq!((w0.dim(), h0.dim()), ((400, 3), (3, 600)));
        let heaviest_row = |v: &CsrMatrix| (0..v.rows()).map(|i| v.row(i).0.len()).max();
        // Uniform: about 12 entries a row; Zipf: the first-ranked row draws a sixth of all
        // the draws (about 260 distinct columns among them).
        assert!(heaviest_row(&u) < Some(40));
        assert!(heaviest_row(&z) > Some(120));
        assert_eq!(z, sparse_case_data(c, SparseLaw::Zipf).unwrap().0);
    }

    #[test]
    fn flops() {
        assert_eq!(Shape::new(2, 3, 1).flops_per_iter(), 4.0 * 6.0 + 4.0 * 5.0);
    }
}
