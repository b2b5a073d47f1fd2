//! The CPU engine: ndarray storage, multithreaded GEMM ([`crate::linalg::gemm`]), rayon for
//! elementwise work.

mod blocked;
mod csr;
mod data;
mod dense;
mod divergence_rows;
mod elementwise;
mod hals;
mod layout;
mod products;
pub(crate) mod simd;
mod skinny;
mod small;
pub(crate) mod sparse;

pub(crate) use self::blocked::COLUMN_BLOCK_ENTRIES;
pub(crate) use self::sparse::SparseOp;

use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, CowArray, Zip};

use super::{Blocks, Measure, Product};
use super::{Engine, FactorSums, MuDenominator, MuRule, Side, TraceLoss, FREE};
use crate::error::{NmfError, Result};
use crate::options::Regularization;
use crate::sparse::CsrMatrix;
use csr::CsrV;
use data::{DataOperator, Scratch};
use dense::{DenseV, Packed};
use layout::{check_same, contiguous, pack_ht, take_scratch};

/// The CPU engine over a borrowed (or, when not contiguous, copied) data matrix, held as a
/// data operator ([`DataOperator`]: dense or CSR).
pub(crate) struct CpuEngine<'a> {
    v: Box<dyn DataOperator + 'a>,
    /// Work space reused across iterations.
    scratch: Scratch,
    /// `‖V‖²_F`, computed on first use.
    v_sq_norm: Option<f64>,
}

impl<'a> CpuEngine<'a> {
    /// Wrap `v`; it is copied only when it is neither row- nor column-contiguous.
    pub(crate) fn new(v: ArrayView2<'a, f32>) -> Self {
        let v = if v.is_standard_layout() || v.t().is_standard_layout() {
            CowArray::from(v)
        } else {
            CowArray::from(v.as_standard_layout().into_owned())
        };
        Self::with_data(Box::new(DenseV(v, Packed::Allowed)))
    }

    /// Wrap a sparse `v` and its transpose `vt` (`v.transpose()`, the CSC form of `v`).
    pub(crate) fn new_sparse(v: &'a CsrMatrix, vt: &'a CsrMatrix) -> Self {
        Self::with_data(Box::new(CsrV::new(v, vt)))
    }

    fn with_data(v: Box<dyn DataOperator + 'a>) -> Self {
        CpuEngine {
            v,
            scratch: Scratch::default(),
            v_sq_norm: None,
        }
    }

    /// One HALS sweep (see [`Engine::hals_step`]); with `track`, returns `‖x_new − x_old‖²_F`
    /// (0 without).
    fn hals_sweep(
        &mut self,
        x: &mut Array2<f32>,
        num: &Array2<f32>,
        gram: &Array2<f32>,
        side: Side,
        reg: Regularization,
        track: bool,
    ) -> Result<f64> {
        let r = match side {
            Side::Left => x.ncols(),
            Side::Right => x.nrows(),
        };
        check_same("the HALS numerator", num.dim(), x.dim())?;
        check_same("the HALS Gram matrix", gram.dim(), (r, r))?;
        Ok(match side {
            Side::Left => hals::sweep_rows(x.view_mut(), num.view(), gram.view(), reg, track),
            Side::Right => hals::sweep_cols(x.view_mut(), num.view(), gram.view(), reg, track),
        })
    }
}

