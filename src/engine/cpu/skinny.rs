//! Vector kernels for the two large products of every NMF iteration, where one side is skinny:
//!
//! - `P = V Hᵀ` (m x r): `P[i, t..] += V[i, k] · Hᵀ[k, t..]` over k, with `Hᵀ` packed once (n x r);
//! - `Q = Wᵀ V` (r x n): `Q[t, j..] += W[i, t] · V[i, j..]` over i, blocked over i; each task
//!   copies a block of rows of V for a group of panels row by row (one contiguous run per row,
//!   which the hardware prefetchers follow) and sweeps every block of t over it.
//!
//! Both are one outer-product microkernel: `M` broadcast scalars times `V` vectors of `LANES`
//! floats, `M·V` accumulators held in registers. Only the last vector of a panel whose width is
//! not a whole number of vectors is loaded or stored under a mask (no reads past the end of any
//! row); every other load is plain: a masked load costs more than a plain one on both sets
//! (on a Sapphire Rapids core, AVX-512 masked loads everywhere held `V Hᵀ` at 2/3 of the
//! speed of plain ones). The kernel is written once over `simd::Isa` and compiled per
//! instruction set, each with its own register blocking (`kernel::Tiling::ROWS`):
//!
//! - AVX-512F (32 zmm of 16 lanes): `6 x 4` vectors (24 accumulators, 4 loaded vectors, 1
//!   broadcast), `8 x 3`, `12 x 2` and `12 x 1` for narrower panels;
//! - AVX2 + FMA (16 ymm of 8 lanes): `6 x 2` (12 accumulators, 2 loaded vectors, 1 broadcast;
//!   `4 x 3` fits 16 registers on paper but the compiler spills one), `12 x 1` for narrow
//!   panels. The skinny operand (`Hᵀ`, `W`) is first copied to contiguous panels, and stores
//!   are whole vectors wherever the destination has room: AVX2 masks live in vector registers
//!   and a masked store is microcoded on AMD cores.
//!
//! Blocks are sized from the L2 size the CPU reports ([`simd::l2_bytes`]).
//!
//! Used at the level [`simd::level`] chooses when the operands are row-contiguous; at
//! [`Level::None`] (or on other architectures) the caller falls back to the general GEMM.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::simd::{self, Level};
use crate::error::{NmfError, Result};

/// Whether kernels of this level exist and can run on this CPU.
fn runs(level: Level) -> bool {
    cfg!(target_arch = "x86_64") && level != Level::None && level.supported()
}

/// `Err` naming the operand whose shape does not conform.
fn mismatch(what: &'static str, expected: String, found: (usize, usize)) -> NmfError {
    NmfError::ShapeMismatch {
        what,
        expected,
        found: format!("{} x {}", found.0, found.1),
    }
}

/// Check `p = a bᵀ`: `a` (m x k), `b` (r x k), `p` (m x r).
fn check_a_bt(a: (usize, usize), b: (usize, usize), p: (usize, usize)) -> Result<()> {
    if b.1 != a.1 {
        return Err(mismatch("B in A Bᵀ", format!("{} columns (as A)", a.1), b));
    }
    if p != (a.0, b.0) {
        return Err(mismatch(
            "the output of A Bᵀ",
            format!("{} x {}", a.0, b.0),
            p,
        ));
    }
    Ok(())
}

/// Check `q = aᵀ b`: `a` (k x r), `b` (k x n), `q` (r x n).
fn check_at_b(a: (usize, usize), b: (usize, usize), q: (usize, usize)) -> Result<()> {
    if b.0 != a.0 {
        return Err(mismatch("B in Aᵀ B", format!("{} rows (as A)", a.0), b));
    }
    if q != (a.1, b.1) {
        return Err(mismatch(
            "the output of Aᵀ B",
            format!("{} x {}", a.1, b.1),
            q,
        ));
    }
    Ok(())
}

/// `p = a bᵀ` for row-major `a` (m x k) and `b` (r x k); `scratch` holds `bᵀ`.
/// Shapes that do not conform are an error; `Ok(false)` (doing nothing) when the kernels cannot
/// run on these operands (level [`Level::None`], or `a` or `p` not row-major).
pub(crate) fn a_bt(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    p: ArrayViewMut2<'_, f32>,
    scratch: &mut Vec<f32>,
) -> Result<bool> {
    a_bt_at(simd::level(), a, b, p, scratch)
}

/// [`a_bt`] with the kernels of `level` (`Ok(false)` when this CPU cannot run them).
fn a_bt_at(
    level: Level,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    p: ArrayViewMut2<'_, f32>,
    scratch: &mut Vec<f32>,
) -> Result<bool> {
    check_a_bt(a.dim(), b.dim(), p.dim())?;
    if !(runs(level) && a.is_standard_layout() && p.is_standard_layout()) {
        return Ok(false);
    }
    let (r, k) = b.dim();
    scratch.clear();
    scratch.resize(k * r, 0.0);
    transpose_into(b, scratch);
    a_bt_packed_at(level, a, Some(b), scratch, p)
}

/// `p = a btᵀ…`: `p[i, t] = Σ_k a[i, k] · bt[k·r + t]` with `bt` an already packed `bᵀ`
/// (k x r row-major, as [`transpose_into`] makes), `a` (m x k), `p` (m x r).
/// Shapes that do not conform are an error; `Ok(false)` when the kernels cannot run.
pub(crate) fn a_bt_packed(
    a: ArrayView2<'_, f32>,
    b: Option<ArrayView2<'_, f32>>,
    bt: &[f32],
    p: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    a_bt_packed_at(simd::level(), a, b, bt, p)
}

/// [`a_bt_packed`] with the kernels of `level` (`Ok(false)` when this CPU cannot run them).
fn a_bt_packed_at(
    level: Level,
    a: ArrayView2<'_, f32>,
    b: Option<ArrayView2<'_, f32>>,
    bt: &[f32],
    p: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    let (m, k) = a.dim();
    if p.nrows() != m {
        return Err(mismatch(
            "the output of A Bᵀ",
            format!("{m} rows (as A)"),
            p.dim(),
        ));
    }
    let r = p.ncols();
    if k.checked_mul(r) != Some(bt.len()) {
        return Err(NmfError::ShapeMismatch {
            what: "the packed Bᵀ of A Bᵀ",
            expected: format!("{k} x {r} = {} floats", k as u128 * r as u128),
            found: format!("{} floats", bt.len()),
        });
    }
    if !(runs(level) && a.is_standard_layout() && p.is_standard_layout()) {
        return Ok(false);
    }
    // B's rows, for the tail columns' dot products, where B is as bt says and row-major.
    let b = b.filter(|b| b.dim() == (r, k) && b.is_standard_layout());
    #[cfg(target_arch = "x86_64")]
    {
        use simd::{Avx2, Avx512};
        // SAFETY: the level's instruction set was detected (`runs`); a (m x k) and p (m x r)
        // are row-major, bt holds k x r floats (checked above) and b, when given, is r x k
        // row-major.
        unsafe {
            match level {
                Level::Avx512 => kernel::a_bt::<Avx512>(a, b, bt, p),
                Level::Avx2 => kernel::a_bt::<Avx2>(a, b, bt, p),
                Level::None => return Ok(false),
            }
        }
        Ok(true)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, b, bt, p);
        Ok(false)
    }
}

