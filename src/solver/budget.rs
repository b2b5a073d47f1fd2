//! The memory a fit will take, estimated from its shape before anything is allocated, and
//! the check against the limit.
//!
//! With `f = 4·(m + n)·r` bytes for one pair of factors, the estimate of the peak on the host:
//!
//! | part | bytes |
//! |---|---|
//! | factors: the start, the engine's W, H and products `V Hᵀ`, `Wᵀ V`, the result | `5·f` |
//! | NNDSVD starts: the randomized SVD's sketches and bases (`k = min(r + 10, m, n)` columns) | `4·4·(m + n)·k` |
//! | dense V neither row- nor column-contiguous (the engine's copy) | `4·m·n` |
//! | sparse V: the engine's transposed copy and panels | `24·nnz + 8·(m + n + 2)` |
//! | data scaled into the safe range ([`super::scale`]) | `4·m·n`, or `16·nnz` sparse |
//! | sparse V renumbered ([`super::order`]): the permuted V and Vᵀ, the permutations | `16·nnz + 24·(m + n) + 16` |
//! | the engines' fixed work space (blocks, scratch; a dense V's panel copy for `Wᵀ V`, made only up to 32 MiB) | 96 MiB |
//! | dense KL and β-divergence fits: each thread's blocks of `W H` for the H update (two for β) | `threads·2·4 MiB` |
//!
//! `V` itself is the caller's and is not counted. A GPU fit holds the same on the host (the
//! device's own memory is checked by the GPU engine as it allocates).

use crate::engine::cpu::COLUMN_BLOCK_ENTRIES;
use crate::error::{NmfError, Result};
use crate::options::{Init, Loss, ValidParams};

/// How the data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// Dense; `copied` when the engine has to copy it (neither layout contiguous).
    Dense { copied: bool },
    /// CSR with `nnz` stored entries; `reordered` when the fit renumbers its rows and columns
    /// ([`super::order`]).
    Sparse { nnz: usize, reordered: bool },
}

/// The fixed work space of the engines.
const FIXED_BYTES: f64 = 96.0 * 1024.0 * 1024.0;

/// The estimated peak bytes of a fit of `m x n` data, and what they are made of.
pub(crate) fn fit_bytes(
    m: usize,
    n: usize,
    p: &ValidParams,
    storage: Storage,
    scaled: bool,
) -> (f64, String) {
    let (mf, nf, rf) = (m as f64, n as f64, p.rank as f64);
    // W, H and their products; the β-divergence rules keep two denominators more, and fixed
    // components their anchors.
    let copies =
        5.0 + if matches!(p.loss, Loss::ItakuraSaito | Loss::Beta(_)) {
            1.0
        } else {
            0.0
        } + if p.fixed_w.is_empty() && p.fixed_h.is_empty() {
            0.0
        } else {
            1.0
        };
    let factors = copies * 4.0 * (mf + nf) * rf;
    let mut parts = vec![format!("factors {}", mib(factors))];
    let mut total = factors + FIXED_BYTES;
    if matches!(p.init, Init::Nndsvd | Init::Nndsvda | Init::Nndsvdar) {
        let sketch = (rf + 10.0).min(mf.min(nf));
        let svd = 16.0 * (mf + nf) * sketch;
        parts.push(format!("NNDSVD start {}", mib(svd)));
        total += svd;
    }
    let data = match storage {
        Storage::Dense { copied } => {
            let copy = if copied { 4.0 * mf * nf } else { 0.0 };
            let scale = if scaled { 4.0 * mf * nf } else { 0.0 };
            copy + scale
        }
        Storage::Sparse { nnz, reordered } => {
            let nnz = nnz as f64;
            24.0 * nnz
                + 8.0 * (mf + nf + 2.0)
                + if scaled { 16.0 * nnz } else { 0.0 }
                + if reordered {
                    16.0 * nnz + 24.0 * (mf + nf) + 16.0
                } else {
                    0.0
                }
        }
    };
    if data > 0.0 {
        parts.push(format!("copies of V {}", mib(data)));
        total += data;
    }
    if p.loss != Loss::Frobenius && matches!(storage, Storage::Dense { .. }) {
        let blocks = rayon::current_num_threads() as f64 * 2.0 * 4.0 * COLUMN_BLOCK_ENTRIES as f64;
        parts.push(format!("blocks of W H {}", mib(blocks)));
        total += blocks;
    }
    (total, parts.join(", "))
}

/// Refuse a fit whose estimate exceeds `limit` bytes.
pub(crate) fn check(
    m: usize,
    n: usize,
    p: &ValidParams,
    storage: Storage,
    scaled: bool,
) -> Result<()> {
    let limit = p.iter.memory_limit();
    let (need, detail) = fit_bytes(m, n, p, storage, scaled);
    if need > limit as f64 {
        return Err(NmfError::FitTooLarge {
            need: need.min(u64::MAX as f64) as u64,
            limit,
            detail: format!("{m} x {n} data, rank {}: {detail}", p.rank),
        });
    }
    Ok(())
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / (1024.0 * 1024.0))
}