impl Engine for CpuEngine<'_> {
    type Mat = Array2<f32>;

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn dims(&self) -> (usize, usize) {
        self.v.dims()
    }

    fn upload(&mut self, a: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        Ok(a.as_standard_layout().into_owned())
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<Array2<f32>> {
        Ok(Array2::zeros((rows, cols)))
    }

    fn download(&mut self, a: &Array2<f32>) -> Result<Array2<f32>> {
        Ok(a.clone())
    }

    fn product(&mut self, p: Product<'_, Array2<f32>>, out: &mut Array2<f32>) -> Result<()> {
        p.check(self.v.dims(), out)?;
        self.v.product(p, out, &mut self.scratch)
    }

    fn measure(
        &mut self,
        w: &Array2<f32>,
        h: &Array2<f32>,
        what: Measure<'_, Array2<f32>>,
    ) -> Result<f64> {
        what.check(self.v.dims(), w, h)?;
        self.v.measure(w, h, what, &mut self.scratch)
    }

    fn set_batch(&mut self, v: Array2<f32>) -> Result<()> {
        let (m, _) = self.v.dims();
        self.v.accepts_batches()?;
        if v.nrows() != m {
            return Err(NmfError::ShapeMismatch {
                what: "a batch of samples",
                expected: format!("{m} rows (features) in a dense batch"),
                found: format!("{} x {}", v.nrows(), v.ncols()),
            });
        }
        self.v = Box::new(DenseV(CowArray::from(contiguous(v)), Packed::Never));
        self.v_sq_norm = None;
        Ok(())
    }

    fn gram(&mut self, x: &Array2<f32>, side: Side, out: &mut Array2<f32>) -> Result<()> {
        self.cross(x, x, side, out)
    }

    fn v_ht_and_gram(
        &mut self,
        h: &Array2<f32>,
        p: &mut Array2<f32>,
        g: &mut Array2<f32>,
    ) -> Result<()> {
        // Pack Hᵀ once: V Hᵀ reads it as the skinny operand, and H Hᵀ = (Hᵀ)ᵀ Hᵀ.
        let (r, n) = h.dim();
        if simd::level() == simd::Level::None || !self.v.packed_pays(p) {
            self.v_ht(h, p)?;
            return self.gram(h, Side::Right, g);
        }
        let mut ht = std::mem::take(&mut self.scratch.ht);
        pack_ht(h, &mut ht);
        let res = self.v.v_ht_packed(h, &ht, p).and_then(|()| {
            let htv =
                ArrayView2::from_shape((n, r), &ht[..]).map_err(|_| NmfError::ShapeMismatch {
                    what: "the packed Hᵀ",
                    expected: format!("{n} x {r}"),
                    found: format!("{} floats", ht.len()),
                })?;
            products::at_b(htv, htv, g.view_mut())
        });
        self.scratch.ht = ht;
        res
    }

    fn loss_from_products(
        &mut self,
        wtv: &Array2<f32>,
        wtw: &Array2<f32>,
        h: &Array2<f32>,
    ) -> Result<Option<f64>> {
        let v = &self.v;
        let v_sq = *self.v_sq_norm.get_or_insert_with(|| v.sq_norm());
        let mut hht = take_scratch(&mut self.scratch.gram, wtw.dim());
        self.gram(h, Side::Right, &mut hht)?;
        let cross = Zip::from(wtv).and(h).par_fold(
            || 0.0f64,
            |acc, &q, &h| acc + q as f64 * h as f64,
            |a, b| a + b,
        );
        let quad = Zip::from(wtw)
            .and(&hht)
            .fold(0.0f64, |acc, &k, &g| acc + k as f64 * g as f64);
        self.scratch.gram = Some(hht);
        Ok(TraceLoss {
            loss: 0.5 * (v_sq - 2.0 * cross + quad),
            v_sq_norm: v_sq,
        }
        .checked())
    }

    fn beta_products(
        &mut self,
        w: &Array2<f32>,
        h: &Array2<f32>,
        side: Side,
        beta: f32,
        num: &mut Array2<f32>,
        den: &mut Array2<f32>,
    ) -> Result<()> {
        let f = Blocks { w, h, side };
        Product::Kl(f).check(self.v.dims(), num)?;
        Product::Kl(f).check(self.v.dims(), den)?;
        self.v.beta(f, beta, (num, den), &mut self.scratch)
    }

    fn pin(&mut self, x: &mut Array2<f32>, anchor: &Array2<f32>) -> Result<()> {
        check_same("the anchor of pinned entries", anchor.dim(), x.dim())?;
        Zip::from(x).and(anchor).for_each(|x, &a| {
            if a != FREE {
                *x = a;
            }
        });
        Ok(())
    }

    fn factor_sums(
        &mut self,
        x: &Array2<f32>,
        which: FactorSums,
        out: &mut Array2<f32>,
    ) -> Result<()> {
        match which {
            FactorSums::RowsOfH => {
                check_same("the row sums of H", out.dim(), (x.nrows(), 1))?;
                for (o, row) in out.iter_mut().zip(x.rows()) {
                    *o = row.iter().map(|&v| v as f64).sum::<f64>() as f32;
                }
            }
            FactorSums::ColumnsOfW => {
                check_same("the column sums of W", out.dim(), (x.ncols(), 1))?;
                for (o, col) in out.iter_mut().zip(x.columns()) {
                    let s = col.iter().map(|&v| v as f64).sum::<f64>() as f32;
                    *o = if s == 0.0 { 1.0 } else { s };
                }
            }
        }
        Ok(())
    }

    fn mu_step(
        &mut self,
        x: &mut Array2<f32>,
        num: &Array2<f32>,
        den: MuDenominator<'_, Array2<f32>>,
        side: Side,
        reg: Regularization,
        eps: f32,
        rule: MuRule,
    ) -> Result<()> {
        check_same("the multiplicative update's numerator", num.dim(), x.dim())?;
        let Regularization { l1, l2 } = reg;
        let update = move |x: &mut f32, n: f32, d: f32| {
            let mut d = d + l1 + l2 * *x;
            if d == 0.0 {
                d = eps;
            }
            *x = rule.flush(*x * rule.apply(n / d));
        };
        match den {
            // H ← H ⊙ f(Q ⊘ (K H + …)): the product and the update span by span.
            MuDenominator::Gram(g) | MuDenominator::Product(g)
                if side == Side::Right
                    && small::times_wide_update(
                        g.view(),
                        x.view_mut(),
                        num.view(),
                        reg,
                        eps,
                        rule,
                    )? => {}
            // W ← W ⊙ f(P ⊘ (W G + …)): the product and the update block by block of rows.
            MuDenominator::Gram(g) | MuDenominator::Product(g)
                if side == Side::Left
                    && small::tall_times_update(
                        x.view_mut(),
                        g.view(),
                        num.view(),
                        reg,
                        eps,
                        rule,
                    )? => {}
            MuDenominator::Gram(g) | MuDenominator::Product(g) => {
                let slot = match side {
                    Side::Left => &mut self.scratch.left,
                    Side::Right => &mut self.scratch.right,
                };
                let mut d = take_scratch(slot, x.dim());
                match side {
                    // X P = X (Pᵀ)ᵀ, the skinny A Bᵀ kernel with B = Pᵀ.
                    Side::Left => {
                        products::a_bt(x.view(), g.t(), d.view_mut(), &mut self.scratch.ht)?
                    }
                    // P X.
                    Side::Right => products::square_times(g.view(), x.view(), d.view_mut())?,
                }
                let slices = (x.as_slice_mut(), num.as_slice(), d.as_slice());
                if let (Some(xs), Some(ns), Some(ds)) = slices {
                    mu_update_slices(xs, ns, ds, reg, eps, rule);
                } else {
                    Zip::from(&mut *x)
                        .and(num)
                        .and(&d)
                        .par_for_each(|x, &n, &d| update(x, n, d));
                }
                *slot = Some(d);
            }
            MuDenominator::Elementwise(d) => {
                let slices = (x.as_slice_mut(), num.as_slice(), d.as_slice());
                if let (Some(xs), Some(ns), Some(ds)) = slices {
                    check_same(
                        "the multiplicative update's denominator",
                        d.dim(),
                        num.dim(),
                    )?;
                    mu_update_slices(xs, ns, ds, reg, eps, rule);
                } else {
                    Zip::from(&mut *x)
                        .and(num)
                        .and(d)
                        .par_for_each(|x, &n, &d| update(x, n, d));
                }
            }
            MuDenominator::Sums(s) => {
                let level = simd::level();
                match side {
                    Side::Left => {
                        let s = s.column(0);
                        Zip::from(x.rows_mut())
                            .and(num.rows())
                            .par_for_each(|mut xr, nr| {
                                let slices = (xr.as_slice_mut(), nr.as_slice(), s.as_slice());
                                match slices {
                                    (Some(xs), Some(ns), Some(ss)) if ss.len() == xs.len() => {
                                        let d = elementwise::Den::Each(ss);
                                        elementwise::mu_chunk(level, xs, ns, d, reg, eps, rule)
                                    }
                                    _ => Zip::from(&mut xr)
                                        .and(&nr)
                                        .and(&s)
                                        .for_each(|x, &n, &d| update(x, n, d)),
                                }
                            });
                    }
                    Side::Right => {
                        Zip::from(x.rows_mut())
                            .and(num.rows())
                            .and(s.rows())
                            .par_for_each(|mut xr, nr, sr| {
                                let d = sr[0];
                                match (xr.as_slice_mut(), nr.as_slice()) {
                                    (Some(xs), Some(ns)) => {
                                        let den = elementwise::Den::All(d);
                                        elementwise::mu_chunk(level, xs, ns, den, reg, eps, rule)
                                    }
                                    _ => Zip::from(&mut xr)
                                        .and(&nr)
                                        .for_each(|x, &n| update(x, n, d)),
                                }
                            });
                    }
                }
            }
        }
        Ok(())
    }

    fn cross(
        &mut self,
        x: &Array2<f32>,
        y: &Array2<f32>,
        side: Side,
        out: &mut Array2<f32>,
    ) -> Result<()> {
        match side {
            Side::Left => products::at_b(x.view(), y.view(), out.view_mut()),
            Side::Right => products::a_bt(x.view(), y.view(), out.view_mut(), &mut self.scratch.ht),
        }
    }

    fn mul_small(
        &mut self,
        x: &Array2<f32>,
        s: &Array2<f32>,
        side: Side,
        out: &mut Array2<f32>,
    ) -> Result<()> {
        match side {
            // X S = X (Sᵀ)ᵀ.
            Side::Left => products::a_bt(x.view(), s.t(), out.view_mut(), &mut self.scratch.ht),
            Side::Right => products::square_times(s.view(), x.view(), out.view_mut()),
        }
    }

    fn transpose(&mut self, x: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        out.assign(&x.t());
        Ok(())
    }

    fn axpby(&mut self, a: f32, x: &Array2<f32>, b: f32, y: &mut Array2<f32>) -> Result<()> {
        Zip::from(y)
            .and(x)
            .par_for_each(|y, &x| *y = a * x + b * *y);
        Ok(())
    }

    fn hals_step(
        &mut self,
        x: &mut Array2<f32>,
        num: &Array2<f32>,
        gram: &Array2<f32>,
        side: Side,
        reg: Regularization,
    ) -> Result<()> {
        self.hals_sweep(x, num, gram, side, reg, false).map(|_| ())
    }

    fn hals_step_tracked(
        &mut self,
        x: &mut Array2<f32>,
        num: &Array2<f32>,
        gram: &Array2<f32>,
        side: Side,
        reg: Regularization,
        _prev: &mut Array2<f32>,
        _small: &mut Array2<f32>,
    ) -> Result<f64> {
        self.hals_sweep(x, num, gram, side, reg, true)
    }
}

