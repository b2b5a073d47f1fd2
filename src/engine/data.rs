//! The data matrix V as an operator: what each engine's operations ask of V, whatever its
//! representation. Each engine holds V behind one data-operator interface (the CPU engine's
//! `cpu::data::DataOperator`, the GPU engine's `gpu::data::DataOperator`), implemented once
//! for dense panels and once for CSR (with its CSC copy); the engines' methods state what they
//! need as a [`Product`] (one output) or a [`Measure`] (one number), check its shapes here
//! ([`Product::check`], [`Measure::check`]) and call the operator, never looking at the
//! representation. An operation a representation does not offer is refused with the one
//! error below ([`unsupported`]).

use super::Side;
use crate::error::{NmfError, Result};
use crate::options::Loss;

/// A matrix whose shape the checks below can read.
pub(crate) trait Shaped {
    /// `(rows, cols)`.
    fn shape(&self) -> (usize, usize);
}

/// The factors of a product formed block by block from `Y = W H` (never whole), and which
/// factor's update it serves: the output is m x r for `Side::Left` (`Z Hᵀ`) and r x n for
/// `Side::Right` (`Wᵀ Z`).
pub(crate) struct Blocks<'m, M> {
    /// W (m x r).
    pub w: &'m M,
    /// H (r x n).
    pub h: &'m M,
    pub side: Side,
}

/// A product with V that fills one output.
pub(crate) enum Product<'m, M> {
    /// `V Hᵀ` (m x r) from H (r x n).
    VHt(&'m M),
    /// `Wᵀ V` (r x n) from W (m x r).
    WtV(&'m M),
    /// The KL numerators, with `Z = V ⊘ max(W H, ε)`.
    Kl(Blocks<'m, M>),
    /// The masked products, with `Z = M ⊙ W H` for a dense 0/1 mask M (m x n).
    Masked(&'m M, Blocks<'m, M>),
    /// The masked products with the pattern P of V's stored entries as the mask,
    /// `Z = P ⊙ W H`, in `O(nnz·r)`.
    Pattern(Blocks<'m, M>),
}

/// A number computed from V and the factors W (m x r), H (r x n), in f64.
pub(crate) enum Measure<'m, M> {
    /// The divergence `D(V ‖ W H)` (without penalty terms), with its guard `eps`.
    Divergence(Loss, f32),
    /// `½ ‖M ⊙ (V − W H)‖²_F` for a dense 0/1 mask M (m x n).
    Masked(&'m M),
    /// `½ ‖P ⊙ (V − W H)‖²_F` over V's stored entries.
    Pattern,
}

/// Copies of references, whatever `M` is (a derive would ask `M: Copy`).
macro_rules! copy_of_references {
    ($($t:ident),*) => {$(
        impl<M> Clone for $t<'_, M> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<M> Copy for $t<'_, M> {}
    )*};
}
copy_of_references!(Blocks, Product, Measure);

/// The operations on V that not every representation offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataOp {
    /// The β-divergence products and loss (β ∉ {1, 2}): dense V only, since `V ⊙ Y^(β−2)`
    /// and `Y^(β−1)` are not zero where V is.
    Beta,
    /// Products and losses under a dense m x n mask: dense V only on the GPU engine.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    DenseMask,
    /// Products and losses under the pattern of the stored entries: sparse V only.
    Pattern,
    /// Replacing V by a batch of samples (online fits): dense V only.
    Batch,
}

/// The error for `op` on a representation of V that does not offer it: the one place an
/// unsupported combination of operation and representation is reported.
pub(crate) fn unsupported(op: DataOp) -> NmfError {
    let (option, requires) = match op {
        DataOp::Beta => (
            "Loss::Beta and Loss::ItakuraSaito on sparse data",
            "dense data (fit, not fit_sparse)",
        ),
        DataOp::DenseMask => (
            "a dense mask with sparse V on the GPU engine",
            "a dense V (or the CPU engine)",
        ),
        DataOp::Pattern => (
            "a mask given by the stored entries of V",
            "a sparse V (CSR)",
        ),
        DataOp::Batch => ("batches of samples replacing V (online fits)", "a dense V"),
    };
    NmfError::UnsupportedOption { option, requires }
}

/// `Err` unless `a` (named `what`) has the shape `want`.
pub(crate) fn check_shape<M: Shaped>(
    what: &'static str,
    a: &M,
    want: (usize, usize),
) -> Result<()> {
    check_dims(what, a.shape(), want)
}

/// `Err` unless an operand (named `what`) of shape `got` has the shape `want`.
pub(crate) fn check_dims(
    what: &'static str,
    got: (usize, usize),
    want: (usize, usize),
) -> Result<()> {
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

/// `Ok(r)` when `w` (m x r) and `h` (r x n) are factors of V (m x n).
pub(crate) fn check_factors<M: Shaped>((m, n): (usize, usize), w: &M, h: &M) -> Result<usize> {
    let r = w.shape().1;
    check_shape("W (m x r, the rows of V)", w, (m, r))?;
    check_shape("H (r x n, the columns of V)", h, (r, n))?;
    Ok(r)
}

impl<M: Shaped> Blocks<'_, M> {
    /// The output's shape, after checking the factors against V (m x n).
    fn out_shape(&self, (m, n): (usize, usize)) -> Result<(usize, usize)> {
        let r = check_factors((m, n), self.w, self.h)?;
        Ok(match self.side {
            Side::Left => (m, r),
            Side::Right => (r, n),
        })
    }
}

impl<M: Shaped> Product<'_, M> {
    /// Check every operand and `out` against V (m x n).
    pub(crate) fn check(&self, (m, n): (usize, usize), out: &M) -> Result<()> {
        let want = match self {
            Product::VHt(h) => {
                let r = h.shape().0;
                check_shape("H (r x n) in V Hᵀ", *h, (r, n))?;
                (m, r)
            }
            Product::WtV(w) => {
                let r = w.shape().1;
                check_shape("W (m x r) in Wᵀ V", *w, (m, r))?;
                (r, n)
            }
            Product::Kl(f) | Product::Pattern(f) => f.out_shape((m, n))?,
            Product::Masked(mask, f) => {
                check_shape("the mask (m x n)", *mask, (m, n))?;
                f.out_shape((m, n))?
            }
        };
        check_shape("the output of a product with V", out, want)
    }
}

impl<M: Shaped> Measure<'_, M> {
    /// Check the factors (and the mask) against V (m x n).
    pub(crate) fn check(&self, (m, n): (usize, usize), w: &M, h: &M) -> Result<()> {
        check_factors((m, n), w, h)?;
        match self {
            Measure::Masked(mask) => check_shape("the mask (m x n)", *mask, (m, n)),
            _ => Ok(()),
        }
    }
}
