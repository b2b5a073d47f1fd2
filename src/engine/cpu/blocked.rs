//! The blocked loops of the CPU engine: `W H` formed a block of rows (or columns) at a time,
//! never whole, turned into the block of `Z` an update needs (the KL ratio `V ⊘ max(WH, ε)`,
//! the masked model `M ⊙ WH`, the β rules' pair) and multiplied into the output, and the
//! divergence of one block for the exact losses.

use ndarray::parallel::prelude::*;
use std::borrow::Cow;
use std::sync::Mutex;

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip};

use super::data::{DataOperator, Pair};
use super::divergence_rows::{self, RowLoss};
use super::layout::{pack_ht, scratch_block};
use super::{elementwise, products, simd};
use crate::engine::divergence::{self, beta_pair};
use crate::engine::{Blocks, Side};
use crate::error::Result;
use crate::options::Loss;

/// Target number of f32 entries in one block of `V` processed at once by blocked kernels
/// (KL ratios, exact losses): about 1 MiB, so a block of `WH` stays in cache.
pub(super) const BLOCK_ENTRIES: usize = 1 << 18;

/// The numerators of the KL and masked updates, block by block so that `Z` is never whole:
/// `Z = f(W H, D)` with `D` the data (`V` for KL, the mask `M` for masked NMF) and
/// `f = combine` applied per block (`V ⊘ max(WH, ε)` or `M ⊙ WH`); then `out = Z Hᵀ` (m x r)
/// for `Side::Left` or `out = Wᵀ Z` (r x n) for `Side::Right` ([`blocked_products`]).
pub(super) fn blocked_numerator(
    data: ArrayView2<'_, f32>,
    scratch_ht: &mut Vec<f32>,
    f: Blocks<'_, Array2<f32>>,
    out: &mut Array2<f32>,
    combine: impl Fn(ArrayViewMut2<'_, f32>, ArrayView2<'_, f32>) + Sync,
) -> Result<()> {
    blocked_products(data, scratch_ht, f, out, None, |z, _, db| combine(z, db))
}

/// The β-divergence products of [`Engine::beta_products`], each block of `Y = W H` formed
/// once for both: `A = V ⊙ Y₁^(β−2)` and `B = Y₂^(β−1)` (see [`beta_pair`]), then
/// `num = A Hᵀ`, `den = B Hᵀ` (Left) or `num = Wᵀ A`, `den = Wᵀ B` (Right)
/// ([`blocked_products`]).
pub(super) fn blocked_beta(
    data: ArrayView2<'_, f32>,
    scratch_ht: &mut Vec<f32>,
    f: Blocks<'_, Array2<f32>>,
    beta: f32,
    (num, den): Pair<'_>,
) -> Result<()> {
    blocked_products(data, scratch_ht, f, num, Some(den), |mut z, b, vb| {
        if let Some(mut b) = b {
            for ((mut yr, mut br), vr) in z.rows_mut().into_iter().zip(b.rows_mut()).zip(vb.rows())
            {
                match (yr.as_slice_mut(), br.as_slice_mut(), vr.as_slice()) {
                    (Some(ys), Some(bs), Some(vs)) => {
                        divergence_rows::beta_pair_row(ys, bs, vs, beta)
                    }
                    _ => Zip::from(yr).and(br).and(vr).for_each(|y, b, &x| {
                        let (a, d) = beta_pair(*y, beta);
                        *y = x * a;
                        *b = d;
                    }),
                }
            }
        }
    })
}