/// [`Engine::mu_step`]'s elementwise update over contiguous storage, `x ← x ⊙ f(n ⊘ d')` with
/// `d' = d + l1 + l2·x` (zero replaced by `eps`), the same operations as the elementwise path in
/// the same order, in parallel chunks, each compiled for [`simd::level`]
/// ([`elementwise::mu_chunk`]).
fn mu_update_slices(
    x: &mut [f32],
    num: &[f32],
    den: &[f32],
    reg: Regularization,
    eps: f32,
    rule: MuRule,
) {
    use rayon::slice::{ParallelSlice, ParallelSliceMut};
    const CHUNK: usize = 1 << 14;
    let level = simd::level();
    x.par_chunks_mut(CHUNK)
        .zip(num.par_chunks(CHUNK))
        .zip(den.par_chunks(CHUNK))
        .for_each(move |((xc, nc), dc)| {
            elementwise::mu_chunk(level, xc, nc, elementwise::Den::Each(dc), reg, eps, rule)
        });
}

/// Values below the smallest normal f32 become zero.
///
/// Multiplicative updates drive inactive entries towards zero geometrically; once they are
/// subnormal, every product that reads them runs through the CPU's slow microcode path (long
/// fits were seen to slow down eightfold). Such entries carry no information, and zero is where
/// the update was taking them.
#[inline(always)]
pub(crate) fn flush_subnormal(x: f32) -> f32 {
    if x < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}
