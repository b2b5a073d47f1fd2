//! A sparse V as the CPU engine's data operator: V in CSR with its transpose (the CSC form),
//! so that both `V Hᵀ` and `Wᵀ V = (Vᵀ W)ᵀ` run row by row of a CSR matrix, each output row
//! independent, over column panels for the rank in use where they pay (see [`super::sparse`]).

use std::ops::Range;

use ndarray::{Array2, ArrayView2, CowArray, Ix2};

use super::blocked::{masked_loss, masked_numerator};
use super::data::{DataOperator, Mat, Scratch};
use super::layout::{as_slice, as_slice_mut, pack_ht, row_major, take_scratch};
use super::sparse;
use crate::engine::data::{unsupported, DataOp};
use crate::engine::{Blocks, Measure, Product, Side};
use crate::error::{NmfError, Result};
use crate::options::Loss;
use crate::sparse::CsrMatrix;

/// A sparse V, its CSC copy, and their panels for the rank in use (made on first use).
pub(super) struct CsrV<'a> {
    pub(super) csr: &'a CsrMatrix,
    pub(super) csc: &'a CsrMatrix,
    panels: Option<SparsePanels>,
}

impl<'a> CsrV<'a> {
    /// `csc` is `csr.transpose()`.
    pub(super) fn new(csr: &'a CsrMatrix, csc: &'a CsrMatrix) -> Self {
        CsrV {
            csr,
            csc,
            panels: None,
        }
    }

    /// The panels for rank `r`.
    fn panels(&mut self, r: usize) -> &SparsePanels {
        panels_for(&mut self.panels, self.csr, self.csc, r)
    }

    /// `o = f(out's slice)` into `out`, through a row-major copy when `out` is not one.
    fn into_rows(out: &mut Array2<f32>, f: impl FnOnce(&mut [f32]) -> Result<()>) -> Result<()> {
        match out.as_slice_mut() {
            Some(o) => f(o),
            None => {
                let mut o = Array2::zeros(out.dim());
                f(as_slice_mut(&mut o))?;
                out.assign(&o);
                Ok(())
            }
        }
    }
}

/// The panels of a sparse V (for `V Hᵀ`) and of Vᵀ (for `Wᵀ V`), for one panel width; `None`
/// for a side whose panels would not pay ([`sparse::Panels::pays`]), which the products then
/// read straight from CSR.
struct SparsePanels {
    width: usize,
    v: Option<sparse::Panels>,
    vt: Option<sparse::Panels>,
}

impl SparsePanels {
    /// V as the products read it.
    fn v<'s>(&'s self, csr: &'s CsrMatrix) -> sparse::Operand<'s> {
        sparse::Operand::of(csr, self.v.as_ref())
    }
    /// Vᵀ as the products read it.
    fn vt<'s>(&'s self, csc: &'s CsrMatrix) -> sparse::Operand<'s> {
        sparse::Operand::of(csc, self.vt.as_ref())
    }
}

/// The panels for rank `r`, rebuilt when the rank (hence the width) changes.
fn panels_for<'p>(
    slot: &'p mut Option<SparsePanels>,
    csr: &CsrMatrix,
    csc: &CsrMatrix,
    r: usize,
) -> &'p SparsePanels {
    let width = sparse::Panels::width_for(r);
    if slot.as_ref().is_some_and(|p| p.width == width) {
        if let Some(p) = slot {
            return p;
        }
    }
    let (v, vt) = rayon::join(
        || sparse::Panels::build(csr, width),
        || sparse::Panels::build(csc, width),
    );
    debug_assert!(v.iter().chain(&vt).all(|p| p.width() == width));
    slot.insert(SparsePanels { width, v, vt })
}

