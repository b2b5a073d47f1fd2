//! Vector instruction sets for the CPU kernels, written once and compiled per set.
//!
//! A kernel is a generic `#[inline(always)]` body over [`Isa`]; each instruction set gets a thin
//! entry point with `#[target_feature(enable = …)]` that calls the body with its `Isa`, so the
//! body (and the intrinsics inside every `Isa` method, all `#[inline(always)]`) is compiled with
//! that set's registers and instructions:
//!
//! - [`Avx512`]: 16 lanes, 32 zmm registers, lane masks in `k` registers (AVX-512F);
//! - [`Avx2`]: 8 lanes, 16 ymm registers, lane masks as integer vectors (AVX2 + FMA).
//!
//! [`level`] is the best set the running CPU has, detected once; the environment variable
//! `NMF_SIMD` (`avx512`, `avx2` or `none`) caps it, to compare kernels on one machine.

use std::sync::OnceLock;

/// The instruction sets the CPU kernels are compiled for, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// No vector kernels: portable code (compiled for the target's baseline) only.
    None,
    /// AVX2 with FMA (8 lanes, 16 registers).
    Avx2,
    /// AVX-512F (16 lanes, 32 registers).
    Avx512,
}

impl Level {
    /// The best level this CPU supports.
    pub(crate) fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::Avx2;
            }
        }
        Level::None
    }

    /// The level named by `NMF_SIMD` (case-insensitive), if any.
    fn from_env() -> Option<Level> {
        let v = std::env::var("NMF_SIMD").ok()?;
        match v.to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" => Some(Level::Avx512),
            "avx2" => Some(Level::Avx2),
            "none" | "scalar" => Some(Level::None),
            _ => {
                log::warn!("NMF_SIMD={v} is not one of avx512, avx2, none; ignored");
                None
            }
        }
    }

    /// Whether this CPU can run kernels of this level.
    pub(crate) fn supported(self) -> bool {
        self <= Level::detect()
    }

    /// The levels this CPU can run, best first (for tests that compare them).
    #[cfg(test)]
    pub(crate) fn all_supported() -> Vec<Level> {
        [Level::Avx512, Level::Avx2, Level::None]
            .into_iter()
            .filter(|l| l.supported())
            .collect()
    }
}

/// The level the kernels use: the CPU's best, capped by `NMF_SIMD`; detected once.
#[allow(dead_code)]
pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cpu = Level::detect();
        match Level::from_env() {
            Some(cap) => cap.min(cpu),
            None => cpu,
        }
    })
}

/// `#[target_feature]` entry points of one kernel, one per instruction set: `$avx512` and
/// `$avx2`, with the generic parameters in brackets, the arguments and the return type given
/// once, run `$call` with their set enabled and the type `$s` naming it ([`Avx512`], [`Avx2`]).
/// Calling one is `unsafe`: the set must be available, and the kernel's own contract holds.
macro_rules! isa_entries {
    (
        [$avx512:ident, $avx2:ident] [$($gen:tt)*] ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?,
        |$s:ident| $call:expr
    ) => {
        $crate::engine::cpu::simd::isa_entries!(
            @one $avx512, "avx512f", Avx512, [$($gen)*] ($($arg: $ty),*) $(-> $ret)?, |$s| $call
        );
        $crate::engine::cpu::simd::isa_entries!(
            @one $avx2, "avx2,fma", Avx2, [$($gen)*] ($($arg: $ty),*) $(-> $ret)?, |$s| $call
        );
    };
    (
        @one $name:ident, $features:literal, $isa:ident, [$($gen:tt)*] ($($arg:ident: $ty:ty),*)
        $(-> $ret:ty)?, |$s:ident| $call:expr
    ) => {
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        unsafe fn $name<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
            #[allow(dead_code)]
            type $s = $crate::engine::cpu::simd::$isa;
            // SAFETY: the set is enabled here; the rest is the caller's contract, forwarded.
            #[allow(unused_unsafe)]
            unsafe {
                $call
            }
        }
    };
}
pub(crate) use isa_entries;