/// The one blocked-products loop: for each block of rows (`Side::Left`, about
/// [`BLOCK_ENTRIES`] entries) or of columns (`Side::Right`) of the data `D`, form that block of
/// `Y = W H`, let `combine(Y, B, D)` turn it into `Z` (and, when a second output is asked
/// for, fill a second block `B`), then write `out = Z Hᵀ` (and `out₂ = B Hᵀ`) for `Left`, with
/// `Hᵀ` packed once into `scratch_ht`, or `out = Wᵀ Z` (and `out₂ = Wᵀ B`) for `Right`. The
/// blocks run in parallel; `Y` is never whole. Shapes were checked by the caller
/// ([`Product::check`](crate::engine::Product::check)).
pub(super) fn blocked_products(
    data: ArrayView2<'_, f32>,
    scratch_ht: &mut Vec<f32>,
    f: Blocks<'_, Array2<f32>>,
    out: &mut Array2<f32>,
    second: Option<&mut Array2<f32>>,
    combine: impl Fn(ArrayViewMut2<'_, f32>, Option<ArrayViewMut2<'_, f32>>, ArrayView2<'_, f32>) + Sync,
) -> Result<()> {
    let Blocks { w, h, side } = f;
    let (m, n) = data.dim();
    let (axis, bs) = match side {
        Side::Left => (Axis(0), block_rows(n)),
        Side::Right => (Axis(1), block_columns(m)),
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
            let wide = products::WideFactor::new(h.view());
            let buffers = ThreadBuffers::new();
            let res = blocks.into_par_iter().try_for_each(|(k, ((db, ob), sb))| {
                buffers.with(|bufs| {
                    let wb = w.slice(ndarray::s![k * bs..k * bs + db.nrows(), ..]);
                    let dim = (db.nrows(), n);
                    let (mut z, mut b) = bufs.blocks(dim, sb.is_some())?;
                    wide.times(wb, z.view_mut())?;
                    combine(z.view_mut(), b.as_mut().map(|b| b.view_mut()), db);
                    products::a_bt_packed(z.view(), h.view(), &ht, ob)?;
                    match (b, sb) {
                        (Some(b), Some(sb)) => products::a_bt_packed(b.view(), h.view(), &ht, sb),
                        _ => Ok(()),
                    }
                })
            });
            *scratch_ht = ht;
            res
        }
        Side::Right => {
            // Every operand row-major, so that both products take the skinny kernels: the
            // block of H's columns copied, the outputs formed whole and copied into place.
            let wt = w.t().as_standard_layout().into_owned();
            let buffers = ThreadBuffers::new();
            let w = w.as_standard_layout();
            let w_times_into = |z: ArrayView2<'_, f32>,
                                mut o: ArrayViewMut2<'_, f32>,
                                whole: &mut Vec<f32>|
             -> Result<()> {
                let mut whole = scratch_block(whole, o.dim())?;
                products::at_b(w.view(), z, whole.view_mut())?;
                o.assign(&whole);
                Ok(())
            };
            blocks.into_par_iter().try_for_each(|(k, ((db, ob), sb))| {
                buffers.with(|bufs| {
                    let hb = h
                        .slice(ndarray::s![.., k * bs..k * bs + db.ncols()])
                        .as_standard_layout()
                        .into_owned();
                    let Buffers { z, b, out } = bufs;
                    let mut z = scratch_block(z, (m, db.ncols()))?;
                    let mut b = match sb {
                        Some(_) => Some(scratch_block(b, (m, db.ncols()))?),
                        None => None,
                    };
                    products::at_b(wt.view(), hb.view(), z.view_mut())?;
                    combine(z.view_mut(), b.as_mut().map(|b| b.view_mut()), db);
                    w_times_into(z.view(), ob, out)?;
                    match (b, sb) {
                        (Some(b), Some(sb)) => w_times_into(b.view(), sb, out),
                        _ => Ok(()),
                    }
                })
            })
        }
    }
}

/// Rows (or columns) of a block of `V` or `M` processed at once when the other dimension is
/// `cols`: about [`BLOCK_ENTRIES`] entries.
/// A thread's buffers for the blocks of one call: `W H` (`z`), the β denominator's block
/// (`b`) and a product's output before it is copied into place (`out`). Each grows to the
/// largest block it has held, reused whatever the shape as a row-major view of its first
/// entries; those hold what the previous block left, and the
/// products write every entry of a block before anything reads it.
#[derive(Default)]
struct Buffers {
    z: Vec<f32>,
    b: Vec<f32>,
    out: Vec<f32>,
}

/// One [`Buffers`] per thread of the pool for the blocks of one call, freed when it ends.
struct ThreadBuffers(Vec<Mutex<Buffers>>);

impl ThreadBuffers {
    fn new() -> Self {
        let threads = rayon::current_num_threads().max(1);
        ThreadBuffers((0..threads).map(|_| Mutex::default()).collect())
    }

    /// Run `f` with this thread's buffers (a block that starts on this thread while another
    /// waits here for stolen work finds them taken and gets fresh ones).
    fn with<R>(&self, f: impl FnOnce(&mut Buffers) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.0.len();
        match self.0[i].try_lock() {
            Ok(mut bufs) => f(&mut bufs),
            Err(_) => f(&mut Buffers::default()),
        }
    }
}

impl Buffers {
    /// The blocks `z` and, when `second`, `b`, both `dim`.
    fn blocks(
        &mut self,
        dim: (usize, usize),
        second: bool,
    ) -> Result<(ArrayViewMut2<'_, f32>, Option<ArrayViewMut2<'_, f32>>)> {
        let z = scratch_block(&mut self.z, dim)?;
        let b = if second {
            Some(scratch_block(&mut self.b, dim)?)
        } else {
            None
        };
        Ok((z, b))
    }
}

/// Most entries of one block of columns of the H update (`W H_b`, m x columns): 4 MiB.
pub(crate) const COLUMN_BLOCK_ENTRIES: usize = 1 << 20;

