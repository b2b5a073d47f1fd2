//! Sparse kernels of the CPU engine, for a data matrix held in CSR form (with its CSC copy).
//!
//! Every product with V becomes a sparse x skinny product `A X`, `A` (p x q) sparse and `X`
//! (q x r) row-major: row `i` of the result is `Σ_k a_ik X[k, :]`, one axpy of a length-r row
//! per stored entry. `V Hᵀ` is this with `A = V`, `X = Hᵀ` (packed); `Wᵀ V = (Vᵀ W)ᵀ` with
//! `A = Vᵀ` (the CSC copy) and `X = W`, so each output column is independent.
//!
//! The rows of `X` are gathered in the order of the column indices, which is random for
//! unstructured data: once `X` outgrows the L2 cache every entry waits on a cache miss (three
//! times slower at 20000 x 50000, r = 20). The products therefore run over [`Panels`]: `A`
//! split into column panels whose slice of `X` (`PANEL_BYTES`) stays in cache, with 16-bit
//! column indices local to the panel (6 bytes per entry to stream instead of 8). Each task
//! takes a block of `BLOCK_ROWS` rows through every panel, so its rows of the result stay in
//! L2 too. Each panel stores `rows + 1` row offsets, so a very wide and very sparse matrix
//! (many panels, few entries per row and panel) is not split ([`Panels::build`]): the
//! products then read the CSR matrix itself (an [`Operand`]). On CPUs with AVX-512F or AVX2 +
//! FMA the axpys run on vector registers (up to 64 components held in registers, up to four
//! stored entries in flight, the rows of `X` prefetched 16 entries ahead).
//!
//! - [`panels`]: the layouts ([`Panels`], [`Operand`]);
//! - [`products`]: the products and their shape checks;
//! - `gather`: the row kernels' operands (which rows are gathered, what weighs them);
//! - `rows`: the row kernels on zmm (AVX-512) or ymm (AVX2) registers;
//! - [`loss`]: the loss terms over the stored entries;
//! - [`op`]: the sparse matrix as an operator for the randomized SVD;
//! - [`pattern`]: products at the stored entries' pattern (masked NMF with the pattern as mask).

mod gather;
pub(crate) mod loss;
pub(crate) mod op;
pub(crate) mod panels;
pub(crate) mod pattern;
pub(crate) mod products;
#[cfg(target_arch = "x86_64")]
mod rows;
#[cfg(test)]
mod tests;

pub(crate) use self::loss::{densify_rows, frobenius_terms, gram_inner_f64, kl_term};
pub(crate) use self::op::SparseOp;
pub(crate) use self::panels::{Operand, Panels};
pub(crate) use self::pattern::pattern_spmm;
pub(crate) use self::products::{kl_spmm, kl_spmm_t, spmm, spmm_t};