/// `out = bᵀ` (k x r, row-major) for `b` (r x k), in tiles so reads and writes stay in cache.
/// Only the first `r·k` entries of `out` are written.
///
/// # Panics
/// When `out` holds fewer than `r·k` floats (safe indexing; callers size it from `b`).
pub(crate) fn transpose_into(b: ArrayView2<'_, f32>, out: &mut [f32]) {
    let (r, k) = b.dim();
    if let Some(bs) = b.as_slice() {
        // Row-major b: eight rows of b at a time, each read as a stream; every row of out gets
        // their eight entries side by side (contiguous writes, no strided scatter).
        const T: usize = 8;
        let out = &mut out[..r * k];
        for t0 in (0..r).step_by(T) {
            let t1 = (t0 + T).min(r);
            let rows = &bs[t0 * k..t1 * k];
            if t1 - t0 == T {
                let rs: [&[f32]; T] = std::array::from_fn(|j| &rows[j * k..(j + 1) * k]);
                for (kk, orow) in out.chunks_exact_mut(r).enumerate() {
                    let o = &mut orow[t0..t0 + T];
                    for j in 0..T {
                        o[j] = rs[j][kk];
                    }
                }
            } else {
                for (kk, orow) in out.chunks_exact_mut(r).enumerate() {
                    for (j, o) in orow[t0..t1].iter_mut().enumerate() {
                        *o = rows[j * k + kk];
                    }
                }
            }
        }
        return;
    }
    const T: usize = 16;
    for t0 in (0..r).step_by(T) {
        let t1 = (t0 + T).min(r);
        for k0 in (0..k).step_by(T) {
            let k1 = (k0 + T).min(k);
            for t in t0..t1 {
                let row = b.row(t);
                for kk in k0..k1 {
                    out[kk * r + t] = row[kk];
                }
            }
        }
    }
}

/// A row-major `B` (k x n) copied once into the panels [`at_b_packed`] reads, at the SIMD
/// level of the moment it was made: `Wᵀ V` then reads its blocks of V in place instead of
/// copying each one on every call (V is the same for a whole fit). About V's size again
/// ([`PackedPanels::bytes`]).
pub(crate) struct PackedPanels {
    level: Level,
    dim: (usize, usize),
    data: Vec<f32>,
}

impl PackedPanels {
    /// The bytes of the copy of a k x n matrix at [`simd::level`] (0 where no vector level
    /// runs, and no copy is made).
    pub(crate) fn bytes(k: usize, n: usize) -> usize {
        Self::floats(simd::level(), k, n).saturating_mul(4)
    }

    fn floats(level: Level, k: usize, n: usize) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            use simd::{Avx2, Avx512};
            match level {
                Level::Avx512 => kernel::whole_len::<Avx512>(k, n),
                Level::Avx2 => kernel::whole_len::<Avx2>(k, n),
                Level::None => 0,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (level, k, n);
            0
        }
    }

    /// The copy of `b` at [`simd::level`]; `None` where no vector level runs or `b` is not
    /// row-major.
    pub(crate) fn new(b: ArrayView2<'_, f32>) -> Option<PackedPanels> {
        let level = simd::level();
        let (k, n) = b.dim();
        if !runs(level) || !b.is_standard_layout() || k == 0 || n == 0 {
            return None;
        }
        let mut data = vec![0.0f32; Self::floats(level, k, n)];
        #[cfg(target_arch = "x86_64")]
        {
            use simd::{Avx2, Avx512};
            // SAFETY: the level's set was detected (`runs`); b is row-major and data holds
            // whole_len floats.
            unsafe {
                match level {
                    Level::Avx512 => kernel::pack_whole::<Avx512>(b, &mut data),
                    Level::Avx2 => kernel::pack_whole::<Avx2>(b, &mut data),
                    Level::None => return None,
                }
            }
        }
        Some(PackedPanels {
            level,
            dim: (k, n),
            data,
        })
    }
}

/// [`at_b`] with `b` read from its [`PackedPanels`] copy (`b` itself given for the shape
/// check). `Ok(false)` (nothing done) where the copy was made at another level or of another
/// shape, or `a` or `q` are not row-major.
pub(crate) fn at_b_packed(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    packed: &PackedPanels,
    q: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    check_at_b(a.dim(), b.dim(), q.dim())?;
    let level = simd::level();
    if level != packed.level
        || packed.dim != b.dim()
        || !(runs(level) && a.is_standard_layout() && b.is_standard_layout())
        || !q.is_standard_layout()
    {
        return Ok(false);
    }
    at_b_whole(level, a, b, Some(packed), q);
    Ok(true)
}

/// `q = aᵀ b` for row-major `a` (k x r) and `b` (k x n), `q` (r x n).
/// Shapes that do not conform are an error; `Ok(false)` (doing nothing) when the kernels cannot
/// run on these operands (level [`Level::None`], or an operand not row-major).
pub(crate) fn at_b(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    q: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    at_b_at(simd::level(), a, b, q)
}

/// [`at_b`] with the kernels of `level` (`Ok(false)` when this CPU cannot run them).
fn at_b_at(
    level: Level,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    q: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    check_at_b(a.dim(), b.dim(), q.dim())?;
    if !(runs(level) && a.is_standard_layout() && b.is_standard_layout() && q.is_standard_layout())
    {
        return Ok(false);
    }
    match depth_parts(level, a.dim(), b.ncols()) {
        Some(parts) => at_b_by_depth(level, a, b, q, parts),
        None => at_b_whole(level, a, b, None, q),
    }
    Ok(true)
}

/// Depth (rows of `a` and `b`) each part of a split [`at_b`] takes at least.
const PART_DEPTH: usize = 512;