/// A pair of [`isa_entries!`] called at `$level`: `$avx512(args)` at `Level::Avx512`,
/// `$avx2(args)` at `Level::Avx2`, `$portable` at `Level::None` (and off x86-64). The `unsafe`
/// written in the call is the caller's promise (with its `SAFETY` comment) that `$level` is
/// supported and the rest of the entries' contract holds.
macro_rules! isa_call {
    (unsafe $level:expr, [$avx512:ident, $avx2:ident] ($($arg:expr),* $(,)?), $portable:expr) => {
        match $level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller's, written `unsafe` in the call.
            $crate::engine::cpu::simd::Level::Avx512 => unsafe { $avx512($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            $crate::engine::cpu::simd::Level::Avx2 => unsafe { $avx2($($arg),*) },
            _ => $portable,
        }
    };
}
pub(crate) use isa_call;

/// One vector instruction set: a vector of [`Isa::LANES`] f32 lanes and the operations the
/// kernels use. Every method is `#[inline(always)]` and `unsafe`: calling one requires the
/// instruction set to be available, which the `#[target_feature]` entry points guarantee.
#[cfg(target_arch = "x86_64")]
#[allow(dead_code)] // each kernel uses the operations it needs
pub(crate) trait Isa: Copy {
    /// A vector of `LANES` floats.
    type V: Copy;
    /// Which of the first lanes of a vector a masked load or store touches.
    type M: Copy;
    /// Floats per vector.
    const LANES: usize;
    /// Vector registers of the set (accumulators + operands must fit).
    const REGISTERS: usize;

    /// All lanes 0.
    unsafe fn zero() -> Self::V;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self::V;
    /// `LANES` floats from `p` (no alignment required).
    unsafe fn load(p: *const f32) -> Self::V;
    /// Store `LANES` floats at `p`.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// The mask of the first `min(n, LANES)` lanes.
    unsafe fn mask(n: usize) -> Self::M;
    /// The masked lanes from `p`, the others 0; nothing outside the mask is read.
    unsafe fn load_masked(m: Self::M, p: *const f32) -> Self::V;
    /// Store the masked lanes at `p`; nothing outside the mask is written.
    unsafe fn store_masked(p: *mut f32, m: Self::M, v: Self::V);
    /// `a · b + c`, fused.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// `a − b`.
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// `a / b` (IEEE division).
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// Lanewise maximum (`b` where either is NaN, as `maxps`).
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// Lanewise minimum (`b` where either is NaN, as `minps`).
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// `x` where `x ≥ t`, else 0 (lanewise; flushes values below a threshold).
    unsafe fn keep_at_least(x: Self::V, t: Self::V) -> Self::V;
    /// The sum of the lanes.
    unsafe fn sum(v: Self::V) -> f32;
    /// Prefetch the cache line holding `p` into L1.
    unsafe fn prefetch(p: *const f32);
}

/// L2 size assumed where the CPU does not report one (the smallest of current x86 cores).
const DEFAULT_L2_BYTES: usize = 256 << 10;

/// The L2 cache of one core in bytes, read once from the CPU (`cpuid` leaf 4, the
/// deterministic cache parameters: ways x partitions x line size x sets of the level-2 data or
/// unified cache); [`DEFAULT_L2_BYTES`] where it reports none. The kernels size their blocks
/// from it.
pub(crate) fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| read_l2().unwrap_or(DEFAULT_L2_BYTES))
}

#[cfg(target_arch = "x86_64")]
fn read_l2() -> Option<usize> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // cpuid exists on every x86_64 CPU; leaf 4 is read only where leaf 0 lists it.
    {
        if __cpuid(0).eax < 4 {
            return None;
        }
        for i in 0..16 {
            let c = __cpuid_count(4, i);
            let kind = c.eax & 0x1f; // 0: no more caches, 1: data, 2: instruction, 3: unified
            if kind == 0 {
                break;
            }
            let level = (c.eax >> 5) & 0x7;
            if level == 2 && (kind == 1 || kind == 3) {
                let ways = ((c.ebx >> 22) & 0x3ff) as usize + 1;
                let parts = ((c.ebx >> 12) & 0x3ff) as usize + 1;
                let line = (c.ebx & 0xfff) as usize + 1;
                let sets = c.ecx as usize + 1;
                return Some(ways * parts * line * sets);
            }
        }
    }
    None
}

#[cfg(not(target_arch = "x86_64"))]
fn read_l2() -> Option<usize> {
    None
}

/// Independent accumulators of [`fma_peak`]: more than the FMA latency times the FMA ports
/// (4 cycles x 2 ports), so the chains never wait on each other.
const PEAK_CHAINS: usize = 12;

