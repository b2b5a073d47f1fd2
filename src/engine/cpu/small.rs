//! `D = P X` for a small square `P` (r x r) and a wide `X` (r x n): the denominator `K H` of the
//! multiplicative update of H (`K = Wᵀ W`), and its orthogonal variant.
//!
//! The general skinny kernel treats this product as one with a long dimension of only r and
//! pays for packing and panel set-up on every call. Here each block of 64 columns of `X` stays in
//! L1 while every row of `P` sweeps it, `D[t, block] = Σ_k P[t,k] · X[k, block]` summed in
//! vector registers, as the HALS sweeps of `hals.rs` form their gradients.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::elementwise::{self, Den};
use super::layout::scratch_block;
#[cfg(target_arch = "x86_64")]
use super::simd::Isa;
use super::simd::{self, isa_entries, Level};
use super::skinny;
use crate::engine::MuRule;
use crate::error::{NmfError, Result};
use crate::options::Regularization;

/// Columns per block (a block of X, r x 64 floats, stays in L1 for r ≤ 64).
const BLOCK: usize = 64;

/// `out = p x` for `p` (r x r), `x` and `out` (r x n), at [`simd::level`]. Shapes that do not
/// conform are an error; `Ok(false)` (doing nothing) when no vector level is available or `x` or
/// `out` do not have contiguous rows.
pub(crate) fn times_wide(
    p: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    out: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    times_wide_at(simd::level(), p, x, out)
}

/// [`times_wide`] at `level` (which the CPU must support).
fn times_wide_at(
    level: Level,
    p: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    out: ArrayViewMut2<'_, f32>,
) -> Result<bool> {
    let r = x.nrows();
    let what = "the operands of P X";
    check_operands(what, (p.dim(), r), "output", x.dim(), out.dim())?;
    if !vector_rows(level, &[x.strides(), out.strides()], x.ncols()) {
        return Ok(false);
    }
    if r == 0 || x.ncols() == 0 {
        return Ok(true);
    }
    let p = p.as_standard_layout();
    let ps = p.as_slice().unwrap_or(&[]);
    let parallel = r * r * x.ncols() >= 1 << 17;
    over_chunks(out, x, (Axis(1), BLOCK), parallel, |_, ob, xb| {
        product_span(level, ps, xb, ob);
        Ok(())
    })?;
    Ok(true)
}

/// `p` r x r and `other` (the output or numerator, named `name`) shaped as X (`x`), or a
/// [`NmfError::ShapeMismatch`] that names all three.
fn check_operands(
    what: &'static str,
    (p, r): ((usize, usize), usize),
    name: &str,
    x: (usize, usize),
    other: (usize, usize),
) -> Result<()> {
    if p == (r, r) && other == x {
        return Ok(());
    }
    Err(NmfError::ShapeMismatch {
        what,
        expected: format!("P {r} x {r} and a {name} {} x {} (as X)", x.0, x.1),
        found: format!("P {} x {}, {name} {} x {}", p.0, p.1, other.0, other.1),
    })
}

/// Whether the vector kernels run at `level` on matrices whose rows (`cols` long) are
/// contiguous, as each of `strides` says.
fn vector_rows(level: Level, strides: &[&[isize]], cols: usize) -> bool {
    level != Level::None && level.supported() && strides.iter().all(|s| s[1] == 1 || cols <= 1)
}

/// `run(scratch, a_chunk, b_chunk)` over the chunks of `size` along `axis` of `a` and `b`
/// (the same shape), in parallel when `parallel`; `scratch` is a buffer each worker reuses
/// across its chunks ([`scratch_block`]).
fn over_chunks<F>(
    mut a: ArrayViewMut2<'_, f32>,
    b: ArrayView2<'_, f32>,
    (axis, size): (Axis, usize),
    parallel: bool,
    run: F,
) -> Result<()>
where
    F: Fn(&mut Vec<f32>, ArrayViewMut2<'_, f32>, ArrayView2<'_, f32>) -> Result<()> + Sync + Send,
{
    let (ac, bc) = (
        a.axis_chunks_iter_mut(axis, size),
        b.axis_chunks_iter(axis, size),
    );
    if parallel {
        ac.into_par_iter()
            .zip(bc)
            .try_for_each_init(Vec::new, |buf, (a, b)| run(buf, a, b))
    } else {
        let mut buf = Vec::new();
        ac.zip(bc).try_for_each(|(a, b)| run(&mut buf, a, b))
    }
}