/// How many parts [`at_b`] splits the long dimension k into: one per thread where the output
/// has fewer panels than there are threads (a Gram matrix `H Hᵀ` at r ≤ 64 is one panel, which
/// the panel-parallel kernel runs on one thread) and each part is at least [`PART_DEPTH`]
/// deep; `None` otherwise.
fn depth_parts(level: Level, (k, r): (usize, usize), n: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    #[cfg(target_arch = "x86_64")]
    let panel = match level {
        Level::Avx512 => <simd::Avx512 as kernel::Tiling>::PANEL,
        _ => <simd::Avx2 as kernel::Tiling>::PANEL,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let panel = {
        let _ = level;
        1
    };
    let parts = threads.min(k / PART_DEPTH);
    (threads > 1 && n.div_ceil(panel) < threads && parts > 1 && r > 0 && n > 0).then_some(parts)
}

/// `q = aᵀ b` as the sum of `parts` products over consecutive rows of `a` and `b`, in
/// parallel, each into its own r x n buffer (small: the output has fewer panels than there
/// are threads), summed in the order of the parts.
fn at_b_by_depth(
    level: Level,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    mut q: ArrayViewMut2<'_, f32>,
    parts: usize,
) {
    let k = a.nrows();
    let step = k.div_ceil(parts);
    let partial: Vec<Array2<f32>> = (0..parts)
        .into_par_iter()
        .map(|t| {
            let rows = (t * step).min(k)..((t + 1) * step).min(k);
            let mut part = Array2::<f32>::zeros(q.dim());
            at_b_whole(
                level,
                a.slice(s![rows.clone(), ..]),
                b.slice(s![rows, ..]),
                None,
                part.view_mut(),
            );
            part
        })
        .collect();
    q.fill(0.0);
    for part in &partial {
        q += part;
    }
}

/// The kernel of [`at_b`] over the whole of k, `b` read from its packed copy `pre` when
/// given. The callers have checked the operands; the shapes, layouts, level and copy the
/// kernel relies on are asserted again here.
fn at_b_whole(
    level: Level,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    pre: Option<&PackedPanels>,
    q: ArrayViewMut2<'_, f32>,
) {
    assert!(runs(level) && a.nrows() == b.nrows() && q.dim() == (a.ncols(), b.ncols()));
    assert!(a.is_standard_layout() && b.is_standard_layout() && q.is_standard_layout());
    assert!(pre.is_none_or(|p| p.level == level && p.dim == b.dim()));
    #[cfg(target_arch = "x86_64")]
    {
        use simd::{Avx2, Avx512};
        let pre = pre.map(|p| &p.data[..]);
        // SAFETY: the level's instruction set was detected (`runs`); all three operands are
        // row-major with conforming shapes, and a packed copy of b is of b at this level
        // (asserted above).
        unsafe {
            match level {
                Level::Avx512 => kernel::at_b::<Avx512>(a, b, pre, q),
                Level::Avx2 => kernel::at_b::<Avx2>(a, b, pre, q),
                Level::None => {}
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (level, a, b, pre, q);
    }
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use std::cell::Cell;
    use std::thread::LocalKey;

    use ndarray::{ArrayView2, ArrayViewMut2};
    use rayon::prelude::*;

    use super::simd;
    use super::simd::{Avx2, Avx512, Isa};

    /// The register blocking of one instruction set, and its compiled microkernels.
    pub(super) trait Tiling: Isa {
        /// Broadcast rows per microkernel call with `v` vectors, at `ROWS[v]` (`1 ≤ v ≤ NV`):
        /// `rows · v` accumulators, `v` loaded vectors and one broadcast fit the registers.
        /// `ROWS[1]` is the most; with PACK every entry divides it.
        const ROWS: [usize; 5];
        /// Most vectors per microkernel call.
        const NV: usize;
        /// Most columns covered by one panel.
        const PANEL: usize = Self::NV * Self::LANES;
        /// Whether the skinny operands are copied to contiguous panels first: `Hᵀ` per panel
        /// of columns in `a_bt`, `W` per block of `MR` columns in `at_b` (and every block of V).
        /// With 16 registers the microkernel reloads its vectors from L1 at every step, so
        /// they must stream from contiguous memory.
        const PACK: bool;
        /// Rows of V per task in `a_bt`; 0: as many as a quarter of L2 holds (see `a_bt`).
        const TASK_ROWS: usize;
        /// Most panels of V per task in `at_b` (fewer where half of L2 does not hold them).
        const GROUP: usize;
        /// Depth of one block in `a_bt` (the packed `Hᵀ` panel of one block stays in L1/L2).
        const KC_DEEP: usize;

        /// [`micro`] compiled for this set.
        ///
        /// # Safety
        /// As [`micro`]; the set must be available.
        unsafe fn micro<const M: usize, const V: usize, const FULL: bool>(t: Tile);

        /// [`pack_panel`] compiled for this set.
        ///
        /// # Safety
        /// As [`pack_panel`]; the set must be available.
        unsafe fn pack_panel(b: Pack<'_>);

        /// [`tail_dots`] compiled for this set.
        ///
        /// # Safety
        /// As [`tail_dots`]; the set must be available.
        unsafe fn tail_dots(d: Dots);
    }

    /// The [`Tiling`] of one set: its constants, and [`micro`] and [`pack_panel`] compiled
    /// with its features by `#[target_feature]` entry points.
    macro_rules! tiling {
        ($isa:ident, $features:literal, { $($consts:tt)* }) => {
            impl Tiling for $isa {
                $($consts)*

                #[inline(always)]
                unsafe fn micro<const M: usize, const V: usize, const FULL: bool>(t: Tile) {
                    #[inline]
                    #[target_feature(enable = $features)]
                    unsafe fn entry<const M: usize, const V: usize, const FULL: bool>(t: Tile) {
                        // SAFETY: the set is enabled here; the rest is guaranteed by the caller.
                        unsafe { micro::<$isa, M, V, FULL>(t) }
                    }
                    // SAFETY: guaranteed by the caller.
                    unsafe { entry::<M, V, FULL>(t) }
                }

                #[inline(always)]
                unsafe fn pack_panel(b: Pack<'_>) {
                    #[inline]
                    #[target_feature(enable = $features)]
                    unsafe fn entry(b: Pack<'_>) {
                        // SAFETY: the set is enabled here; the rest is guaranteed by the caller.
                        unsafe { pack_panel::<$isa>(b) }
                    }
                    // SAFETY: guaranteed by the caller.
                    unsafe { entry(b) }
                }

                #[inline(always)]
                unsafe fn tail_dots(d: Dots) {
                    #[inline]
                    #[target_feature(enable = $features)]
                    unsafe fn entry(d: Dots) {
                        // SAFETY: the set is enabled here; the rest is guaranteed by the caller.
                        unsafe { tail_dots::<$isa>(d) }
                    }
                    // SAFETY: guaranteed by the caller.
                    unsafe { entry(d) }
                }
            }
        };
    }

    tiling!(Avx512, "avx512f", {
        const ROWS: [usize; 5] = [0, 12, 12, 8, 6];
        const NV: usize = 4;
        const PACK: bool = false;
        const KC_DEEP: usize = 512;
        const TASK_ROWS: usize = 0;
        const GROUP: usize = 16;
    });

    tiling!(Avx2, "avx2,fma", {
        const ROWS: [usize; 5] = [0, 12, 6, 0, 0];
        const NV: usize = 2;
        const PACK: bool = true;
        const KC_DEEP: usize = 256;
        const TASK_ROWS: usize = 48;
        const GROUP: usize = 4;
    });

    /// Rows of the long dimension per block in `at_b` (a packed block of V stays in L1).
    const KC: usize = 128;
    /// Most panels per group in `at_b`.
    const MAX_GROUP: usize = 16;
    /// Rows per task in `a_bt` are a multiple of this (of every `ROWS` entry).
    const ROW_STEP: usize = 24;
    /// Most rows per task in `a_bt`.
    const MAX_CHUNK: usize = 480;

    thread_local! {
        /// The packed skinny operand of the product this thread is running.
        static OPERAND: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
        /// The packed block and accumulators of the task this thread is running.
        static BLOCK: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    }

    /// This thread's buffer `key`, at least `len` floats (kept between calls, so the hot loop
    /// does not allocate; a nested use finds it taken and gets a fresh one). Hand it back with
    /// [`give_back`].
    fn take(key: &'static LocalKey<Cell<Vec<f32>>>, len: usize) -> Vec<f32> {
        let mut v = key.take();
        if v.len() < len {
            v.resize(len, 0.0);
        }
        v
    }

    /// Return a buffer from [`take`] to this thread.
    fn give_back(key: &'static LocalKey<Cell<Vec<f32>>>, v: Vec<f32>) {
        key.set(v);
    }

    /// Split `cols` columns into panels of whole vectors, as even as possible, at most NV
    /// vectors each: returns (start, width) pairs. Even splits avoid a one-vector tail panel,
    /// whose load-to-FMA ratio is poor.
    fn panels<S: Tiling>(cols: usize) -> Vec<(usize, usize)> {
        let nvec = cols.div_ceil(S::LANES);
        let np = nvec.div_ceil(S::NV).max(1);
        let mut out = Vec::with_capacity(np);
        let mut start = 0;
        for p in 0..np {
            let vecs = nvec / np + usize::from(p < nvec % np);
            let width = (vecs * S::LANES).min(cols - start);
            out.push((start, width));
            start += width;
        }
        out
    }

    /// Broadcast rows to pair with a panel of `width` columns.
    fn rows_for<S: Tiling>(width: usize) -> usize {
        S::ROWS[width.div_ceil(S::LANES).clamp(1, S::NV)]
    }

    /// A raw pointer that may cross threads: each task writes a disjoint part of the output.
    #[derive(Clone, Copy)]
    struct Out(*mut f32);
    // SAFETY: used only for disjoint writes, joined before the borrow ends.
    unsafe impl Send for Out {}
    unsafe impl Sync for Out {}

    impl Out {
        /// The element `offset` places in (a method, so closures capture the whole `Out`).
        ///
        /// # Safety
        /// `offset` must lie inside the output the pointer came from.
        #[inline(always)]
        unsafe fn at(self, offset: usize) -> *mut f32 {
            // SAFETY: guaranteed by the caller.
            unsafe { self.0.add(offset) }
        }
    }

    /// One microkernel call: `C[a, 0..cols] (+)= Σ_{kk<kc} X[a·xa + kk·xk] · Y[kk·yk + 0..cols]`
    /// for `a < M`, `cols ≤ V·LANES`; `C` rows `ldc` apart; accumulate onto `C` or replace it.
    #[derive(Clone, Copy)]
    pub(super) struct Tile {
        kc: usize,
        x: *const f32,
        xa: usize,
        xk: usize,
        y: *const f32,
        yk: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        accumulate: bool,
        /// The rows of `C` have room for `V·LANES` floats: the last vector is stored whole.
        c_padded: bool,
    }

    /// The microkernel: `M` broadcast scalars times `V` vectors per step, `M·V` accumulators.
    /// `FULL`: `cols = V·LANES`, no lane is masked (used where masks are not cheap).
    ///
    /// # Safety
    /// The instruction set `S` must be available; the `M` rows of `X`, `kc` rows of `Y` (the
    /// first `cols` floats of each) and `M` rows of `C` (the first `cols`) must exist;
    /// `cols > (V − 1)·LANES`, and `cols = V·LANES` when `FULL`.
    #[inline(always)]
    unsafe fn micro<S: Tiling, const M: usize, const V: usize, const FULL: bool>(t: Tile) {
        let Tile {
            kc,
            x,
            xa,
            xk,
            y,
            yk,
            c,
            ldc,
            cols,
            accumulate,
            c_padded,
        } = t;
        // Vector v is masked when masks are cheap, or when it is the last one and partial;
        // the others lie inside the first `cols` columns whole (cols > (V − 1)·LANES).
        let masked = |v: usize| !FULL && v + 1 == V;
        // SAFETY (whole body): the caller guarantees the set and the extents above; every
        // load and store touches only the first `cols` columns.
        unsafe {
            let load = |m: S::M, v: usize, p: *const f32| {
                if masked(v) {
                    S::load_masked(m, p)
                } else {
                    S::load(p)
                }
            };
            let mut masks = [S::mask(0); V];
            for (v, m) in masks.iter_mut().enumerate() {
                if masked(v) {
                    *m = S::mask(cols.saturating_sub(v * S::LANES));
                }
            }
            let mut acc = [[S::zero(); V]; M];
            if accumulate {
                for (a, row) in acc.iter_mut().enumerate() {
                    for (v, r) in row.iter_mut().enumerate() {
                        *r = load(masks[v], v, c.add(a * ldc + v * S::LANES));
                    }
                }
            }
            // One base pointer per broadcast row, hoisted: in the loop each broadcast is a
            // single load at `base + offset` with no address arithmetic of its own.
            let mut xp = [x; M];
            for (a, p) in xp.iter_mut().enumerate() {
                *p = x.add(a * xa);
            }
            let mut xoff = 0usize;
            let mut yp = y;
            for _ in 0..kc {
                let mut yv = [S::zero(); V];
                for (v, y) in yv.iter_mut().enumerate() {
                    *y = load(masks[v], v, yp.add(v * S::LANES));
                }
                for (a, row) in acc.iter_mut().enumerate() {
                    let xv = S::splat(*xp[a].add(xoff));
                    for (v, r) in row.iter_mut().enumerate() {
                        *r = S::fmadd(xv, yv[v], *r);
                    }
                }
                xoff += xk;
                yp = yp.add(yk);
            }
            for (a, row) in acc.iter().enumerate() {
                for (v, r) in row.iter().enumerate() {
                    let p = c.add(a * ldc + v * S::LANES);
                    // A masked store is slow where masks are not cheap: skipped when C has room.
                    if masked(v) && !c_padded {
                        S::store_masked(p, masks[v], *r);
                    } else {
                        S::store(p, *r);
                    }
                }
            }
        }
    }

    /// A copy of a block of rows for [`pack_panel`]: `rows` rows of the `panels` (start
    /// column, width ≤ PANEL) of `src` (rows `ld` apart) to `dst`, panel `p` at `p·part`, its
    /// rows PANEL apart.
    #[derive(Clone, Copy)]
    pub(super) struct Pack<'p> {
        src: *const f32,
        ld: usize,
        rows: usize,
        panels: &'p [(usize, usize)],
        dst: *mut f32,
        part: usize,
    }

    /// Copy a block ([`Pack`]); the lanes of the last vector past a panel's width are written
    /// as 0. Row by row across the panels, so `src` is read as one contiguous run per row (what
    /// the hardware prefetchers follow).
    ///
    /// # Safety
    /// The set `S` must be available; the rows and panels of `src` and the parts of `dst` must
    /// exist.
    #[inline(always)]
    unsafe fn pack_panel<S: Tiling>(b: Pack<'_>) {
        let Pack {
            src,
            ld,
            rows,
            panels,
            dst,
            part,
        } = b;
        // SAFETY: guaranteed by the caller; loads are masked to each panel's width.
        unsafe {
            for i in 0..rows {
                for (p, &(j0, cols)) in panels.iter().enumerate() {
                    let s = src.add(i * ld + j0);
                    let d = dst.add(p * part + i * S::PANEL);
                    // Whole vectors are stored (the rows of dst are PANEL long): a masked store
                    // is slow on AVX2 machines (microcoded on AMD), a masked load is not.
                    for v in 0..S::NV {
                        if cols >= (v + 1) * S::LANES {
                            S::store(d.add(v * S::LANES), S::load(s.add(v * S::LANES)));
                        } else if cols > v * S::LANES {
                            let mk = S::mask(cols - v * S::LANES);
                            S::store(d.add(v * S::LANES), S::load_masked(mk, s.add(v * S::LANES)));
                        }
                    }
                }
            }
        }
    }

    /// Dispatch on the (runtime) tail sizes to a monomorphised microkernel.
    ///
    /// # Safety
    /// As [`micro`], with `rows ≤ rows_for(cols)`.
    #[inline(always)]
    unsafe fn micro_any<S: Tiling>(rows: usize, t: Tile) {
        let full = t.cols.is_multiple_of(S::LANES);
        macro_rules! go {
            ($m:literal, $v:literal) => {
                // SAFETY: guaranteed by the caller; `full` only when cols = V·LANES.
                unsafe {
                    if full {
                        S::micro::<$m, $v, true>(t)
                    } else {
                        S::micro::<$m, $v, false>(t)
                    }
                }
            };
        }
        // Rows 1 to the last listed for `v` vectors (the last arm takes the rest: the caller
        // keeps `rows` within `ROWS[v]`).
        macro_rules! by_rows {
            ($v:literal: $($m:literal)* ; $last:literal) => {
                match rows {
                    $($m => go!($m, $v),)*
                    _ => go!($last, $v),
                }
            };
        }
        let v = t.cols.div_ceil(S::LANES);
        debug_assert!(v <= S::NV && rows <= S::ROWS[v.max(1)]);
        match v {
            0 | 1 => by_rows!(1: 1 2 3 4 5 6 7 8 9 10 11; 12),
            2 if S::ROWS[2] > 6 => by_rows!(2: 1 2 3 4 5 6 7 8 9 10 11; 12),
            2 => by_rows!(2: 1 2 3 4 5; 6),
            3 if S::NV >= 3 => by_rows!(3: 1 2 3 4 5 6 7; 8),
            _ if S::NV >= 4 => by_rows!(4: 1 2 3 4 5; 6),
            _ => {}
        }
    }

    /// `p[i, t] = Σ_k a[i, k] · bt[k, t]` with `a` (m x k), `bt` (k x r), `p` (m x r) row-major.
    ///
    /// # Safety
    /// The set `S` must be available; the shapes must conform and `a`, `p` be row-major.
    pub(super) unsafe fn a_bt<S: Tiling>(
        a: ArrayView2<'_, f32>,
        b: Option<ArrayView2<'_, f32>>,
        bt: &[f32],
        mut p: ArrayViewMut2<'_, f32>,
    ) {
        let (m, k) = a.dim();
        let r = p.ncols();
        if m == 0 || r == 0 {
            return;
        }
        if k == 0 {
            p.fill(0.0);
            return;
        }
        let a_ptr = a.as_ptr() as usize;
        let lda = a.strides()[0] as usize;
        let out = Out(p.as_mut_ptr());
        // The last `tail` columns (a few past a whole number of vectors) as dot products of
        // rows of a and b, where b is given: in the panels they would fill a vector of mostly
        // idle lanes at every step (r = 49 on AVX-512: 49 of 64 lanes busy).
        let tail = match b {
            Some(_) if r > S::LANES && r % S::LANES <= TAIL_MAX => r % S::LANES,
            _ => 0,
        };
        let b_ptr = b.map_or(0, |b| b.as_ptr() as usize);
        let panels = panels::<S>(r - tail);
        // With PACK, panel `pi` of Hᵀ is k rows of PANEL floats (zero-padded) at pi·k·PANEL.
        let packed_bt = if S::PACK {
            let mut bp = take(&OPERAND, panels.len() * k * S::PANEL);
            for (pi, &(t0, cols)) in panels.iter().enumerate() {
                let dst = &mut bp[pi * k * S::PANEL..(pi + 1) * k * S::PANEL];
                for (d, src) in dst.chunks_exact_mut(S::PANEL).zip(bt.chunks_exact(r)) {
                    d[..cols].copy_from_slice(&src[t0..t0 + cols]);
                }
            }
            bp
        } else {
            Vec::new()
        };
        let bt_ptr = bt.as_ptr() as usize;
        let bp_ptr = packed_bt.as_ptr() as usize;
        // Rows per task: with TASK_ROWS 0, as many as fill a quarter of L2 with one block of V
        // (KC_DEEP columns), so each Hᵀ block is fetched into L2 once per task, in whole
        // multiples of every row blocking, and at most a share of m that leaves two tasks per
        // thread.
        let chunk = if S::TASK_ROWS > 0 {
            S::TASK_ROWS
        } else {
            (simd::l2_bytes() / 4 / (S::KC_DEEP * 4))
                .min(m.div_ceil(2 * rayon::current_num_threads()))
                .next_multiple_of(ROW_STEP)
                .clamp(ROW_STEP, MAX_CHUNK)
        };
        let tasks = m.div_ceil(chunk);
        let run = |task: usize| {
            let i_end = m.min((task + 1) * chunk);
            let mut k0 = 0;
            while k0 < k {
                let kc = S::KC_DEEP.min(k - k0);
                for (pi, &(t0, cols)) in panels.iter().enumerate() {
                    let mr = rows_for::<S>(cols);
                    // SAFETY: rows k0..k0+kc of panel pi of the packed Hᵀ, or of columns
                    // t0..t0+cols of bt, exist.
                    let (y, yk) = unsafe {
                        if S::PACK {
                            (
                                (bp_ptr as *const f32).add((pi * k + k0) * S::PANEL),
                                S::PANEL,
                            )
                        } else {
                            ((bt_ptr as *const f32).add(k0 * r + t0), r)
                        }
                    };
                    let mut i0 = task * chunk;
                    while i0 < i_end {
                        let rows = mr.min(i_end - i0);
                        // SAFETY: rows i0..i0+rows and columns k0..k0+kc of a, rows k0..k0+kc
                        // and columns t0..t0+cols of bt exist; tasks write disjoint rows of p.
                        unsafe {
                            micro_any::<S>(
                                rows,
                                Tile {
                                    kc,
                                    x: (a_ptr as *const f32).add(i0 * lda + k0),
                                    xa: lda,
                                    xk: 1,
                                    y,
                                    yk,
                                    c: out.at(i0 * r + t0),
                                    ldc: r,
                                    cols,
                                    accumulate: k0 > 0,
                                    c_padded: false,
                                },
                            );
                        }
                        i0 += rows;
                    }
                }
                k0 += kc;
            }
            if tail > 0 {
                let i0 = task * chunk;
                // SAFETY: rows i0..i_end of a (k long) and of p, and the last `tail` rows of
                // b (k long, b given when tail > 0) exist; tasks write disjoint rows of p.
                unsafe {
                    S::tail_dots(Dots {
                        a: (a_ptr as *const f32).add(i0 * lda),
                        lda,
                        rows: i_end - i0,
                        b: (b_ptr as *const f32).add((r - tail) * k),
                        tail,
                        k,
                        p: out.at(i0 * r + r - tail),
                        ldp: r,
                    });
                }
            }
        };
        if m * k * r >= 1 << 17 {
            (0..tasks).into_par_iter().for_each(run);
        } else {
            (0..tasks).for_each(run);
        }
        if S::PACK {
            give_back(&OPERAND, packed_bt);
        }
    }

    /// Most columns [`a_bt`] computes as dot products past a whole number of vectors.
    const TAIL_MAX: usize = 3;

    /// The tail of [`a_bt`]: `p[i·ldp + t] = Σ_kk a[i·lda + kk] · b[t·k + kk]` for
    /// `i < rows`, `t < tail ≤ TAIL_MAX`.
    #[derive(Clone, Copy)]
    pub(super) struct Dots {
        a: *const f32,
        lda: usize,
        rows: usize,
        b: *const f32,
        tail: usize,
        k: usize,
        p: *mut f32,
        ldp: usize,
    }

    /// Compute [`Dots`]: each row of a loaded once per vector for every tail column, two
    /// accumulators per column (a lone chain would wait on the multiply-add's latency), the
    /// last partial vector masked, the lanes summed at the end.
    ///
    /// # Safety
    /// The set `S` must be available; the rows of a, b and p named by `d` must exist.
    #[inline(always)]
    unsafe fn tail_dots<S: Tiling>(d: Dots) {
        let Dots {
            a,
            lda,
            rows,
            b,
            tail,
            k,
            p,
            ldp,
        } = d;
        debug_assert!(tail <= TAIL_MAX);
        // SAFETY: guaranteed by the caller; loads stay inside the first k floats of each row.
        unsafe {
            for i in 0..rows {
                let ai = a.add(i * lda);
                let mut acc = [[S::zero(); 2]; TAIL_MAX];
                let mut kk = 0;
                while kk + 2 * S::LANES <= k {
                    let x0 = S::load(ai.add(kk));
                    let x1 = S::load(ai.add(kk + S::LANES));
                    for (t, c) in acc.iter_mut().enumerate().take(tail) {
                        let bt = b.add(t * k + kk);
                        c[0] = S::fmadd(x0, S::load(bt), c[0]);
                        c[1] = S::fmadd(x1, S::load(bt.add(S::LANES)), c[1]);
                    }
                    kk += 2 * S::LANES;
                }
                while kk < k {
                    let mk = S::mask(k - kk);
                    let x = S::load_masked(mk, ai.add(kk));
                    for (t, c) in acc.iter_mut().enumerate().take(tail) {
                        c[0] = S::fmadd(x, S::load_masked(mk, b.add(t * k + kk)), c[0]);
                    }
                    kk += S::LANES;
                }
                for (t, c) in acc.iter().enumerate().take(tail) {
                    *p.add(i * ldp + t) = S::sum(S::add(c[0], c[1]));
                }
            }
        }
    }

    /// `q = aᵀ b`: `q[t, j] = Σ_i a[i, t] · b[i, j]`, a (k x r), b (k x n), q (r x n), row-major.
    ///
    /// # Safety
    /// The set `S` must be available; the shapes must conform and all operands be row-major.
    pub(super) unsafe fn at_b<S: Tiling>(
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        pre: Option<&[f32]>,
        mut q: ArrayViewMut2<'_, f32>,
    ) {
        let (k, r) = a.dim();
        let n = b.ncols();
        let pre_ptr = pre.map(|p| p.as_ptr() as usize);
        if r == 0 || n == 0 {
            return;
        }
        if k == 0 {
            q.fill(0.0);
            return;
        }
        let a_ptr = a.as_ptr() as usize;
        let b_ptr = b.as_ptr() as usize;
        let out = Out(q.as_mut_ptr());
        let panels = panels::<S>(n);
        // With PACK, a is copied once to blocks of MR_NARROW columns: block `bi` holds k rows of
        // MR_NARROW floats at bi·k·MR_NARROW, so the broadcasts of one microkernel call stream
        // from one contiguous run (rows of a that are a power of two apart would otherwise use a
        // fraction of the L1 sets).
        let nb = S::ROWS[1];
        let packed_a = if S::PACK {
            let mut ap = take(&OPERAND, r.div_ceil(nb) * k * nb);
            for (bi, blk) in ap.chunks_exact_mut(k * nb).enumerate() {
                let t0 = bi * nb;
                let w = nb.min(r - t0);
                for (d, src) in blk.chunks_exact_mut(nb).zip(a.rows()) {
                    for (x, y) in d[..w].iter_mut().zip(src.iter().skip(t0)) {
                        *x = *y;
                    }
                }
            }
            ap
        } else {
            Vec::new()
        };
        let ap_ptr = packed_a.as_ptr() as usize;
        // Panels per task (a group): each block of rows of b is copied for the whole group, row
        // by row, so it is read as one contiguous run per row, which the hardware prefetchers
        // follow (a single panel is a few lines per row, each row a new page). The group's
        // copy (KC rows) and accumulators (r rows) fill at most half of L2; fewer panels where
        // there would be too few groups to keep every thread busy (a Gram matrix Hᵀ·Hᵀᵀ has
        // only a few panels).
        let per_thread = panels.len().div_ceil(2 * rayon::current_num_threads());
        let fits = simd::l2_bytes() / 2 / ((KC + r) * S::PANEL * 4);
        const { assert!(S::GROUP >= 1 && S::GROUP <= MAX_GROUP) };
        let group = fits.clamp(1, S::GROUP).min(per_thread.max(1));
        let run = |(first, grp): (usize, &[(usize, usize)])| {
            let g = grp.len();
            // With V packed once ([`pack_whole`]) the blocks are read in place.
            let pack_len = if pre_ptr.is_some() {
                0
            } else {
                KC * S::PANEL * g
            };
            // A product no deeper than one block (W H in the KL and β blocks: depth r) is
            // written straight into q; deeper ones accumulate in contiguous panels first.
            let direct = k <= KC;
            let acc_len = if direct { 0 } else { r * S::PANEL * g };
            let mut buf = take(&BLOCK, pack_len + acc_len);
            let (pack, rest) = buf.split_at_mut(pack_len);
            let acc = &mut rest[..acc_len];
            // The panels of q, accumulated contiguously (rows of q are n apart too): panel gi
            // at gi·r·PANEL.
            // Blocks of rows of q: with PACK, one block of the packed a (nb rows) at a time,
            // swept over every panel of the group; otherwise all r rows at once.
            let tb = if S::PACK { nb } else { r };
            let mut i0 = 0;
            while i0 < k {
                let kc = KC.min(k - i0);
                // The block of panel gi: in the pre-packed V (panel first + gi at
                // (first + gi)·k·PANEL, row i0 on) or in this task's copy.
                let (blk, part) = match pre_ptr {
                    // SAFETY: the pre-packed V holds every panel's k rows.
                    Some(pp) => unsafe {
                        (
                            (pp as *const f32).add((first * k + i0) * S::PANEL),
                            k * S::PANEL,
                        )
                    },
                    None => {
                        // SAFETY: rows i0..i0+kc of b hold the group's columns; pack part gi
                        // holds KC rows of PANEL.
                        unsafe {
                            S::pack_panel(Pack {
                                src: (b_ptr as *const f32).add(i0 * n),
                                ld: n,
                                rows: kc,
                                panels: grp,
                                dst: pack.as_mut_ptr(),
                                part: KC * S::PANEL,
                            });
                        }
                        (pack.as_ptr(), KC * S::PANEL)
                    }
                };
                let mut tb0 = 0;
                while tb0 < r {
                    let tb1 = (tb0 + tb).min(r);
                    for (gi, &(j0, cols)) in grp.iter().enumerate() {
                        let mr = rows_for::<S>(cols);
                        // SAFETY: part gi of the block exists.
                        let y = unsafe { blk.add(gi * part) };
                        let mut t0 = tb0;
                        while t0 < tb1 {
                            let rows = mr.min(tb1 - t0);
                            // SAFETY: rows i0..i0+kc and columns t0..t0+rows of a (in place,
                            // or in block t0 / nb of the packed copy: mr divides nb, so the
                            // columns lie in one block), the block of b, and rows t0..t0+rows
                            // of panel gi of the accumulator (or columns j0..j0+cols of those
                            // rows of q, which no other group writes) exist.
                            unsafe {
                                let (c, ldc) = if direct {
                                    (out.at(t0 * n + j0), n)
                                } else {
                                    (acc.as_mut_ptr().add((gi * r + t0) * S::PANEL), S::PANEL)
                                };
                                let (x, xk) = if S::PACK {
                                    let (bi, off) = (t0 / nb, t0 % nb);
                                    ((ap_ptr as *const f32).add((bi * k + i0) * nb + off), nb)
                                } else {
                                    ((a_ptr as *const f32).add(i0 * r + t0), r)
                                };
                                micro_any::<S>(
                                    rows,
                                    Tile {
                                        kc,
                                        x,
                                        xa: 1,
                                        xk,
                                        y,
                                        yk: S::PANEL,
                                        c,
                                        ldc,
                                        cols,
                                        accumulate: i0 > 0,
                                        c_padded: !direct || cols == S::PANEL,
                                    },
                                );
                            }
                            t0 += rows;
                        }
                    }
                    tb0 = tb1;
                }
                i0 += kc;
            }
            for (gi, &(j0, cols)) in grp.iter().enumerate().filter(|_| !direct) {
                let part = &acc[gi * r * S::PANEL..(gi + 1) * r * S::PANEL];
                for (t, row) in part.chunks_exact(S::PANEL).enumerate() {
                    // SAFETY: row t of q has columns j0..j0+cols; panels are disjoint.
                    let dst = unsafe { std::slice::from_raw_parts_mut(out.at(t * n + j0), cols) };
                    dst.copy_from_slice(&row[..cols]);
                }
            }
            give_back(&BLOCK, buf);
        };
        if k * n * r >= 1 << 17 {
            panels
                .par_chunks(group)
                .enumerate()
                .for_each(|(g, grp)| run((g * group, grp)));
        } else {
            panels
                .chunks(group)
                .enumerate()
                .for_each(|(g, grp)| run((g * group, grp)));
        }
        if S::PACK {
            give_back(&OPERAND, packed_a);
        }
    }

    /// Floats of [`pack_whole`]'s copy of a k x n matrix.
    pub(super) fn whole_len<S: Tiling>(k: usize, n: usize) -> usize {
        panels::<S>(n).len() * k * S::PANEL
    }

    /// `b` (k x n, row-major) copied once into the blocks [`at_b`] reads: panel p of
    /// [`panels`] at p·k·PANEL, its k rows PANEL apart, the lanes past its width 0; `out` is
    /// [`whole_len`] floats.
    ///
    /// # Safety
    /// The set `S` must be available; `b` row-major.
    pub(super) unsafe fn pack_whole<S: Tiling>(b: ArrayView2<'_, f32>, out: &mut [f32]) {
        let (k, n) = b.dim();
        let panels = panels::<S>(n);
        assert_eq!(out.len(), panels.len() * k * S::PANEL);
        // SAFETY: b has k rows of n floats (row-major), and out holds every panel's k rows.
        unsafe {
            S::pack_panel(Pack {
                src: b.as_ptr(),
                ld: n,
                rows: k,
                panels: &panels,
                dst: out.as_mut_ptr(),
                part: k * S::PANEL,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn pseudo(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
        Array2::from_shape_fn((rows, cols), |_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 1000) as f32 / 1000.0
        })
    }

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f64> {
        let mut c = Array2::<f64>::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                c[[i, j]] = (0..a.ncols())
                    .map(|l| a[[i, l]] as f64 * b[[l, j]] as f64)
                    .sum();
            }
        }
        c
    }

    /// One product vs the f64 reference.
    const REL_TOL: f64 = 1e-5;

    fn close(c: &Array2<f32>, r: &Array2<f64>) -> bool {
        let scale = r.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
        c.iter()
            .zip(r)
            .all(|(x, y)| ((*x as f64) - y).abs() <= REL_TOL * scale)
    }

    #[test]
    fn shapes_that_do_not_conform_are_errors_whatever_the_cpu() {
        let a = pseudo(6, 4, 1);
        let b = pseudo(3, 4, 2);
        let mut s = Vec::new();
        let mut p = Array2::<f32>::zeros((6, 3));
        assert!(a_bt(a.view(), b.view(), p.view_mut(), &mut s).is_ok());
        let mut small = Array2::<f32>::zeros((5, 3));
        assert!(a_bt(a.view(), b.view(), small.view_mut(), &mut s).is_err());
        let wide = pseudo(3, 5, 3);
        assert!(a_bt(a.view(), wide.view(), p.view_mut(), &mut s).is_err());
        // Packed Bᵀ: 4 x 3 floats, one short, one over.
        assert!(a_bt_packed(a.view(), None, &[0.0; 12], p.view_mut()).is_ok());
        assert!(a_bt_packed(a.view(), None, &[0.0; 11], p.view_mut()).is_err());
        assert!(a_bt_packed(a.view(), None, &[0.0; 13], p.view_mut()).is_err());
        assert!(a_bt_packed(a.view(), None, &[0.0; 12], small.view_mut()).is_err());
        // aᵀ b: a 6 x 4, b 6 x 2, q 4 x 2.
        let b2 = pseudo(6, 2, 4);
        let mut q = Array2::<f32>::zeros((4, 2));
        assert!(at_b(a.view(), b2.view(), q.view_mut()).is_ok());
        let short = pseudo(5, 2, 5);
        assert!(at_b(a.view(), short.view(), q.view_mut()).is_err());
        let mut q_small = Array2::<f32>::zeros((4, 1));
        assert!(at_b(a.view(), b2.view(), q_small.view_mut()).is_err());
    }

    /// The levels whose kernels run here (the GEMM fallback is tested in `products`).
    /// `at_b` at `level` on pseudo-random `a` (k x r) and `b` (k x n) of the given seeds
    /// against the f64 product.
    fn assert_at_b(level: Level, (k, r, n): (usize, usize, usize), (sa, sb): (u32, u32)) {
        let a = pseudo(k, r, sa);
        let b = pseudo(k, n, sb);
        let mut q = Array2::<f32>::from_elem((r, n), f32::NAN);
        assert!(at_b_at(level, a.view(), b.view(), q.view_mut()).unwrap());
        assert!(
            close(&q, &naive(&a.t().to_owned(), &b)),
            "{level:?} at_b {k}x{r} n{n}"
        );
    }

    fn kernel_levels() -> Vec<Level> {
        let levels: Vec<Level> = Level::all_supported()
            .into_iter()
            .filter(|&l| runs(l))
            .collect();
        if levels.is_empty() {
            println!("skipping: no vector kernels on this CPU (the general GEMM is used instead)");
        }
        levels
    }

    #[test]
    fn at_b_groups_of_panels_at_strides_that_alias_and_not() {
        // n = 256 and 512: rows of b a multiple of 1 KiB apart; n = 1037: groups of several
        // panels, the last one partial; k ≤ KC (one block, written straight into q: W H with
        // depth r) with partial panels and many rows. (k, r, n):
        let cases = [
            [300, 17, 256],
            [129, 64, 512],
            [7, 1, 256],
            [130, 49, 256],
            [131, 49, 1037],
            [64, 131, 1037],
            [128, 49, 300],
            [1, 5, 17],
        ];
        for level in kernel_levels() {
            for &[k, r, n] in &cases {
                assert_at_b(level, (k, r, n), (3, 4));
            }
        }
    }

    /// A Gram-shaped `aᵀ b` (one output panel, k long) split over the depth equals the
    /// product, at every level, for any number of parts.
    #[test]
    fn at_b_split_over_the_depth_matches_the_product() {
        for level in kernel_levels() {
            for &(k, r, n) in &[(2000, 49, 49), (1500, 7, 3), (1025, 64, 64)] {
                let a = pseudo(k, r, 8);
                let b = pseudo(k, n, 9);
                let want = naive(&a.t().to_owned(), &b);
                for parts in [2, 3, 4] {
                    let mut q = Array2::<f32>::from_elem((r, n), f32::NAN);
                    at_b_by_depth(level, a.view(), b.view(), q.view_mut(), parts);
                    assert!(close(&q, &want), "{level:?} {k}x{r} n{n} in {parts} parts");
                }
            }
        }
    }

    /// Reading V from its packed copy is the same kernel over the same blocks: bit for bit
    /// the product of `at_b`, at the level of the moment (groups of panels, a last partial
    /// panel, k past one block).
    #[test]
    fn at_b_from_the_packed_copy_is_at_b() {
        for &[k, r, n] in &[[300, 17, 256], [131, 49, 1037], [7, 1, 5], [129, 64, 64]] {
            let a = pseudo(k, r, 5);
            let b = pseudo(k, n, 6);
            let Some(packed) = PackedPanels::new(b.view()) else {
                assert_eq!(
                    PackedPanels::bytes(k, n),
                    0,
                    "a vector level runs: a copy is made"
                );
                return;
            };
            assert_eq!(packed.data.len() * 4, PackedPanels::bytes(k, n));
            let mut q = Array2::<f32>::from_elem((r, n), f32::NAN);
            let mut want = q.clone();
            assert!(at_b_packed(a.view(), b.view(), &packed, q.view_mut()).unwrap());
            assert!(at_b(a.view(), b.view(), want.view_mut()).unwrap());
            assert_eq!(q, want, "at_b from the packed copy {k}x{r} n{n}");
            // Another shape is refused, not read out of bounds.
            let other = pseudo(k, n + 1, 7);
            let mut q2 = Array2::<f32>::zeros((r, n + 1));
            assert!(!at_b_packed(a.view(), other.view(), &packed, q2.view_mut()).unwrap());
        }
    }

    #[test]
    fn both_kernels_match_naive_around_block_edges() {
        let dims = [
            1, 7, 8, 9, 15, 16, 17, 47, 48, 49, 127, 128, 129, 255, 256, 257, 513,
        ];
        let ranks = [
            1, 7, 8, 9, 10, 11, 15, 16, 17, 18, 19, 24, 25, 48, 49, 50, 51, 64, 65, 100, 128,
        ];
        let mut scratch = Vec::new();
        for level in kernel_levels() {
            for &m in &[1, 5, 8, 9, 13, 33, 50] {
                for &k in &dims {
                    for &r in &ranks {
                        let a = pseudo(m, k, (m * 31 + k) as u32);
                        let b = pseudo(r, k, (r * 7 + k) as u32);
                        let mut p = Array2::<f32>::from_elem((m, r), f32::NAN);
                        let ran = a_bt_at(level, a.view(), b.view(), p.view_mut(), &mut scratch);
                        assert!(ran.unwrap());
                        assert!(
                            close(&p, &naive(&a, &b.t().to_owned())),
                            "{level:?} a_bt {m}x{k} r{r}"
                        );
                        // at_b with a: k x r, b: k x m
                        assert_at_b(level, (k, r, m), ((k + r) as u32, (k * 3 + m) as u32));
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_matches_the_definition_for_both_layouts() {
        for &(r, k) in &[(1, 1), (7, 3), (8, 17), (9, 40), (49, 33), (17, 8)] {
            let b = pseudo(r, k, (r * 5 + k) as u32);
            let bf = b.t().as_standard_layout().into_owned(); // k x r; its .t() is not standard
            for view in [b.view(), bf.t()] {
                let mut out = vec![f32::NAN; r * k + 3];
                transpose_into(view, &mut out);
                for t in 0..r {
                    for kk in 0..k {
                        assert_eq!(out[kk * r + t], b[[t, kk]], "{r}x{k} at ({t}, {kk})");
                    }
                }
                assert!(out[r * k..].iter().all(|x| x.is_nan()), "wrote past r·k");
            }
        }
    }

    #[test]
    fn level_none_leaves_the_product_to_the_caller() {
        let a = pseudo(9, 5, 1);
        let b = pseudo(3, 5, 2);
        let mut p = Array2::<f32>::from_elem((9, 3), 7.0);
        let mut s = Vec::new();
        assert!(!a_bt_at(Level::None, a.view(), b.view(), p.view_mut(), &mut s).unwrap());
        let mut q = Array2::<f32>::from_elem((5, 3), 7.0);
        let c = pseudo(9, 3, 3);
        assert!(!at_b_at(Level::None, a.view(), c.view(), q.view_mut()).unwrap());
        assert!(p.iter().chain(q.iter()).all(|&x| x == 7.0));
        // Shapes are checked before the level is.
        assert!(a_bt_at(Level::None, a.view(), a.view(), p.view_mut(), &mut s).is_err());
    }
}
