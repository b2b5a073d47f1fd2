//! The CPU engine: ndarray storage, multithreaded GEMM ([`crate::linalg::gemm`]), rayon for
//! elementwise work.

mod elementwise;
mod hals;
mod products;
mod simd;
mod skinny;
mod small;
pub(crate) mod sparse;

pub(crate) use self::sparse::SparseOp;

use super::divergence::{self, beta_entry, beta_pair};
use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, CowArray, Ix2, Zip};

use super::{Engine, FactorSums, MuDenominator, MuRule, Side, TraceLoss, FREE};
use crate::error::{NmfError, Result};
use crate::options::{Loss, Regularization};
use crate::sparse::CsrMatrix;

/// Target number of f32 entries in one block of `V` processed at once by blocked kernels
/// (KL ratios, exact losses): about 1 MiB, so a block of `WH` stays in cache.
const BLOCK_ENTRIES: usize = 1 << 18;

/// The data matrix as the CPU engine holds it.
enum Data<'a> {
    /// Dense, row- or column-contiguous.
    Dense(CowArray<'a, f32, Ix2>),
    /// Sparse: the CSR matrix and its transpose (the CSC form), so that both `V Hᵀ` and
    /// `Wᵀ V = (Vᵀ W)ᵀ` run row by row of a CSR matrix, each output row independent.
    Sparse {
        csr: &'a CsrMatrix,
        csc: &'a CsrMatrix,
    },
}

/// The CPU engine over a borrowed (or, when not contiguous, copied) data matrix.
pub(crate) struct CpuEngine<'a> {
    v: Data<'a>,
    /// Scratch for `W G` (m x r) and `K H` (r x n), reused across iterations.
    scratch_left: Option<Array2<f32>>,
    scratch_right: Option<Array2<f32>>,
    /// Scratch for the packed `Hᵀ` of the skinny `V Hᵀ` kernel.
    scratch_ht: Vec<f32>,
    /// Scratch for `H Hᵀ` in the trace form of the loss.
    scratch_gram: Option<Array2<f32>>,
    /// `‖V‖²_F`, computed on first use.
    v_sq_norm: Option<f64>,
    /// Sparse V and Vᵀ split into column panels for the rank in use (where that pays), made on
    /// first use.
    panels: Option<SparsePanels>,
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

impl<'a> CpuEngine<'a> {
    /// Wrap `v`; it is copied only when it is neither row- nor column-contiguous.
    pub(crate) fn new(v: ArrayView2<'a, f32>) -> Self {
        let v = if v.is_standard_layout() || v.t().is_standard_layout() {
            CowArray::from(v)
        } else {
            CowArray::from(v.as_standard_layout().into_owned())
        };
        Self::with_data(Data::Dense(v))
    }

    /// Wrap a sparse `v` and its transpose `vt` (`v.transpose()`, the CSC form of `v`).
    pub(crate) fn new_sparse(v: &'a CsrMatrix, vt: &'a CsrMatrix) -> Self {
        Self::with_data(Data::Sparse { csr: v, csc: vt })
    }

