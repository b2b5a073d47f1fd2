//! A dense V (row- or column-contiguous) as the CPU engine's data operator: the skinny and
//! GEMM products ([`super::products`]) and the blocked loops that form `W H` a block at a
//! time ([`super::blocked`]).

use std::ops::Range;

use ndarray::parallel::prelude::*;
use ndarray::{Array2, Axis, CowArray, Ix2};

use super::blocked::{
    block_divergence, block_rows, blocked_beta, blocked_numerator, masked_loss, masked_numerator,
    ratio_in_place, sum_sq_diff,
};
use super::data::{DataOperator, Mat, Pair, Scratch};
use super::products;
use super::skinny::{self, PackedPanels};
use crate::engine::data::{unsupported, DataOp};
use crate::engine::{Blocks, Measure, Product};
use crate::error::Result;
use crate::options::Loss;

/// A dense V, borrowed or (when it was not contiguous, or is a batch) owned, and the copy of
/// it `Wᵀ V` reads, once made ([`DenseV::packed`]).
pub(super) struct DenseV<'a>(pub(super) CowArray<'a, f32, Ix2>, pub(super) Packed);

/// The largest copy of V made for `Wᵀ V`: the fits' estimate counts it in the engines' fixed
/// work space (solver/budget.rs). Measured on one core of a Sapphire Rapids Xeon, the
/// copy took `Wᵀ V` at 361 x 2429, r 49 from 0.80 to 0.67 ms (the per-call copy of each
/// block of V was a fifth of it); at 4096², where V comes from memory either way, it gained
/// nothing measurable.
pub(super) const PACKED_MAX_BYTES: usize = 32 << 20;

/// Whether a dense V may be copied into the panels of `Wᵀ V` ([`skinny::PackedPanels`]), and
/// the copy once made.
pub(super) enum Packed {
    /// Not copied: too large, no vector level, or a batch (used for one product only).
    Never,
    /// Copied at the first `Wᵀ V`, where the copy is at most [`PACKED_MAX_BYTES`].
    Allowed,
    /// The copy.
    Made(PackedPanels),
}

impl DenseV<'_> {
    /// `D(V ‖ WH)`, a block of rows of `W H` at a time ([`block_divergence`]).
    fn divergence(&self, w: &Mat, h: &Mat, loss: Loss, eps: f32) -> Result<f64> {
        let v = &self.0;
        let n = v.ncols();
        let bs = block_rows(n);
        let wide = products::WideFactor::new(h.view());
        v.axis_chunks_iter(Axis(0), bs)
            .into_par_iter()
            .zip(w.axis_chunks_iter(Axis(0), bs))
            .map(|(vb, wb)| {
                let mut wh = Array2::<f32>::zeros((vb.nrows(), n));
                wide.times(wb, wh.view_mut())?;
                Ok(block_divergence(vb, wh.view(), loss, eps))
            })
            .try_reduce(|| 0.0, |a, b| Ok(a + b))
    }
}

impl DataOperator for DenseV<'_> {
    fn dims(&self) -> (usize, usize) {
        self.0.dim()
    }

    fn sq_norm(&self) -> f64 {
        self.0
            .axis_chunks_iter(Axis(0), 64)
            .into_par_iter()
            .map(|b| {
                b.rows()
                    .into_iter()
                    .map(|r| match r.as_slice() {
                        Some(rs) => sum_sq_diff(rs, &[]),
                        None => r.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>(),
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
    }

    fn product(&mut self, p: Product<'_, Mat>, out: &mut Mat, s: &mut Scratch) -> Result<()> {
        let v = self.0.view();
        match p {
            Product::VHt(h) => products::a_bt(v, h.view(), out.view_mut(), &mut s.ht),
            Product::WtV(w) => {
                if matches!(self.1, Packed::Allowed) {
                    let (m, n) = v.dim();
                    self.1 = if PackedPanels::bytes(m, n) <= PACKED_MAX_BYTES {
                        PackedPanels::new(v).map_or(Packed::Never, Packed::Made)
                    } else {
                        Packed::Never
                    };
                }
                if let Packed::Made(p) = &self.1 {
                    if skinny::at_b_packed(w.view(), v, p, out.view_mut())? {
                        return Ok(());
                    }
                }
                products::at_b(w.view(), v, out.view_mut())
            }
            Product::Kl(f) => blocked_numerator(v, &mut s.ht, f, out, ratio_in_place),
            Product::Masked(mask, f) => masked_numerator(mask, f, out, &mut s.ht),
            Product::Pattern(_) => Err(unsupported(DataOp::Pattern)),
        }
    }

    fn measure(&mut self, w: &Mat, h: &Mat, m: Measure<'_, Mat>, _s: &mut Scratch) -> Result<f64> {
        match m {
            Measure::Divergence(loss, eps) => self.divergence(w, h, loss, eps),
            Measure::Masked(mask) => masked_loss(self, mask, w, h),
            Measure::Pattern => Err(unsupported(DataOp::Pattern)),
        }
    }

    fn packed_pays(&self, _out: &Mat) -> bool {
        self.0.is_standard_layout()
    }

    fn v_ht_packed(&mut self, h: &Mat, ht: &[f32], out: &mut Mat) -> Result<()> {
        products::a_bt_packed(self.0.view(), h.view(), ht, out.view_mut())
    }

    fn dense_rows(&self, rows: Range<usize>) -> CowArray<'_, f32, Ix2> {
        CowArray::from(self.0.slice(ndarray::s![rows, ..]))
    }

    fn beta(&mut self, f: Blocks<'_, Mat>, b: f32, out: Pair<'_>, s: &mut Scratch) -> Result<()> {
        blocked_beta(self.0.view(), &mut s.ht, f, b, out)
    }

    fn accepts_batches(&self) -> Result<()> {
        Ok(())
    }
}