impl CsrV<'_> {
    /// `out = V Hᵀ` (m x r), row by row of V.
    fn v_ht(&mut self, h: &Mat, out: &mut Mat, s: &mut Scratch) -> Result<()> {
        let r = h.nrows();
        pack_ht(h, &mut s.ht);
        let csr = self.csr;
        let a = self.panels(r).v(csr);
        Self::into_rows(out, |o| sparse::spmm(a, &s.ht, r, o))
    }

    /// `out = Wᵀ V` (r x n), row by row of Vᵀ.
    fn wt_v(&mut self, w: &Mat, out: &mut Mat) -> Result<()> {
        // Wᵀ V = (Vᵀ W)ᵀ: row j of Vᵀ W needs only column j of V.
        let w = row_major(w);
        let r = w.ncols();
        let csc = self.csc;
        let at = self.panels(r).vt(csc);
        sparse::spmm_t(at, as_slice(&w), r, out.view_mut())
    }

    /// The KL numerators at the stored entries.
    fn kl_numerator(&mut self, f: Blocks<'_, Mat>, out: &mut Mat, s: &mut Scratch) -> Result<()> {
        let Blocks { w, h, side } = f;
        let (csr, csc) = (self.csr, self.csc);
        let r = w.ncols();
        let wr = row_major(w);
        pack_ht(h, &mut s.ht);
        let ht = &s.ht;
        let panels = self.panels(r);
        match side {
            // Z Hᵀ: row i weighs Hᵀ[j] by v_ij / (W[i]·Hᵀ[j]).
            Side::Left => Self::into_rows(out, |o| {
                sparse::kl_spmm(panels.v(csr), as_slice(&wr), ht, r, o)
            }),
            // Wᵀ Z = (Zᵀ W)ᵀ: column j weighs W[i] by v_ij / (Hᵀ[j]·W[i]).
            Side::Right => sparse::kl_spmm_t(panels.vt(csc), ht, as_slice(&wr), r, out.view_mut()),
        }
    }

    /// `D(V ‖ WH)` from the stored entries' terms and the factors' sums or Gram matrices.
    fn divergence(
        &mut self,
        w: &Mat,
        h: &Mat,
        loss: Loss,
        eps: f32,
        s: &mut Scratch,
    ) -> Result<f64> {
        let (r, n) = h.dim();
        let wr = row_major(w);
        pack_ht(h, &mut s.ht);
        let ht = &s.ht;
        // The stored entries panel by panel, so that the rows of Hᵀ stay in cache.
        let csr = self.csr;
        let a = self.panels(r).v(csr);
        Ok(match loss.canonical() {
            Loss::ItakuraSaito | Loss::Beta(_) => return Err(unsupported(DataOp::Beta)),
            // ½ Σ_all (v − wh)² = ½ [Σ_nz (v − wh)² + Σ_zero wh²], with
            // Σ_zero wh² = ⟨WᵀW, HHᵀ⟩ − Σ_nz wh², all in f64.
            Loss::Frobenius => {
                let (res, sq) = sparse::frobenius_terms(a, as_slice(&wr), ht, r);
                let htv = ArrayView2::from_shape((n, r), &ht[..]).map_err(|_| {
                    NmfError::InvalidSparse {
                        reason: "internal: packed H has the wrong length".into(),
                    }
                })?;
                let quad = sparse::gram_inner_f64(wr.view(), htv);
                0.5 * (res + (quad - sq).max(0.0))
            }
            // Σ_nz [v log(v/wh) − v] + Σ_all wh, Σ_all WH = (1ᵀW)(H1).
            Loss::KullbackLeibler => {
                let kl = sparse::kl_term(a, as_slice(&wr), ht, r, eps);
                let total: f64 = w
                    .columns()
                    .into_iter()
                    .zip(h.rows())
                    .map(|(wc, hr)| {
                        let a: f64 = wc.iter().map(|&x| x as f64).sum();
                        let b: f64 = hr.iter().map(|&x| x as f64).sum();
                        a * b
                    })
                    .sum();
                kl + total
            }
        })
    }

    /// The products under the pattern of the stored entries.
    fn pattern_product(
        &mut self,
        f: Blocks<'_, Mat>,
        out: &mut Mat,
        s: &mut Scratch,
    ) -> Result<()> {
        let Blocks { w, h, side } = f;
        let (csr, csc) = (self.csr, self.csc);
        let (m, n) = csr.dim();
        let r = w.ncols();
        let wr = row_major(w);
        pack_ht(h, &mut s.ht);
        let panels = self.panels(r);
        match side {
            Side::Left => {
                let mut o = take_scratch(&mut s.left, (m, r));
                let a = panels.v(csr);
                sparse::pattern_spmm(a, as_slice(&wr), &s.ht, r, as_slice_mut(&mut o))?;
                out.assign(&o);
                s.left = Some(o);
            }
            Side::Right => {
                // Row j of (P ⊙ WH)ᵀ W over the columns of V, then transposed.
                let mut o = take_scratch(&mut s.right, (n, r));
                let a = panels.vt(csc);
                sparse::pattern_spmm(a, &s.ht, as_slice(&wr), r, as_slice_mut(&mut o))?;
                out.assign(&o.t());
                s.right = Some(o);
            }
        }
        Ok(())
    }

    /// `½ Σ_nz (v − wh)²` over the stored entries.
    fn pattern_loss(&mut self, w: &Mat, h: &Mat, s: &mut Scratch) -> Result<f64> {
        let r = w.ncols();
        let wr = row_major(w);
        pack_ht(h, &mut s.ht);
        let csr = self.csr;
        let a = self.panels(r).v(csr);
        let (res, _) = sparse::frobenius_terms(a, as_slice(&wr), &s.ht, r);
        Ok(0.5 * res)
    }
}

impl DataOperator for CsrV<'_> {
    fn dims(&self) -> (usize, usize) {
        self.csr.dim()
    }

    fn sq_norm(&self) -> f64 {
        self.csr.sq_norm()
    }

    fn packed_pays(&self, out: &Array2<f32>) -> bool {
        out.is_standard_layout()
    }

    fn v_ht_packed(&mut self, h: &Array2<f32>, ht: &[f32], out: &mut Array2<f32>) -> Result<()> {
        let r = h.nrows();
        let csr = self.csr;
        let a = self.panels(r).v(csr);
        sparse::spmm(a, ht, r, as_slice_mut(out))
    }

    fn dense_rows(&self, rows: Range<usize>) -> CowArray<'_, f32, Ix2> {
        let mut d = Array2::<f32>::zeros((rows.len(), self.csr.cols()));
        sparse::densify_rows(self.csr, rows.start, d.view_mut());
        CowArray::from(d)
    }

    fn product(&mut self, p: Product<'_, Mat>, out: &mut Mat, s: &mut Scratch) -> Result<()> {
        match p {
            Product::VHt(h) => self.v_ht(h, out, s),
            Product::WtV(w) => self.wt_v(w, out),
            Product::Kl(f) => self.kl_numerator(f, out, s),
            Product::Masked(mask, f) => masked_numerator(mask, f, out, &mut s.ht),
            Product::Pattern(f) => self.pattern_product(f, out, s),
        }
    }

    fn measure(&mut self, w: &Mat, h: &Mat, m: Measure<'_, Mat>, s: &mut Scratch) -> Result<f64> {
        match m {
            Measure::Divergence(loss, eps) => self.divergence(w, h, loss, eps, s),
            Measure::Masked(mask) => masked_loss(self, mask, w, h),
            Measure::Pattern => self.pattern_loss(w, h, s),
        }
    }
}