    fn with_data(v: Data<'a>) -> Self {
        CpuEngine {
            v,
            scratch_left: None,
            scratch_right: None,
            scratch_ht: Vec::new(),
            scratch_gram: None,
            v_sq_norm: None,
            panels: None,
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

    /// `(m, n)` of V.
    fn shape(&self) -> (usize, usize) {
        match &self.v {
            Data::Dense(v) => v.dim(),
            Data::Sparse { csr, .. } => csr.dim(),
        }
    }
}

/// Pack `Hᵀ` (n x r, row-major) of `h` (r x n) into `scratch`.
fn pack_ht(h: &Array2<f32>, scratch: &mut Vec<f32>) {
    let (r, n) = h.dim();
    scratch.clear();
    scratch.resize(n * r, 0.0);
    skinny::transpose_into(h.view(), scratch);
}

/// `W` (m x r) as a row-major slice, borrowed when it is one already.
fn row_major(w: &Array2<f32>) -> CowArray<'_, f32, Ix2> {
    w.as_standard_layout()
}

/// The numerators of the KL and masked updates, block by block so that `Z` is never whole:
/// `Z = f(W H, D)` with `D` the data (`V` for KL, the mask `M` for masked NMF) and
/// `f = combine` applied per block (`V ⊘ max(WH, ε)` or `M ⊙ WH`); then `out = Z Hᵀ` (m x r)
/// for `Side::Left` or `out = Wᵀ Z` (r x n) for `Side::Right` ([`blocked_products`]).
fn blocked_numerator(
    data: ArrayView2<'_, f32>,
    scratch_ht: &mut Vec<f32>,
    w: &Array2<f32>,
    h: &Array2<f32>,
    side: Side,
    out: &mut Array2<f32>,
    combine: impl Fn(&mut Array2<f32>, ArrayView2<'_, f32>) + Sync,
) -> Result<()> {
    blocked_products(data, scratch_ht, w, h, side, out, None, |z, _, db| {
        combine(z, db)
    })
}

/// The β-divergence products of [`Engine::beta_products`], each block of `Y = W H` formed
/// once for both: `A = V ⊙ Y₁^(β−2)` and `B = Y₂^(β−1)` (see [`beta_pair`]), then
/// `num = A Hᵀ`, `den = B Hᵀ` (Left) or `num = Wᵀ A`, `den = Wᵀ B` (Right)
/// ([`blocked_products`]).
#[allow(clippy::too_many_arguments)]
fn blocked_beta(
    data: ArrayView2<'_, f32>,
    scratch_ht: &mut Vec<f32>,
    w: &Array2<f32>,
    h: &Array2<f32>,
    side: Side,
    beta: f32,
    num: &mut Array2<f32>,
    den: &mut Array2<f32>,
) -> Result<()> {
    blocked_products(data, scratch_ht, w, h, side, num, Some(den), |z, b, vb| {
        if let Some(b) = b {
            Zip::from(z).and(b).and(vb).for_each(|y, b, &x| {
                let (a, d) = beta_pair(*y, beta);
                *y = x * a;
                *b = d;
            })
        }
    })
}

/// The one blocked-products loop: for each block of rows (`Side::Left`, about
/// [`BLOCK_ENTRIES`] entries) or of columns (`Side::Right`) of the data `D`, form that block of
/// `Y = W H`, let `combine(Y, B, D)` turn it into `Z` (and, when a second output is asked
/// for, fill a second block `B`), then write `out = Z Hᵀ` (and `out₂ = B Hᵀ`) for `Left`, with
/// `Hᵀ` packed once into `scratch_ht`, or `out = Wᵀ Z` (and `out₂ = Wᵀ B`) for `Right`. The
/// blocks run in parallel; `Y` is never whole. Shapes were checked by the caller
/// ([`check_factors`]).
#[allow(clippy::too_many_arguments)]
fn blocked_products(
    data: ArrayView2<'_, f32>,
    scratch_ht: &mut Vec<f32>,
    w: &Array2<f32>,
    h: &Array2<f32>,
    side: Side,
    out: &mut Array2<f32>,
    second: Option<&mut Array2<f32>>,
    combine: impl Fn(&mut Array2<f32>, Option<&mut Array2<f32>>, ArrayView2<'_, f32>) + Sync,
) -> Result<()> {
    let (m, n) = data.dim();
    let (axis, bs) = match side {
        Side::Left => (Axis(0), block_rows(n)),
        Side::Right => (Axis(1), block_rows(m)),
    };
    let outs: Vec<_> = out.axis_chunks_iter_mut(axis, bs).collect();
    let mut seconds: Vec<Option<ArrayViewMut2<'_, f32>>> = match second {
        Some(s) => s.axis_chunks_iter_mut(axis, bs).map(Some).collect(),
        None => Vec::new(),
    };
    seconds.resize_with(outs.len(), || None);
    let blocks: Vec<_> = data
        .axis_chunks_iter(axis, bs)
        .zip(outs)
        .zip(seconds)
        .enumerate()
        .collect();
    match side {
        Side::Left => {
            let mut ht = std::mem::take(scratch_ht);
            pack_ht(h, &mut ht);
            let res = blocks.into_par_iter().try_for_each(|(k, ((db, ob), sb))| {
                let wb = w.slice(ndarray::s![k * bs..k * bs + db.nrows(), ..]);
                let mut z = Array2::<f32>::zeros((db.nrows(), n));
                let mut b = sb.as_ref().map(|_| Array2::<f32>::zeros((db.nrows(), n)));
                products::at_b(wb.t(), h.view(), z.view_mut())?;
                combine(&mut z, b.as_mut(), db);
                products::a_bt_packed(z.view(), h.view(), &ht, ob)?;
                match (b, sb) {
                    (Some(b), Some(sb)) => products::a_bt_packed(b.view(), h.view(), &ht, sb),
                    _ => Ok(()),
                }
            });
            *scratch_ht = ht;
            res
        }
        Side::Right => {
            let wt = w.t().as_standard_layout().into_owned();
            blocks.into_par_iter().try_for_each(|(k, ((db, ob), sb))| {
                let hb = h.slice(ndarray::s![.., k * bs..k * bs + db.ncols()]);
                let mut z = Array2::<f32>::zeros((m, db.ncols()));
                let mut b = sb.as_ref().map(|_| Array2::<f32>::zeros((m, db.ncols())));
                products::at_b(wt.view(), hb, z.view_mut())?;
                combine(&mut z, b.as_mut(), db);
                products::at_b(w.view(), z.view(), ob)?;
                match (b, sb) {
                    (Some(b), Some(sb)) => products::at_b(w.view(), b.view(), sb),
                    _ => Ok(()),
                }
            })
        }
    }
}

/// Rows (or columns) of a block of `V` or `M` processed at once when the other dimension is
/// `cols`: about [`BLOCK_ENTRIES`] entries.
fn block_rows(cols: usize) -> usize {
    (BLOCK_ENTRIES / cols.max(1)).clamp(4, 4096)
}

/// Check that `w` (m x r) and `h` (r x n) are factors of V (m x n), and that `out` (when given)
/// has the shape `expected`: the blocked products below zip row or column blocks of V, W, H
/// and the output, and must not silently stop at the shortest.
fn check_factors(
    v: (usize, usize),
    w: &Array2<f32>,
    h: &Array2<f32>,
    out: Option<((usize, usize), (usize, usize))>,
) -> Result<()> {
    let (m, n) = v;
    let r = w.ncols();
    let bad = |what: &'static str, expected: String, found: (usize, usize)| {
        Err(NmfError::ShapeMismatch {
            what,
            expected,
            found: format!("{} x {}", found.0, found.1),
        })
    };
    if w.nrows() != m {
        return bad("W", format!("{m} x r (the rows of V)"), w.dim());
    }
    if h.dim() != (r, n) {
        return bad("H", format!("{r} x {n}"), h.dim());
    }
    if let Some((got, want)) = out {
        if got != want {
            return bad("the output", format!("{} x {}", want.0, want.1), got);
        }
    }
    Ok(())
}

/// `Err` unless an operand has the shape `want`.
fn check_same(what: &'static str, got: (usize, usize), want: (usize, usize)) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(NmfError::ShapeMismatch {
            what,
            expected: format!("{} x {}", want.0, want.1),
            found: format!("{} x {}", got.0, got.1),
        })
    }
}