/// `out = P x` over a span of columns, [`BLOCK`] at a time (each block of `x` stays in L1
/// while every row of P sweeps it), at `level`, for `p` the r x r row-major P.
///
/// # Panics
/// When `level` is not supported, `p` holds fewer than r·r floats, `x` and `out` differ in
/// shape or their rows are not contiguous (the kernels' contract, checked here).
fn product_span(level: Level, p: &[f32], x: ArrayView2<'_, f32>, mut out: ArrayViewMut2<'_, f32>) {
    let (r, w) = x.dim();
    assert!(level.supported() && p.len() >= r * r && out.dim() == (r, w));
    assert!(vector_rows(level, &[x.strides(), out.strides()], w));
    let (ldx, ldo) = (x.strides()[0] as usize, out.strides()[0] as usize);
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    for j0 in (0..w).step_by(BLOCK) {
        let b = BLOCK.min(w - j0);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is supported, p holds r x r floats, and columns j0..j0+b of the r
        // rows of x (ldx apart) and of out (ldo apart) exist (asserted above).
        unsafe {
            let (xj, oj) = (xp.add(j0), op.add(j0));
            match level {
                Level::Avx512 => block_avx512(p, r, xj, ldx, oj, ldo, b),
                Level::Avx2 => block_avx2(p, r, xj, ldx, oj, ldo, b),
                Level::None => {}
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (xp, op, ldx, ldo, b);
    }
}

/// Columns per task of [`times_wide_update`]: its buffer of `P X` (r x SPAN floats, 64 KiB
/// at r = 64) stays in L2 between the product and the update.
const SPAN: usize = 256;

/// The multiplicative update whose denominator is `P X`, fused with that product:
/// `x ← flush(x ⊙ f(num ⊘ (P x + l1 + l2·x)))` (a zero denominator becomes `eps`; `f` and the
/// flush are `rule`'s, as [`elementwise::mu_chunk`]), for `p` (r x r) and `x`, `num` (r x n).
///
/// Span by span of [`SPAN`] columns: the span's `P x` (every row of it, from the old `x`) goes
/// to a buffer that stays in cache, and the update of the span reads it there, so the
/// denominator is never written to memory and read back. The result is bit for bit
/// [`times_wide`] followed by the elementwise update. Shapes that do not conform are an error;
/// `Ok(false)` (nothing done) where [`times_wide`] would not run or `num` does not have
/// contiguous rows.
pub(crate) fn times_wide_update(
    p: ArrayView2<'_, f32>,
    x: ArrayViewMut2<'_, f32>,
    num: ArrayView2<'_, f32>,
    reg: Regularization,
    eps: f32,
    rule: MuRule,
) -> Result<bool> {
    times_wide_update_at(simd::level(), p, x, num, reg, eps, rule)
}

/// [`times_wide_update`] at `level` (`Ok(false)` where the CPU does not support it).
fn times_wide_update_at(
    level: Level,
    p: ArrayView2<'_, f32>,
    x: ArrayViewMut2<'_, f32>,
    num: ArrayView2<'_, f32>,
    reg: Regularization,
    eps: f32,
    rule: MuRule,
) -> Result<bool> {
    let (r, n) = x.dim();
    let what = "the operands of the update with denominator P X";
    check_operands(what, (p.dim(), r), "numerator", x.dim(), num.dim())?;
    if !vector_rows(level, &[x.strides(), num.strides()], n) {
        return Ok(false);
    }
    if r == 0 || n == 0 {
        return Ok(true);
    }
    let p = p.as_standard_layout();
    let ps = p.as_slice().unwrap_or(&[]);
    let parallel = r * r * n >= 1 << 17;
    over_chunks(x, num, (Axis(1), SPAN), parallel, |buf, mut xs, ns| {
        let w = xs.ncols();
        let mut d = scratch_block(buf, (r, w))?;
        product_span(level, ps, xs.view(), d.view_mut());
        for ((mut xr, nr), dr) in xs.rows_mut().into_iter().zip(ns.rows()).zip(d.rows()) {
            if let (Some(xr), Some(nr), Some(dr)) =
                (xr.as_slice_mut(), nr.as_slice(), dr.to_slice())
            {
                elementwise::mu_chunk(level, xr, nr, Den::Each(dr), reg, eps, rule);
            }
        }
        Ok(())
    })?;
    Ok(true)
}

/// Rows per task of [`tall_times_update`]: its buffer of `X P` (ROWS_PER_TASK x r floats, 64
/// KiB at r = 64) stays in L2 between the product and the update.
const ROWS_PER_TASK: usize = 256;

/// The multiplicative update whose denominator is `X P`, fused with that product: the
/// mirror of [`times_wide_update`] for a tall `x` (m x r), `num` (m x r) and `p` (r x r):
/// `x ← flush(x ⊙ f(num ⊘ (x P + l1 + l2·x)))`, block by block of [`ROWS_PER_TASK`] rows (each
/// row of `x P` needs only that row of `x`). The product is the skinny `A Bᵀ` kernel with
/// `Bᵀ = P` as [`skinny::a_bt_packed`] reads it; the result is bit for bit that product over
/// the whole of `x` followed by the elementwise update. Shapes that do not conform are an
/// error; `Ok(false)` (nothing done) where the kernels do not run or an operand is not
/// row-major.
pub(crate) fn tall_times_update(
    x: ArrayViewMut2<'_, f32>,
    p: ArrayView2<'_, f32>,
    num: ArrayView2<'_, f32>,
    reg: Regularization,
    eps: f32,
    rule: MuRule,
) -> Result<bool> {
    let level = simd::level();
    let (m, r) = x.dim();
    let what = "the operands of the update with denominator X P";
    check_operands(what, (p.dim(), r), "numerator", x.dim(), num.dim())?;
    if !(vector_rows(level, &[], r) && x.is_standard_layout() && num.is_standard_layout()) {
        return Ok(false);
    }
    if m == 0 || r == 0 {
        return Ok(true);
    }
    let p = p.as_standard_layout();
    let ps = p.as_slice().unwrap_or(&[]);
    let parallel = m * r * r >= 1 << 17;
    over_chunks(
        x,
        num,
        (Axis(0), ROWS_PER_TASK),
        parallel,
        |buf, mut xs, ns| {
            let mut d = scratch_block(buf, xs.dim())?;
            if !skinny::a_bt_packed(xs.view(), None, ps, d.view_mut())? {
                return Err(NmfError::ShapeMismatch {
                    what: "a block of the update with denominator X P",
                    expected: "row-major operands".into(),
                    found: "another layout".into(),
                });
            }
            if let (Some(xr), Some(nr), Some(dr)) = (xs.as_slice_mut(), ns.as_slice(), d.as_slice())
            {
                elementwise::mu_chunk(level, xr, nr, Den::Each(dr), reg, eps, rule);
            }
            Ok(())
        },
    )?;
    Ok(true)
}

// A block of 64 columns: 4 zmm or 8 ymm vectors.
isa_entries!(
    [block_avx512, block_avx2] []
    (p: &[f32], r: usize, x: *const f32, ldx: usize, out: *mut f32, ldo: usize, b: usize),
    |S| block::<S>(p, r, x, ldx, out, ldo, b)
);

/// The register blocking of [`block`] on one instruction set: `ROWS` rows of P times `VECS`
/// vectors of columns, `ROWS·VECS` accumulators beside `VECS` loaded vectors and one broadcast.
#[cfg(target_arch = "x86_64")]
trait Blocking: Isa {
    /// Rows of P per register block.
    const ROWS: usize;
    /// Vectors of columns per register block.
    const VECS: usize;
}

#[cfg(target_arch = "x86_64")]
impl Blocking for simd::Avx512 {
    // 24 of the 32 zmm registers accumulate, 4 hold X, 1 the broadcast.
    const ROWS: usize = 6;
    const VECS: usize = 4;
}

#[cfg(target_arch = "x86_64")]
impl Blocking for simd::Avx2 {
    // 12 of the 16 ymm registers accumulate, 2 hold X, 1 the broadcast.
    const ROWS: usize = 6;
    const VECS: usize = 2;
}

/// `out[t, 0..b] = Σ_k p[t·r + k] · x[k·ldx + 0..b]` for every t < r: `ROWS` rows of P by
/// `VECS` vectors of columns at a time (each vector of X loaded once per k for `ROWS` rows),
/// then the columns left one masked vector at a time. Each entry is the sum over k in order,
/// one fused multiply-add per term from zero.
///
/// # Safety
/// `S`'s instruction set must be available; `p.len() ≥ r·r`; `x` and `out` point at r rows of
/// b floats, `ldx` and `ldo` apart.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block<S: Blocking>(
    p: &[f32],
    r: usize,
    x: *const f32,
    ldx: usize,
    out: *mut f32,
    ldo: usize,
    b: usize,
) {
    assert!(p.len() >= r * r);
    let mut t0 = 0;
    while t0 < r {
        let rows = S::ROWS.min(r - t0);
        // SAFETY: rows t0..t0+rows of p and out exist; the caller's contract for x and out.
        unsafe {
            match rows {
                1 => rows_block::<S, 1>(p, r, t0, x, ldx, out, ldo, b),
                2 => rows_block::<S, 2>(p, r, t0, x, ldx, out, ldo, b),
                3 => rows_block::<S, 3>(p, r, t0, x, ldx, out, ldo, b),
                4 => rows_block::<S, 4>(p, r, t0, x, ldx, out, ldo, b),
                5 => rows_block::<S, 5>(p, r, t0, x, ldx, out, ldo, b),
                _ => rows_block::<S, 6>(p, r, t0, x, ldx, out, ldo, b),
            }
        }
        t0 += rows;
    }
}

/// Rows `t0..t0 + T` of [`block`] (`T ≤ ROWS`, checked against the registers by the
/// `ROWS·VECS` budget of [`Blocking`]).
///
/// # Safety
/// As [`block`], with `t0 + T ≤ r`.
#[cfg(target_arch = "x86_64")]
// k indexes the T rows of P and the rows of X at once.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
unsafe fn rows_block<S: Blocking, const T: usize>(
    p: &[f32],
    r: usize,
    t0: usize,
    x: *const f32,
    ldx: usize,
    out: *mut f32,
    ldo: usize,
    b: usize,
) {
    let prow: [&[f32]; T] = std::array::from_fn(|a| &p[(t0 + a) * r..(t0 + a + 1) * r]);
    // SAFETY: every pointer is x + k·ldx + i or out + t·ldo + i with k, t < r and
    // i + LANES ≤ b (or a mask of the b − i < LANES columns left), inside the block (caller's
    // contract).
    unsafe {
        let group = S::VECS * S::LANES;
        let mut i = 0;
        while i + group <= b {
            // At most 4 vectors (the AVX-512 blocking); VECS of them used.
            let mut acc = [[S::zero(); 4]; T];
            for k in 0..r {
                let xk = x.add(k * ldx + i);
                let mut xv = [S::zero(); 4];
                for (j, v) in xv.iter_mut().enumerate().take(S::VECS) {
                    *v = S::load(xk.add(j * S::LANES));
                }
                for (a, row) in acc.iter_mut().enumerate() {
                    let pv = S::splat(prow[a][k]);
                    for (j, v) in row.iter_mut().enumerate().take(S::VECS) {
                        *v = S::fmadd(pv, xv[j], *v);
                    }
                }
            }
            for (a, row) in acc.iter().enumerate() {
                let ot = out.add((t0 + a) * ldo + i);
                for (j, v) in row.iter().enumerate().take(S::VECS) {
                    S::store(ot.add(j * S::LANES), *v);
                }
            }
            i += group;
        }
        while i < b {
            let m = S::mask(b - i);
            let mut acc = [S::zero(); T];
            for k in 0..r {
                let xv = S::load_masked(m, x.add(k * ldx + i));
                for (a, v) in acc.iter_mut().enumerate() {
                    *v = S::fmadd(S::splat(prow[a][k]), xv, *v);
                }
            }
            for (a, v) in acc.iter().enumerate() {
                S::store_masked(out.add((t0 + a) * ldo + i), m, *v);
            }
            i += S::LANES;
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    use crate::linalg::xorshift::XorShift;

    fn pseudo(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        XorShift::seeded(seed, 99, 1000).matrix(rows, cols, 0.0)
    }

    /// Every level against the f64 product, around the vector groups and the block edge, with
    /// a zero entry of P (skipped) and a column view of a wider matrix as X.
    #[test]
    fn every_level_matches_the_product() {
        for r in [1, 7, 8, 9, 17, 49, 64] {
            for n in [1, 7, 8, 63, 64, 65, 200] {
                let mut p = pseudo(r, r, (r * 31 + n) as u32);
                p[[0, r - 1]] = 0.0;
                let wide = pseudo(r, n + 3, (r + n) as u32);
                let x = wide.slice(ndarray::s![.., 1..n + 1]);
                let want = p.mapv(f64::from).dot(&x.mapv(f64::from));
                for level in Level::all_supported() {
                    let mut out = Array2::<f32>::from_elem((r, n), f32::NAN);
                    let ran = times_wide_at(level, p.view(), x, out.view_mut()).unwrap();
                    assert_eq!(ran, level != Level::None, "{level:?}");
                    if !ran {
                        continue;
                    }
                    for (g, w) in out.iter().zip(want.iter()) {
                        assert!(
                            (f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{level:?} r {r} n {n}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    /// The rules and penalties the fused updates are checked with.
    fn rules_and_penalties() -> Vec<(MuRule, Regularization)> {
        let power = MuRule::Power {
            gamma: 0.5,
            floor: 1e-20,
        };
        let mut out = Vec::new();
        for rule in [MuRule::Plain, MuRule::Sqrt, MuRule::Damped, power] {
            for (l1, l2) in [(0.0, 0.0), (0.1, 0.3)] {
                out.push((rule, Regularization { l1, l2 }));
            }
        }
        out
    }

    /// `fused` (the update under test, on a copy of `x0`) against the elementwise update of
    /// `x0` with the denominator `d`, bit for bit.
    fn assert_fused(
        level: Level,
        (x0, num, d): (&Array2<f32>, &Array2<f32>, &Array2<f32>),
        (rule, reg): (MuRule, Regularization),
        fused: impl FnOnce(ArrayViewMut2<'_, f32>) -> Result<bool>,
        what: &str,
    ) {
        let mut want = x0.clone();
        let (n, den) = (num.as_slice().unwrap(), d.as_slice().unwrap());
        let w = want.as_slice_mut().unwrap();
        elementwise::mu_chunk(level, w, n, Den::Each(den), reg, f32::EPSILON, rule);
        let mut got = x0.clone();
        assert!(fused(got.view_mut()).unwrap(), "{what}");
        let same = got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what} {rule:?} {reg:?}");
    }

    /// The fused update equals the product followed by the elementwise update bit for bit, at
    /// every level and rule, across the span and block edges, with and without penalties.
    #[test]
    fn the_fused_update_is_the_product_then_the_update() {
        for (r, n) in [(1, 1), (7, 65), (49, 300), (64, 257), (9, 2 * SPAN + 3)] {
            let mut p = pseudo(r, r, (r * 7 + n) as u32);
            p[[0, 0]] = 0.0;
            let x0 = pseudo(r, n, (r + 3 * n) as u32);
            let num = pseudo(r, n, (2 * r + n) as u32);
            for level in Level::all_supported()
                .into_iter()
                .filter(|&l| l != Level::None)
            {
                let mut d = Array2::<f32>::zeros((r, n));
                assert!(times_wide_at(level, p.view(), x0.view(), d.view_mut()).unwrap());
                for (rule, reg) in rules_and_penalties() {
                    let fused = |x: ArrayViewMut2<'_, f32>| {
                        times_wide_update_at(
                            level,
                            p.view(),
                            x,
                            num.view(),
                            reg,
                            f32::EPSILON,
                            rule,
                        )
                    };
                    let what = format!("{level:?} r {r} n {n}");
                    assert_fused(level, (&x0, &num, &d), (rule, reg), fused, &what);
                }
            }
        }
        let x = pseudo(3, 10, 2);
        let mut y = x.clone();
        let none = Regularization { l1: 0.0, l2: 0.0 };
        let eps = f32::EPSILON;
        let num = x.slice(ndarray::s![.., ..9]);
        let p = pseudo(3, 3, 1);
        assert!(times_wide_update(p.view(), y.view_mut(), num, none, eps, MuRule::Plain).is_err());
    }

    /// The fused update of a tall factor equals the skinny product over the whole factor
    /// followed by the elementwise update, bit for bit, across the task edge.
    #[test]
    fn the_fused_tall_update_is_the_product_then_the_update() {
        if simd::level() == Level::None {
            println!("skipping: no vector kernels on this CPU");
            return;
        }
        for (m, r) in [(1, 1), (7, 3), (300, 49), (2 * ROWS_PER_TASK + 5, 17)] {
            let g = pseudo(r, r, (m + r) as u32);
            let x0 = pseudo(m, r, (3 * m + r) as u32);
            let num = pseudo(m, r, (m + 5 * r) as u32);
            let mut d = Array2::<f32>::zeros((m, r));
            let mut bt = vec![0.0; r * r];
            skinny::transpose_into(g.t(), &mut bt);
            assert!(skinny::a_bt_packed(x0.view(), None, &bt, d.view_mut()).unwrap());
            for (rule, reg) in rules_and_penalties() {
                let fused = |x: ArrayViewMut2<'_, f32>| {
                    tall_times_update(x, g.view(), num.view(), reg, f32::EPSILON, rule)
                };
                let what = format!("m {m} r {r}");
                assert_fused(simd::level(), (&x0, &num, &d), (rule, reg), fused, &what);
            }
        }
        let x = pseudo(10, 3, 2);
        let mut y = x.clone();
        let none = Regularization { l1: 0.0, l2: 0.0 };
        let eps = f32::EPSILON;
        let num = x.slice(ndarray::s![..9, ..]);
        let p = pseudo(3, 3, 1);
        assert!(tall_times_update(y.view_mut(), p.view(), num, none, eps, MuRule::Plain).is_err());
        // P of another size than X's rank.
        let num = x.view();
        let p4 = pseudo(4, 4, 1);
        assert!(tall_times_update(y.view_mut(), p4.view(), num, none, eps, MuRule::Plain).is_err());
    }

    #[test]
    fn shapes_that_do_not_conform_are_errors() {
        let p = pseudo(3, 3, 1);
        let x = pseudo(3, 10, 2);
        let mut out = Array2::<f32>::zeros((3, 9));
        assert!(times_wide(p.view(), x.view(), out.view_mut()).is_err());
        let p4 = pseudo(4, 4, 1);
        let mut out = Array2::<f32>::zeros((3, 10));
        assert!(times_wide(p4.view(), x.view(), out.view_mut()).is_err());
    }
}
