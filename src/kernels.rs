//! The CPU engine's products, exposed (doc-hidden) for the criterion benches only; not part of
//! the supported API.

use ndarray::{Array2, ArrayView2};

use crate::engine::cpu::{simd, CpuEngine};
use crate::engine::{Engine, MuDenominator, MuRule, Side};
use crate::error::Result;
use crate::options::Regularization;

/// The products one Frobenius iteration computes on the CPU, over a borrowed V.
pub struct CpuProducts<'a> {
    engine: CpuEngine<'a>,
}

impl<'a> CpuProducts<'a> {
    /// Wrap V (m x n).
    pub fn new(v: ArrayView2<'a, f32>) -> Self {
        CpuProducts {
            engine: CpuEngine::new(v),
        }
    }
    /// `out = V Hᵀ` (m x r).
    pub fn v_ht(&mut self, h: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.v_ht(h, out)
    }
    /// `out = Wᵀ V` (r x n).
    pub fn wt_v(&mut self, w: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.wt_v(w, out)
    }
    /// `out = H Hᵀ` (r x r).
    pub fn h_ht(&mut self, h: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.gram(h, Side::Right, out)
    }
    /// `out = Wᵀ W` (r x r).
    pub fn wt_w(&mut self, w: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.gram(w, Side::Left, out)
    }
    /// The MU Frobenius update of W in place: `W ← W ⊙ P ⊘ (W G)`, `P = V Hᵀ`, `G = H Hᵀ`.
    pub fn mu_w(&mut self, w: &mut Array2<f32>, p: &Array2<f32>, g: &Array2<f32>) -> Result<()> {
        self.mu(w, p, g, Side::Left)
    }
    /// The MU Frobenius update of H in place: `H ← H ⊙ Q ⊘ (K H)`, `Q = Wᵀ V`, `K = Wᵀ W`.
    pub fn mu_h(&mut self, h: &mut Array2<f32>, q: &Array2<f32>, k: &Array2<f32>) -> Result<()> {
        self.mu(h, q, k, Side::Right)
    }
    fn mu(
        &mut self,
        x: &mut Array2<f32>,
        num: &Array2<f32>,
        g: &Array2<f32>,
        side: Side,
    ) -> Result<()> {
        let reg = Regularization { l1: 0.0, l2: 0.0 };
        let den = MuDenominator::Gram(g);
        self.engine
            .mu_step(x, num, den, side, reg, f32::EPSILON, MuRule::Plain)
    }
}

/// The vector level of the CPU kernels: `avx512`, `avx2` or `none` (the CPU's best, capped by
/// `NMF_SIMD`).
pub fn simd_level() -> &'static str {
    match simd::level() {
        simd::Level::Avx512 => "avx512",
        simd::Level::Avx2 => "avx2",
        simd::Level::None => "none",
    }
}

/// The FMA peak of `threads` threads at [`simd_level`], GFLOP/s: independent multiply-adds in
/// registers on every thread at once, the best of `tries` runs of about `reps` steps each.
pub fn fma_peak_gflops(threads: usize, reps: usize, tries: usize) -> f64 {
    let level = simd::level();
    let mut best = 0.0f64;
    for _ in 0..tries.max(1) {
        let start = std::time::Instant::now();
        let flops: f64 = std::thread::scope(|s| {
            let runs: Vec<_> = (0..threads.max(1))
                .map(|_| s.spawn(move || simd::fma_peak(level, reps)))
                .collect();
            runs.into_iter()
                .map(|h| h.join().map_or(0.0, |(f, x)| f + 0.0 * f64::from(x)))
                .sum()
        });
        best = best.max(flops / start.elapsed().as_secs_f64() / 1e9);
    }
    best
}