/// `reps` steps of `PEAK_CHAINS` independent FMAs (`a ← a·b + c`) at the level's vector width:
/// the multiply-adds a core can retire without touching memory. Returns the floating-point
/// operations done (2 per lane per FMA) and a sum of the accumulators (kept live).
pub(crate) fn fma_peak(level: Level, reps: usize) -> (f64, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each kernel runs only where its instruction set was detected.
        unsafe {
            if level == Level::Avx512 && Level::Avx512.supported() {
                return (peak_flops::<Avx512>(reps), peak_avx512(reps));
            }
            if level >= Level::Avx2 && Level::Avx2.supported() {
                return (peak_flops::<Avx2>(reps), peak_avx2(reps));
            }
        }
    }
    let mut acc = [0.5f32; PEAK_CHAINS];
    for _ in 0..reps {
        for a in &mut acc {
            *a = std::hint::black_box(*a).mul_add(0.999_999, 1e-7);
        }
    }
    ((2 * PEAK_CHAINS * reps) as f64, acc.iter().sum())
}

#[cfg(target_arch = "x86_64")]
fn peak_flops<S: Isa>(reps: usize) -> f64 {
    (2 * PEAK_CHAINS * S::LANES * reps) as f64
}

/// The body of [`fma_peak`] for one set.
///
/// # Safety
/// The set `S` must be available.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn peak_body<S: Isa>(reps: usize) -> f32 {
    // SAFETY: guaranteed by the caller; no memory is touched.
    unsafe {
        let (b, c) = (S::splat(0.999_999), S::splat(1e-7));
        let mut acc = [S::splat(0.5); PEAK_CHAINS];
        for _ in 0..reps {
            for a in &mut acc {
                *a = S::fmadd(*a, b, c);
            }
        }
        acc.iter().fold(0.0, |s, &a| s + S::sum(a))
    }
}

isa_entries!([peak_avx512, peak_avx2] [] (reps: usize) -> f32, |S| peak_body::<S>(reps));

