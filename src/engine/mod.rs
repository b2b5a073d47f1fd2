//! Engines: *how* the solvers' operations run, on the CPU or on a GPU, behind one trait.
//!
//! A solver is written once as a sequence of [`Engine`] calls on engine-owned matrices
//! ([`Engine::Mat`]); the engine owns the data matrix `V` (m x n) so that it may keep it in
//! device memory, split it into panels, or store it sparsely.

mod auto;
mod choice;
pub(crate) mod cpu;
pub(crate) mod data;
pub(crate) mod divergence;
#[cfg(feature = "gpu")]
pub(crate) mod gpu;
mod inner;
mod task;
pub(crate) mod vmath;

use ndarray::{Array2, ArrayView2};

pub use self::auto::{DataSize, AUTO_GPU_MIN_DENSE_ENTRIES, AUTO_GPU_MIN_SPARSE_NNZ};
pub use self::choice::{AdapterList, BackendChoice};
pub(crate) use self::data::{Blocks, Measure, Product, Shaped};
#[cfg(feature = "gpu")]
pub use self::gpu::GpuContext;
#[cfg(feature = "gpu")]
pub use self::gpu::{TuneEffort, TuneRow};
pub(crate) use self::inner::InnerStop;
#[cfg(feature = "mpi")]
pub(crate) use self::task::check_sparse_backend;
pub(crate) use self::task::{check_data, on_pool, with_engine, with_sparse_engine, EngineTask};
use crate::error::Result;
pub use crate::gpu_stats::{GpuRates, GpuStats};
use crate::options::{Loss, Regularization};

/// Where a factorization runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The multithreaded CPU engine (ndarray storage, AVX-512/AVX2 GEMM).
    #[default]
    Cpu,
    /// The GPU engine on this device context (wgpu compute shaders; V, W and H stay on the device).
    #[cfg(feature = "gpu")]
    Gpu(GpuContext),
    /// Several GPUs working on one fit, one context each (two contexts may share an adapter):
    /// V split into row panels across the devices (in proportion to
    /// [`GpuContext::with_relative_speed`] when every context has one, measured when the
    /// devices differ), the products per
    /// panel, the small sums on the host (see docs/engines.md). [`BackendChoice`]'s `gpu:all`
    /// and `gpu:0,1` open one. Dense V only.
    #[cfg(feature = "gpu")]
    MultiGpu(Vec<GpuContext>),
    /// A hardware GPU when one is usable and the data is large enough to gain from it
    /// ([`DataSize::large_enough_for_gpu`]: 2²² dense entries or stored entries), otherwise the
    /// CPU; software adapters such as lavapipe are never chosen. The choice is logged.
    Auto,
}

/// Which factor an operation updates, which fixes the orientation of the small products.
///
/// - `Left`: the factor is `W` (m x r); its Gram matrix partner is `G = H Hᵀ` and products are `W G`.
/// - `Right`: the factor is `H` (r x n); its partner is `K = Wᵀ W` and products are `K H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// Which per-component sums [`Engine::factor_sums`] forms: the KL denominators. Named for the
/// factor summed, which is the one *not* being updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FactorSums {
    /// Row sums of H (r x n), `H 1` (r x 1): the denominator of the W update.
    RowsOfH,
    /// Column sums of W (m x r), `Wᵀ 1` (r x 1), zero sums replaced by 1 as in scikit-learn: the
    /// denominator of the H update.
    ColumnsOfW,
}