/// Take (or create) a scratch matrix of the given shape.
fn take_scratch(slot: &mut Option<Array2<f32>>, shape: (usize, usize)) -> Array2<f32> {
    match slot.take() {
        Some(a) if a.dim() == shape => a,
        _ => Array2::zeros(shape),
    }
}

impl Engine for CpuEngine<'_> {
    type Mat = Array2<f32>;

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn dims(&self) -> (usize, usize) {
        self.shape()
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

    fn set_batch(&mut self, v: Array2<f32>) -> Result<()> {
        let (m, _) = self.shape();
        if matches!(self.v, Data::Sparse { .. }) || v.nrows() != m {
            return Err(NmfError::ShapeMismatch {
                what: "a batch of samples",
                expected: format!("{m} rows (features) in a dense batch"),
                found: format!("{} x {}", v.nrows(), v.ncols()),
            });
        }
        self.v = Data::Dense(CowArray::from(contiguous(v)));
        self.v_sq_norm = None;
        Ok(())
    }

    fn v_ht(&mut self, h: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        let v = match &self.v {
            Data::Dense(v) => v,
            Data::Sparse { csr, csc } => {
                let r = h.nrows();
                pack_ht(h, &mut self.scratch_ht);
                let a = panels_for(&mut self.panels, csr, csc, r).v(csr);
                match out.as_slice_mut() {
                    Some(o) => sparse::spmm(a, &self.scratch_ht, r, o)?,
                    None => {
                        let mut o = Array2::zeros(out.dim());
                        sparse::spmm(a, &self.scratch_ht, r, as_slice_mut(&mut o))?;
                        out.assign(&o);
                    }
                }
                return Ok(());
            }
        };
        products::a_bt(v.view(), h.view(), out.view_mut(), &mut self.scratch_ht)
    }

    fn wt_v(&mut self, w: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        let v = match &self.v {
            Data::Dense(v) => v,
            Data::Sparse { csr, csc } => {
                // Wᵀ V = (Vᵀ W)ᵀ: row j of Vᵀ W needs only column j of V.
                let w = row_major(w);
                let r = w.ncols();
                let at = panels_for(&mut self.panels, csr, csc, r).vt(csc);
                sparse::spmm_t(at, as_slice(&w), r, out.view_mut())?;
                return Ok(());
            }
        };
        products::at_b(w.view(), v.view(), out.view_mut())
    }

    fn gram(&mut self, x: &Array2<f32>, side: Side, out: &mut Array2<f32>) -> Result<()> {
        match side {
            Side::Left => products::at_b(x.view(), x.view(), out.view_mut()),
            Side::Right => products::a_bt(x.view(), x.view(), out.view_mut(), &mut self.scratch_ht),
        }
    }

    fn v_ht_and_gram(
        &mut self,
        h: &Array2<f32>,
        p: &mut Array2<f32>,
        g: &mut Array2<f32>,
    ) -> Result<()> {
        // Pack Hᵀ once: V Hᵀ reads it as the skinny operand, and H Hᵀ = (Hᵀ)ᵀ Hᵀ.
        let (r, n) = h.dim();
        let packed_pays = match &self.v {
            Data::Dense(v) => v.is_standard_layout(),
            Data::Sparse { .. } => p.is_standard_layout(),
        };
        if simd::level() == simd::Level::None || !packed_pays {
            self.v_ht(h, p)?;
            return self.gram(h, Side::Right, g);
        }
        let mut ht = std::mem::take(&mut self.scratch_ht);
        pack_ht(h, &mut ht);
        let res = match &self.v {
            Data::Dense(v) => products::a_bt_packed(v.view(), h.view(), &ht, p.view_mut()),
            Data::Sparse { csr, csc } => {
                let a = panels_for(&mut self.panels, csr, csc, r).v(csr);
                sparse::spmm(a, &ht, r, as_slice_mut(p))
            }
        }
        .and_then(|()| {
            let htv =
                ArrayView2::from_shape((n, r), &ht[..]).map_err(|_| NmfError::ShapeMismatch {
                    what: "the packed Hᵀ",
                    expected: format!("{n} x {r}"),
                    found: format!("{} floats", ht.len()),
                })?;
            products::at_b(htv, htv, g.view_mut())
        });
        self.scratch_ht = ht;
        res
    }

    fn loss_from_products(
        &mut self,
        wtv: &Array2<f32>,
        wtw: &Array2<f32>,
        h: &Array2<f32>,
    ) -> Result<Option<f64>> {
        let v_sq = *self.v_sq_norm.get_or_insert_with(|| match &self.v {
            Data::Sparse { csr, .. } => csr.sq_norm(),
            Data::Dense(v) => v
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
                .sum::<f64>(),
        });
        let mut hht = take_scratch(&mut self.scratch_gram, wtw.dim());
        self.gram(h, Side::Right, &mut hht)?;
        let cross = Zip::from(wtv).and(h).par_fold(
            || 0.0f64,
            |acc, &q, &h| acc + q as f64 * h as f64,
            |a, b| a + b,
        );
        let quad = Zip::from(wtw)
            .and(&hht)
            .fold(0.0f64, |acc, &k, &g| acc + k as f64 * g as f64);
        self.scratch_gram = Some(hht);
        Ok(TraceLoss {
            loss: 0.5 * (v_sq - 2.0 * cross + quad),
            v_sq_norm: v_sq,
        }
        .checked())
    }

    fn kl_numerator(
        &mut self,
        w: &Array2<f32>,
        h: &Array2<f32>,
        side: Side,
        out: &mut Array2<f32>,
    ) -> Result<()> {
        let (m, n) = self.shape();
        let want = match side {
            Side::Left => (m, w.ncols()),
            Side::Right => (w.ncols(), n),
        };
        check_factors((m, n), w, h, Some((out.dim(), want)))?;
        match &self.v {
            Data::Dense(v) => blocked_numerator(
                v.view(),
                &mut self.scratch_ht,
                w,
                h,
                side,
                out,
                ratio_in_place,
            )?,
            Data::Sparse { csr, csc } => {
                let r = w.ncols();
                let wr = row_major(w);
                pack_ht(h, &mut self.scratch_ht);
                let ht = &self.scratch_ht;
                let panels = panels_for(&mut self.panels, csr, csc, r);
                match side {
                    // Z Hᵀ: row i weighs Hᵀ[j] by v_ij / (W[i]·Hᵀ[j]).
                    Side::Left => match out.as_slice_mut() {
                        Some(o) => sparse::kl_spmm(panels.v(csr), as_slice(&wr), ht, r, o)?,
                        None => {
                            let mut o = Array2::zeros(out.dim());
                            let os = as_slice_mut(&mut o);
                            sparse::kl_spmm(panels.v(csr), as_slice(&wr), ht, r, os)?;
                            out.assign(&o);
                        }
                    },
                    // Wᵀ Z = (Zᵀ W)ᵀ: column j weighs W[i] by v_ij / (Hᵀ[j]·W[i]).
                    Side::Right => {
                        sparse::kl_spmm_t(panels.vt(csc), ht, as_slice(&wr), r, out.view_mut())?
                    }
                }
            }
        }
        Ok(())
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
        let (m, n) = self.shape();
        let want = match side {
            Side::Left => (m, w.ncols()),
            Side::Right => (w.ncols(), n),
        };
        check_factors((m, n), w, h, Some((num.dim(), want)))?;
        check_factors((m, n), w, h, Some((den.dim(), want)))?;
        let Data::Dense(v) = &self.v else {
            return Err(NmfError::UnsupportedOption {
                option: "Loss::Beta and Loss::ItakuraSaito on sparse data",
                requires: "dense data (fit, not fit_sparse)",
            });
        };
        blocked_beta(v.view(), &mut self.scratch_ht, w, h, side, beta, num, den)
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
            MuDenominator::Gram(g) | MuDenominator::Product(g) => {
                let slot = match side {
                    Side::Left => &mut self.scratch_left,
                    Side::Right => &mut self.scratch_right,
                };
                let mut d = take_scratch(slot, x.dim());
                match side {
                    // X P = X (Pᵀ)ᵀ, the skinny A Bᵀ kernel with B = Pᵀ.
                    Side::Left => {
                        products::a_bt(x.view(), g.t(), d.view_mut(), &mut self.scratch_ht)?
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
            Side::Right => products::a_bt(x.view(), y.view(), out.view_mut(), &mut self.scratch_ht),
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
            Side::Left => products::a_bt(x.view(), s.t(), out.view_mut(), &mut self.scratch_ht),
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

    fn masked_product(
        &mut self,
        mask: &Array2<f32>,
        w: &Array2<f32>,
        h: &Array2<f32>,
        side: Side,
        out: &mut Array2<f32>,
    ) -> Result<()> {
        let (m, n) = self.shape();
        let want = match side {
            Side::Left => (m, w.ncols()),
            Side::Right => (w.ncols(), n),
        };
        check_factors((m, n), w, h, Some((out.dim(), want)))?;
        check_factors((m, n), w, h, Some((mask.dim(), (m, n))))?;
        blocked_numerator(
            mask.view(),
            &mut self.scratch_ht,
            w,
            h,
            side,
            out,
            |z, mb| *z *= &mb,
        )
    }

    fn masked_loss(&mut self, mask: &Array2<f32>, w: &Array2<f32>, h: &Array2<f32>) -> Result<f64> {
        check_factors(self.shape(), w, h, Some((mask.dim(), self.shape())))?;
        let n = self.shape().1;
        let bs = block_rows(n);
        let v = &self.v;
        let total = mask
            .axis_chunks_iter(Axis(0), bs)
            .into_par_iter()
            .enumerate()
            .zip(w.axis_chunks_iter(Axis(0), bs))
            .map(|((t, mb), wb)| {
                let rows = t * bs..t * bs + mb.nrows();
                let vb = match v {
                    Data::Dense(v) => CowArray::from(v.slice(ndarray::s![rows, ..])),
                    Data::Sparse { csr, .. } => {
                        let mut d = Array2::<f32>::zeros((mb.nrows(), n));
                        sparse::densify_rows(csr, rows.start, d.view_mut());
                        CowArray::from(d)
                    }
                };
                let mut wh = Array2::<f32>::zeros((vb.nrows(), n));
                products::at_b(wb.t(), h.view(), wh.view_mut())?;
                Ok(Zip::from(&vb)
                    .and(&mb)
                    .and(&wh)
                    .fold(0.0f64, |acc, &v, &mk, &p| {
                        let d = (mk * (v - p)) as f64;
                        acc + d * d
                    }))
            })
            .try_reduce(|| 0.0, |a, b| Ok(a + b))?;
        Ok(0.5 * total)
    }

    fn pattern_product(
        &mut self,
        w: &Array2<f32>,
        h: &Array2<f32>,
        side: Side,
        out: &mut Array2<f32>,
    ) -> Result<()> {
        let Data::Sparse { csr, csc } = &self.v else {
            return Err(super::pattern_unsupported());
        };
        let (m, n) = csr.dim();
        let r = w.ncols();
        let want = match side {
            Side::Left => (m, r),
            Side::Right => (r, n),
        };
        check_factors((m, n), w, h, Some((out.dim(), want)))?;
        let wr = row_major(w);
        pack_ht(h, &mut self.scratch_ht);
        let panels = panels_for(&mut self.panels, csr, csc, r);
        match side {
            Side::Left => {
                let mut o = take_scratch(&mut self.scratch_left, (m, r));
                let a = panels.v(csr);
                sparse::pattern_spmm(a, as_slice(&wr), &self.scratch_ht, r, as_slice_mut(&mut o))?;
                out.assign(&o);
                self.scratch_left = Some(o);
            }
            Side::Right => {
                // Row j of (P ⊙ WH)ᵀ W over the columns of V, then transposed.
                let mut o = take_scratch(&mut self.scratch_right, (n, r));
                let a = panels.vt(csc);
                sparse::pattern_spmm(a, &self.scratch_ht, as_slice(&wr), r, as_slice_mut(&mut o))?;
                out.assign(&o.t());
                self.scratch_right = Some(o);
            }
        }
        Ok(())
    }

    fn pattern_loss(&mut self, w: &Array2<f32>, h: &Array2<f32>) -> Result<f64> {
        let Data::Sparse { csr, csc } = &self.v else {
            return Err(super::pattern_unsupported());
        };
        check_factors(csr.dim(), w, h, None)?;
        let r = w.ncols();
        let wr = row_major(w);
        pack_ht(h, &mut self.scratch_ht);
        let a = panels_for(&mut self.panels, csr, csc, r).v(csr);
        let (res, _) = sparse::frobenius_terms(a, as_slice(&wr), &self.scratch_ht, r);
        Ok(0.5 * res)
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

    fn loss(&mut self, w: &Array2<f32>, h: &Array2<f32>, loss: Loss, eps: f32) -> Result<f64> {
        check_factors(self.shape(), w, h, None)?;
        let v = match &self.v {
            Data::Dense(v) => v,
            Data::Sparse { csr, csc } => {
                let (r, n) = h.dim();
                let wr = row_major(w);
                pack_ht(h, &mut self.scratch_ht);
                let ht = &self.scratch_ht;
                // The stored entries panel by panel, so that the rows of Hᵀ stay in cache.
                let a = panels_for(&mut self.panels, csr, csc, r).v(csr);
                return Ok(match loss.canonical() {
                    Loss::ItakuraSaito | Loss::Beta(_) => {
                        return Err(NmfError::UnsupportedOption {
                            option: "Loss::Beta and Loss::ItakuraSaito on sparse data",
                            requires: "dense data (fit, not fit_sparse)",
                        })
                    }
                    // ½ Σ_all (v − wh)² = ½ [Σ_nz (v − wh)² + Σ_zero wh²], with
                    // Σ_zero wh² = ⟨WᵀW, HHᵀ⟩ − Σ_nz wh², all in f64.
                    Loss::Frobenius => {
                        let (res, sq) = sparse::frobenius_terms(a, as_slice(&wr), ht, r);
                        let htv = ArrayView2::from_shape((n, r), &ht[..]).map_err(|_| {
                            crate::error::NmfError::InvalidSparse {
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
                });
            }
        };
        let n = v.ncols();
        let bs = block_rows(n);
        let total = v
            .axis_chunks_iter(Axis(0), bs)
            .into_par_iter()
            .zip(w.axis_chunks_iter(Axis(0), bs))
            .map(|(vb, wb)| {
                let mut wh = Array2::<f32>::zeros((vb.nrows(), n));
                products::at_b(wb.t(), h.view(), wh.view_mut())?;
                Ok(block_divergence(vb, wh.view(), loss, eps))
            })
            .try_reduce(|| 0.0, |a, b| Ok(a + b))?;
        Ok(total)
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

/// The elements of a row-major (standard layout) matrix.
fn as_slice<'b>(a: &'b CowArray<'_, f32, Ix2>) -> &'b [f32] {
    debug_assert!(a.is_standard_layout());
    a.as_slice().unwrap_or(&[])
}

/// The elements of a freshly allocated (standard layout) matrix.
fn as_slice_mut(a: &mut Array2<f32>) -> &mut [f32] {
    debug_assert!(a.is_standard_layout());
    a.as_slice_mut().unwrap_or(&mut [])
}

/// `z ← V ⊘ max(z, ε)` with `ε = f32::EPSILON` (the KL ratio, scikit-learn's guard), row by
/// row at [`simd::level`] where the rows are contiguous.
fn ratio_in_place(z: &mut Array2<f32>, v: ArrayView2<'_, f32>) {
    let level = simd::level();
    if z.dim() == v.dim() && v.ncols() > 0 {
        let rows_contiguous = z.rows().into_iter().all(|r| r.as_slice().is_some())
            && v.rows().into_iter().all(|r| r.as_slice().is_some());
        if rows_contiguous {
            for (mut zr, vr) in z.rows_mut().into_iter().zip(v.rows()) {
                if let (Some(zs), Some(vs)) = (zr.as_slice_mut(), vr.as_slice()) {
                    elementwise::ratio_row(level, zs, vs);
                }
            }
            return;
        }
    }
    let eps = f32::EPSILON;
    Zip::from(z).and(v).for_each(|z, &v| {
        *z = v / if *z < eps { eps } else { *z };
    });
}

/// `Σ (a − b)²` (or `Σ a²` when `b` is empty) in f64, from f32 partial sums over short
/// runs ([`elementwise::sum_sq_diff`]).
fn sum_sq_diff(a: &[f32], b: &[f32]) -> f64 {
    elementwise::sum_sq_diff(a, b)
}

/// The divergence of one block: `½ Σ (v − wh)²` or `Σ v log(v / wh) − v + wh`.
fn block_divergence(v: ArrayView2<'_, f32>, wh: ArrayView2<'_, f32>, loss: Loss, eps: f32) -> f64 {
    let mut acc = 0.0f64;
    match loss.canonical() {
        Loss::Frobenius => {
            for (vr, pr) in v.rows().into_iter().zip(wh.rows()) {
                acc += match (vr.as_slice(), pr.as_slice()) {
                    (Some(vs), Some(ps)) => sum_sq_diff(vs, ps),
                    _ => Zip::from(&vr)
                        .and(&pr)
                        .fold(0.0f64, |a, &v, &p| a + ((v - p) as f64).powi(2)),
                };
            }
            0.5 * acc
        }
        Loss::KullbackLeibler => {
            // scikit-learn: the log term only where v > ε, with wh clamped below at ε.
            Zip::from(v).and(wh).for_each(|&v, &p| {
                acc += divergence::kl_entry_data(v as f64, p as f64, eps as f64) + p as f64;
            });
            acc
        }
        Loss::ItakuraSaito | Loss::Beta(_) => {
            let beta = loss.beta_value();
            Zip::from(v)
                .and(wh)
                .for_each(|&v, &p| acc += beta_entry(v, p, beta));
            acc
        }
    }
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

/// `v` itself when it is row- or column-contiguous, else a row-major copy.
fn contiguous(v: Array2<f32>) -> Array2<f32> {
    if v.is_standard_layout() || v.t().is_standard_layout() {
        v
    } else {
        v.as_standard_layout().into_owned()
    }
}