#[cfg(target_arch = "x86_64")]
pub(crate) use self::x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Isa;

    /// AVX-512F: zmm registers, `k` masks.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Avx512;

    /// AVX2 + FMA: ymm registers, masks as integer vectors (`vmaskmovps`).
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Avx2;

    impl Isa for Avx512 {
        type V = __m512;
        type M = __mmask16;
        const LANES: usize = 16;
        const REGISTERS: usize = 32;

        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            // SAFETY: the caller guarantees AVX-512F and 16 readable floats at p.
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            // SAFETY: the caller guarantees AVX-512F and 16 writable floats at p.
            unsafe { _mm512_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn mask(n: usize) -> __mmask16 {
            if n >= 16 {
                0xFFFF
            } else {
                ((1u32 << n) - 1) as __mmask16
            }
        }
        #[inline(always)]
        unsafe fn load_masked(m: __mmask16, p: *const f32) -> __m512 {
            // SAFETY: the caller guarantees AVX-512F and the masked lanes readable.
            unsafe { _mm512_maskz_loadu_ps(m, p) }
        }
        #[inline(always)]
        unsafe fn store_masked(p: *mut f32, m: __mmask16, v: __m512) {
            // SAFETY: the caller guarantees AVX-512F and the masked lanes writable.
            unsafe { _mm512_mask_storeu_ps(p, m, v) }
        }
        #[inline(always)]
        unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            _mm512_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn div(a: __m512, b: __m512) -> __m512 {
            _mm512_div_ps(a, b)
        }
        #[inline(always)]
        unsafe fn max(a: __m512, b: __m512) -> __m512 {
            _mm512_max_ps(a, b)
        }
        #[inline(always)]
        unsafe fn min(a: __m512, b: __m512) -> __m512 {
            _mm512_min_ps(a, b)
        }
        #[inline(always)]
        unsafe fn keep_at_least(x: __m512, t: __m512) -> __m512 {
            let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, t);
            _mm512_maskz_mov_ps(keep, x)
        }
        #[inline(always)]
        unsafe fn sum(v: __m512) -> f32 {
            _mm512_reduce_add_ps(v)
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const f32) {
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8)
        }
    }

    /// Eight all-ones lanes then eight zero lanes: the AVX2 mask of the first n lanes is the
    /// eight lanes starting at `8 − n`.
    static MASK_TABLE: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    impl Isa for Avx2 {
        type V = __m256;
        type M = __m256i;
        const LANES: usize = 8;
        const REGISTERS: usize = 16;

        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            // SAFETY: the caller guarantees AVX and 8 readable floats at p.
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            // SAFETY: the caller guarantees AVX and 8 writable floats at p.
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn mask(n: usize) -> __m256i {
            let start = 8 - n.min(8);
            // SAFETY: start ≤ 8, so the 8 lanes from start lie inside the 16-entry table.
            unsafe { _mm256_loadu_si256(MASK_TABLE.as_ptr().add(start) as *const __m256i) }
        }
        #[inline(always)]
        unsafe fn load_masked(m: __m256i, p: *const f32) -> __m256 {
            // SAFETY: the caller guarantees AVX and the masked lanes readable; vmaskmovps
            // does not touch the others.
            unsafe { _mm256_maskload_ps(p, m) }
        }
        #[inline(always)]
        unsafe fn store_masked(p: *mut f32, m: __m256i, v: __m256) {
            // SAFETY: the caller guarantees AVX and the masked lanes writable.
            unsafe { _mm256_maskstore_ps(p, m, v) }
        }
        #[inline(always)]
        unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            _mm256_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            _mm256_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn div(a: __m256, b: __m256) -> __m256 {
            _mm256_div_ps(a, b)
        }
        #[inline(always)]
        unsafe fn max(a: __m256, b: __m256) -> __m256 {
            _mm256_max_ps(a, b)
        }
        #[inline(always)]
        unsafe fn min(a: __m256, b: __m256) -> __m256 {
            _mm256_min_ps(a, b)
        }
        #[inline(always)]
        unsafe fn keep_at_least(x: __m256, t: __m256) -> __m256 {
            _mm256_and_ps(x, _mm256_cmp_ps::<_CMP_GE_OQ>(x, t))
        }
        #[inline(always)]
        unsafe fn sum(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
            _mm_cvtss_f32(s)
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const f32) {
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8)
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Masked copy and a dot product through one `Isa`, to check lanes, masks and sums.
    #[inline(always)]
    unsafe fn masked_dot<S: Isa>(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = unsafe { S::zero() };
        let mut i = 0;
        while i < a.len() {
            let left = a.len() - i;
            // SAFETY: the mask covers only the lanes left in both slices (same length).
            unsafe {
                let m = S::mask(left);
                let x = S::load_masked(m, a.as_ptr().add(i));
                let y = S::load_masked(m, b.as_ptr().add(i));
                acc = S::fmadd(x, y, acc);
            }
            i += S::LANES;
        }
        unsafe { S::sum(acc) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        unsafe { masked_dot::<Avx2>(a, b) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        unsafe { masked_dot::<Avx512>(a, b) }
    }

    #[test]
    fn masked_dots_match_scalar_at_every_tail() {
        for len in 0..40 {
            let a: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 2.0).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 5) as f32 * 0.5).collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            if Level::Avx2.supported() {
                // SAFETY: AVX2 and FMA were detected.
                let got = unsafe { dot_avx2(&a, &b) };
                assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{len}");
            }
            if Level::Avx512.supported() {
                // SAFETY: AVX-512F was detected.
                let got = unsafe { dot_avx512(&a, &b) };
                assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{len}");
            }
        }
    }

    #[test]
    fn the_l2_size_is_a_plausible_cache_and_the_peak_counts_its_flops() {
        let l2 = l2_bytes();
        assert!((64 << 10..=1 << 30).contains(&l2), "{l2} bytes");
        for level in Level::all_supported() {
            let (flops, sum) = fma_peak(level, 10);
            let lanes = match level {
                Level::Avx512 => 16,
                Level::Avx2 => 8,
                Level::None => 1,
            };
            assert_eq!(flops, (2 * PEAK_CHAINS * lanes * 10) as f64, "{level:?}");
            assert!(sum.is_finite() && sum > 0.0, "{level:?}: {sum}");
        }
    }

    #[test]
    fn levels_are_ordered_and_the_chosen_one_is_supported() {
        assert!(Level::None < Level::Avx2 && Level::Avx2 < Level::Avx512);
        assert!(level().supported());
        assert!(Level::all_supported().contains(&Level::None));
    }
}