/// Columns the H update's blocks reach where [`COLUMN_BLOCK_ENTRIES`] allows.
const MIN_BLOCK_COLUMNS: usize = 256;

/// Columns per block of the H update (blocks of columns of V, all m rows): as many as
/// [`BLOCK_ENTRIES`] allows, and up to [`MIN_BLOCK_COLUMNS`] within [`COLUMN_BLOCK_ENTRIES`].
/// Each row of a block of V is then a run of up to 1 KiB that the prefetchers follow: with 26
/// columns (10000 x 5000, the 1 MiB blocks alone) the ratio `V ⊘ W H` waited on a new pair of
/// cache lines every 26 entries, and MU KL at 10000 x 5000 r 128 took 850–890 ms per
/// iteration on one Sapphire Rapids core, 630–680 with 104 to 256 columns.
pub(super) fn block_columns(rows: usize) -> usize {
    block_rows(rows).max((COLUMN_BLOCK_ENTRIES / rows.max(1)).min(MIN_BLOCK_COLUMNS))
}

pub(super) fn block_rows(cols: usize) -> usize {
    (BLOCK_ENTRIES / cols.max(1)).clamp(4, 4096)
}

/// `z ← V ⊘ max(z, ε)` with `ε = f32::EPSILON` (the KL ratio, scikit-learn's guard), row by
/// row at [`simd::level`] where the rows are contiguous.
pub(super) fn ratio_in_place(mut z: ArrayViewMut2<'_, f32>, v: ArrayView2<'_, f32>) {
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
    Zip::from(z)
        .and(v)
        .for_each(|z, &v| *z = divergence::kl_ratio(v, *z));
}

/// `Σ (a − b)²` (or `Σ a²` when `b` is empty) in f64, from f32 partial sums over short
/// runs ([`elementwise::sum_sq_diff`]).
pub(super) fn sum_sq_diff(a: &[f32], b: &[f32]) -> f64 {
    elementwise::sum_sq_diff(a, b)
}

/// The divergence of one block: `½ Σ (v − wh)²` or `Σ v log(v / wh) − v + wh`.
pub(super) fn block_divergence(
    v: ArrayView2<'_, f32>,
    wh: ArrayView2<'_, f32>,
    loss: Loss,
    eps: f32,
) -> f64 {
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
        // scikit-learn's rules: the log term only where v > ε, with wh clamped below at ε.
        Loss::KullbackLeibler => rows_loss(v, wh, RowLoss::KullbackLeibler(eps)),
        Loss::ItakuraSaito => rows_loss(v, wh, RowLoss::ItakuraSaito(divergence::BETA_GUARD)),
        Loss::Beta(_) => rows_loss(v, wh, RowLoss::Beta(loss.beta_value())),
    }
}

/// The sum of [`divergence_rows::loss_row`] over the rows of a block (rows copied where they
/// are not contiguous).
fn rows_loss(v: ArrayView2<'_, f32>, wh: ArrayView2<'_, f32>, loss: RowLoss) -> f64 {
    v.rows()
        .into_iter()
        .zip(wh.rows())
        .map(|(vr, pr)| divergence_rows::loss_row(&contiguous(vr), &contiguous(pr), loss))
        .sum()
}

/// The entries of a row as one slice: the row itself where it is contiguous, else a copy.
fn contiguous<'a>(r: ArrayView1<'a, f32>) -> Cow<'a, [f32]> {
    match r.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(r.to_vec()),
    }
}

/// The masked products `Z Hᵀ` (Left) or `Wᵀ Z` (Right) with `Z = M ⊙ W H`, a block at a time
/// ([`blocked_numerator`]); they read the mask, not V, so every representation shares them.
pub(super) fn masked_numerator(
    mask: &Array2<f32>,
    f: Blocks<'_, Array2<f32>>,
    out: &mut Array2<f32>,
    scratch_ht: &mut Vec<f32>,
) -> Result<()> {
    blocked_numerator(mask.view(), scratch_ht, f, out, |mut z, mb| z *= &mb)
}

/// `½ ‖M ⊙ (V − W H)‖²_F` in f64, with the rows of V a block at a time from `v`
/// ([`DataOperator::dense_rows`]).
pub(super) fn masked_loss(
    v: &dyn DataOperator,
    mask: &Array2<f32>,
    w: &Array2<f32>,
    h: &Array2<f32>,
) -> Result<f64> {
    let n = v.dims().1;
    let bs = block_rows(n);
    let total = mask
        .axis_chunks_iter(Axis(0), bs)
        .into_par_iter()
        .enumerate()
        .zip(w.axis_chunks_iter(Axis(0), bs))
        .map(|((t, mb), wb)| {
            let rows = t * bs..t * bs + mb.nrows();
            let vb = v.dense_rows(rows);
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