/// The denominator of a multiplicative update.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MuDenominator<'a, M> {
    /// Frobenius: `W G` (Left) or `K H` (Right), with the r x r Gram matrix given.
    Gram(&'a M),
    /// Kullback–Leibler: a length-r vector `s` (stored r x 1) broadcast as `1 sᵀ` (Left) or `s 1ᵀ` (Right).
    Sums(&'a M),
    /// A general r x r matrix `P` (not necessarily symmetric): `D = X P` (Left) or `D = P X` (Right).
    Product(&'a M),
    /// The denominator itself, the shape of `X`.
    Elementwise(&'a M),
}

/// How the ratio `ρ = N ⊘ d` of a multiplicative update is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MuRule {
    /// `X ← X ⊙ ρ` (Lee–Seung).
    Plain,
    /// `X ← X ⊙ √ρ` (the orthogonal rules of Ding et al. 2006).
    Sqrt,
    /// `X ← X ⊙ (½ + ½ ρ)` (symmetric NMF, Ding, He & Simon 2005).
    Damped,
    /// `X ← X ⊙ ρ^γ` (the β-divergence rules, exponent γ(β) of
    /// [`Loss::mu_exponent`]), results below `floor` (at least the smallest normal f32)
    /// becoming 0: scikit-learn flushes entries below f64's machine epsilon for β < 1.
    Power {
        /// The exponent γ (`ρ` itself when 1).
        gamma: f32,
        /// Results below this become 0.
        floor: f32,
    },
}

/// The entries of a matrix below which β < 1 multiplicative updates set it to zero
/// (scikit-learn's `np.finfo(np.float64).eps`, "for stability").
pub(crate) const BETA_FLOOR: f32 = f64::EPSILON as f32;

/// The value of an anchor entry ([`Engine::pin`]) that leaves the target entry free.
pub(crate) const FREE: f32 = -f32::MAX;

impl MuRule {
    /// The factor that multiplies `X` for a ratio `ρ ≥ 0`.
    #[inline(always)]
    pub(crate) fn apply(self, rho: f32) -> f32 {
        match self {
            MuRule::Plain => rho,
            MuRule::Sqrt => rho.sqrt(),
            MuRule::Damped => 0.5 + 0.5 * rho,
            MuRule::Power { gamma, .. } => {
                if gamma == 1.0 {
                    rho
                } else {
                    rho.powf(gamma)
                }
            }
        }
    }

    /// The updated entry `y = x · f(ρ)` as stored: 0 below the smallest normal f32, or below
    /// the floor of [`MuRule::Power`].
    #[inline(always)]
    pub(crate) fn flush(self, y: f32) -> f32 {
        let floor = match self {
            MuRule::Power { floor, .. } => floor.max(f32::MIN_POSITIVE),
            _ => f32::MIN_POSITIVE,
        };
        if y < floor {
            0.0
        } else {
            y
        }
    }
}

/// The operations every solver is built from.
pub(crate) trait Engine {
    /// A dense matrix living wherever the engine computes.
    type Mat: Shaped;

    /// Human-readable name (e.g. "cpu (2 threads)"), stored in the result.
    fn name(&self) -> String;
    /// Shape of the data matrix V.
    fn dims(&self) -> (usize, usize);
    /// Copy a host matrix into the engine.
    fn upload(&mut self, a: ArrayView2<'_, f32>) -> Result<Self::Mat>;
    /// Copy a host matrix into `out`, an engine matrix of the same shape, reusing its storage
    /// (no allocation on an engine that keeps its matrices on a device; work already recorded
    /// on `out` sees its old contents). This default replaces `out` by a fresh upload.
    #[cfg_attr(not(any(feature = "gpu", feature = "mpi")), allow(dead_code))]
    fn upload_into(&mut self, a: ArrayView2<'_, f32>, out: &mut Self::Mat) -> Result<()> {
        *out = self.upload(a)?;
        Ok(())
    }
    /// A zero matrix of the given shape.
    fn zeros(&mut self, rows: usize, cols: usize) -> Result<Self::Mat>;
    /// Copy an engine matrix back to the host.
    fn download(&mut self, a: &Self::Mat) -> Result<Array2<f32>>;

    /// `out = p`: the product with V that `p` names (see [`Product`]), its shapes checked by
    /// [`Product::check`], computed by the engine's data operator for its representation of V.
    fn product(&mut self, p: Product<'_, Self::Mat>, out: &mut Self::Mat) -> Result<()>;
    /// The number `what` names from V, `w` (m x r) and `h` (r x n) (see [`Measure`]),
    /// accumulated in f64, computed by the engine's data operator.
    fn measure(
        &mut self,
        w: &Self::Mat,
        h: &Self::Mat,
        what: Measure<'_, Self::Mat>,
    ) -> Result<f64>;

    /// `out = V Hᵀ` (m x r).
    fn v_ht(&mut self, h: &Self::Mat, out: &mut Self::Mat) -> Result<()> {
        self.product(Product::VHt(h), out)
    }
    /// `out = Wᵀ V` (r x n).
    fn wt_v(&mut self, w: &Self::Mat, out: &mut Self::Mat) -> Result<()> {
        self.product(Product::WtV(w), out)
    }
    /// Gram matrix of a factor (r x r): `Wᵀ W` for `Side::Left`, `H Hᵀ` for `Side::Right`
    /// ([`cross`](Engine::cross) of `x` with itself).
    fn gram(&mut self, x: &Self::Mat, side: Side, out: &mut Self::Mat) -> Result<()> {
        self.cross(x, x, side, out)
    }
    /// Both products the W update needs: `p = V Hᵀ` and `g = H Hᵀ` (an engine may share work).
    fn v_ht_and_gram(&mut self, h: &Self::Mat, p: &mut Self::Mat, g: &mut Self::Mat) -> Result<()> {
        self.v_ht(h, p)?;
        self.gram(h, Side::Right, g)
    }
    /// KL numerators, with `Z = V ⊘ max(WH, ε)` formed block by block (never whole):
    /// `Z Hᵀ` (m x r) for `Side::Left`, `Wᵀ Z` (r x n) for `Side::Right`.
    fn kl_numerator(
        &mut self,
        w: &Self::Mat,
        h: &Self::Mat,
        side: Side,
        out: &mut Self::Mat,
    ) -> Result<()> {
        self.product(Product::Kl(Blocks { w, h, side }), out)
    }
    /// The two products of the β-divergence multiplicative rules (β ∉ {1, 2}), with
    /// `Y = W H` formed block by block (never whole) and `ε = f32::EPSILON`:
    /// `A = V ⊙ Y₁^(β−2)`, `B = Y₂^(β−1)` where `Y₁ = max(Y, ε)` for β < 2 (`Y` else) and
    /// `Y₂ = max(Y, ε)` for β < 1 (`Y` else), as scikit-learn; then
    /// `num = A Hᵀ`, `den = B Hᵀ` (m x r) for `Side::Left` and `num = Wᵀ A`, `den = Wᵀ B`
    /// (r x n) for `Side::Right`.
    #[allow(clippy::too_many_arguments)]
    fn beta_products(
        &mut self,
        w: &Self::Mat,
        h: &Self::Mat,
        side: Side,
        beta: f32,
        num: &mut Self::Mat,
        den: &mut Self::Mat,
    ) -> Result<()>;
    /// `x[i,j] ← anchor[i,j]` wherever `anchor[i,j] != FREE` ([`FREE`]), bit for bit: the
    /// fixed components of a factor, or the skipped diagonal entries of a HALS Gram matrix.
    fn pin(&mut self, x: &mut Self::Mat, anchor: &Self::Mat) -> Result<()>;
    /// Per-component sums (r x 1) of `x`: row sums of H or column sums of W (see [`FactorSums`]).
    fn factor_sums(&mut self, x: &Self::Mat, which: FactorSums, out: &mut Self::Mat) -> Result<()>;

    /// Multiplicative update in place:
    /// `X ← X ⊙ f(N ⊘ d)`, `d = D + l1 + l2·X`, with `d = 0` replaced by `ε`,
    /// where `D` is given by `den` (see [`MuDenominator`]), `f` by `rule` (see [`MuRule`]) and
    /// `X` is W (Left) or H (Right). Results below the smallest normal f32 become 0.
    #[allow(clippy::too_many_arguments)]
    fn mu_step(
        &mut self,
        x: &mut Self::Mat,
        num: &Self::Mat,
        den: MuDenominator<'_, Self::Mat>,
        side: Side,
        reg: Regularization,
        eps: f32,
        rule: MuRule,
    ) -> Result<()>;

    /// Small product of two factors of the same orientation (r x r):
    /// `xᵀ y` for `Side::Left` (x, y are m x r), `x yᵀ` for `Side::Right` (x, y are r x n).
    fn cross(
        &mut self,
        x: &Self::Mat,
        y: &Self::Mat,
        side: Side,
        out: &mut Self::Mat,
    ) -> Result<()>;
    /// Product with a small square matrix `s` (r x r): `out = x s` for `Side::Left` (x is m x r),
    /// `out = s x` for `Side::Right` (x is r x n).
    fn mul_small(
        &mut self,
        x: &Self::Mat,
        s: &Self::Mat,
        side: Side,
        out: &mut Self::Mat,
    ) -> Result<()>;
    /// `out = xᵀ`.
    fn transpose(&mut self, x: &Self::Mat, out: &mut Self::Mat) -> Result<()>;
    /// `y ← a x + b y` (same shapes).
    fn axpby(&mut self, a: f32, x: &Self::Mat, b: f32, y: &mut Self::Mat) -> Result<()>;
    /// Masked products with `Z = M ⊙ (W H)` formed block by block (never whole), `M` an m x n
    /// 0/1 mask: `Z Hᵀ` (m x r) for `Side::Left`, `Wᵀ Z` (r x n) for `Side::Right`.
    fn masked_product(
        &mut self,
        mask: &Self::Mat,
        w: &Self::Mat,
        h: &Self::Mat,
        side: Side,
        out: &mut Self::Mat,
    ) -> Result<()> {
        self.product(Product::Masked(mask, Blocks { w, h, side }), out)
    }
    /// `½ ‖M ⊙ (V − W H)‖²_F`, accumulated in f64.
    fn masked_loss(&mut self, mask: &Self::Mat, w: &Self::Mat, h: &Self::Mat) -> Result<f64> {
        self.measure(w, h, Measure::Masked(mask))
    }

    /// HALS sweep in place over the r components t = 0..r, in order:
    /// Left (x = W, num = V Hᵀ, gram = H Hᵀ):
    /// `W[:,t] ← max(0, W[:,t] − ((W G)[:,t] − P[:,t] + l1 + l2 W[:,t]) / (G[t,t] + l2))`;
    /// Right (x = H, num = Wᵀ V, gram = Wᵀ W) likewise on the rows of H.
    /// Components whose Gram diagonal is zero are left unchanged.
    fn hals_step(
        &mut self,
        x: &mut Self::Mat,
        num: &Self::Mat,
        gram: &Self::Mat,
        side: Side,
        reg: Regularization,
    ) -> Result<()>;

    /// Up to `budget` HALS sweeps of `x` on fixed `num` and `gram`, stopping by `stop`
    /// (`prev` like `x` and `small` r x r are work space). This default decides on the host
    /// after each sweep, reading each sweep's move back; the GPU engine decides on the device.
    #[allow(clippy::too_many_arguments)]
    fn hals_sweeps(
        &mut self,
        x: &mut Self::Mat,
        num: &Self::Mat,
        gram: &Self::Mat,
        side: Side,
        reg: Regularization,
        budget: usize,
        stop: InnerStop,
        prev: &mut Self::Mat,
        small: &mut Self::Mat,
    ) -> Result<()> {
        if !stop.tracks(budget) {
            for _ in 0..budget {
                self.hals_step(x, num, gram, side, reg)?;
            }
            return Ok(());
        }
        let mut first = None;
        for _ in 0..budget {
            let moved = self.hals_step_tracked(x, num, gram, side, reg, prev, small)?;
            let done = match stop {
                InnerStop::FirstMove { tol } => match first {
                    None => {
                        first = Some(moved);
                        false
                    }
                    Some(f) => moved <= tol * tol * f,
                },
                InnerStop::Relative { tol } => {
                    moved <= tol * tol * inner::trace_of_gram(self, x, side, small)?
                }
            };
            if done {
                break;
            }
        }
        Ok(())
    }

    /// After inner step number `sweep` of `x` by an update other than HALS (online KL
    /// encodings), `prev` holding `x` before the step: whether the relative rule
    /// `‖x − prev‖² ≤ tol² ‖x‖²` stops the loop (`small`, r x r, is work space). This default
    /// reads both norms back ([`inner::host_relative_check`]); the GPU engine applies the rule on
    /// the device for `Side::Right`, never says stop, and undoes the steps after the rule is
    /// met, so the caller runs its whole budget without a read-back and gets the same `x`.
    #[allow(clippy::too_many_arguments)]
    fn relative_check(
        &mut self,
        x: &mut Self::Mat,
        prev: &mut Self::Mat,
        side: Side,
        sweep: usize,
        tol: f64,
        small: &mut Self::Mat,
    ) -> Result<bool> {
        let _ = sweep;
        inner::host_relative_check(self, x, prev, side, tol, small)
    }

    /// [`hals_step`](Engine::hals_step), returning how far it moved `x`:
    /// `‖x_new − x_old‖²_F`. This default keeps `x_old` in `prev` and forms the move's Gram
    /// matrix in `small` (r x r) to read its trace; an engine that can sum the move as it
    /// writes the sweep back overrides it.
    #[allow(clippy::too_many_arguments)]
    fn hals_step_tracked(
        &mut self,
        x: &mut Self::Mat,
        num: &Self::Mat,
        gram: &Self::Mat,
        side: Side,
        reg: Regularization,
        prev: &mut Self::Mat,
        small: &mut Self::Mat,
    ) -> Result<f64> {
        self.axpby(1.0, x, 0.0, prev)?;
        self.hals_step(x, num, gram, side, reg)?;
        self.axpby(1.0, x, -1.0, prev)?;
        self.gram(prev, side, small)?;
        let s = self.download(small)?;
        Ok((0..s.nrows()).map(|t| f64::from(s[[t, t]])).sum())
    }

    /// The divergence `D(V ‖ WH)` (without penalty terms), accumulated in f64.
    fn loss(&mut self, w: &Self::Mat, h: &Self::Mat, loss: Loss, eps: f32) -> Result<f64> {
        self.measure(w, h, Measure::Divergence(loss, eps))
    }

    /// Replace V by `v`, a matrix with the same number of rows (features) and any number of
    /// columns: online fits hand the engine one batch of samples after another, while the
    /// factors and statistics the engine holds stay where they are. Engines over sparse data
    /// refuse.
    fn set_batch(&mut self, v: Array2<f32>) -> Result<()>;

    /// Device work counters, for engines that run on a GPU.
    fn stats(&self) -> Option<GpuStats> {
        None
    }

    /// The Frobenius loss from products the iteration already has, without touching V:
    /// `½ (‖V‖² − 2⟨WᵀV, H⟩ + ⟨WᵀW, HHᵀ⟩)`. `None` when the engine does not offer it or when the
    /// value is too small to trust in f32 (see [`TraceLoss::checked`]); the solver then calls
    /// [`Engine::loss`].
    fn loss_from_products(
        &mut self,
        _wtv: &Self::Mat,
        _wtw: &Self::Mat,
        _h: &Self::Mat,
    ) -> Result<Option<f64>> {
        Ok(None)
    }

    /// Masked products whose mask `P` is the pattern of the engine's sparse V (its stored
    /// entries, observed or not zero), in `O(nnz·r)`: `(P ⊙ WH) Hᵀ` (m x r) for `Side::Left`,
    /// `Wᵀ (P ⊙ WH)` (r x n) for `Side::Right`. Engines over a dense V give
    /// [`NmfError::UnsupportedOption`](crate::NmfError::UnsupportedOption).
    fn pattern_product(
        &mut self,
        w: &Self::Mat,
        h: &Self::Mat,
        side: Side,
        out: &mut Self::Mat,
    ) -> Result<()> {
        self.product(Product::Pattern(Blocks { w, h, side }), out)
    }

    /// `½ ‖P ⊙ (V − W H)‖²_F` over the stored entries of the engine's sparse V, in f64.
    fn pattern_loss(&mut self, w: &Self::Mat, h: &Self::Mat) -> Result<f64> {
        self.measure(w, h, Measure::Pattern)
    }
}

/// The trace form of the Frobenius loss and what it cancels against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceLoss {
    pub loss: f64,
    pub v_sq_norm: f64,
}

/// Below this squared relative error `2D/‖V‖²` the trace form is recomputed exactly: its terms
/// cancel, and products accumulated in f32 carry an absolute error near `1e-6·‖V‖²`.
pub(crate) const TRACE_LOSS_MIN_REL_SQ: f64 = 1e-2;

impl TraceLoss {
    /// The loss when it is large enough relative to `‖V‖²` to be accurate, else `None`.
    pub fn checked(self) -> Option<f64> {
        if self.loss.is_finite() && 2.0 * self.loss >= TRACE_LOSS_MIN_REL_SQ * self.v_sq_norm {
            Some(self.loss)
        } else {
            None
        }
    }
}
