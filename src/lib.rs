//! # nmf-gpu: Nonnegative Matrix Factorization on the GPU and a fast CPU
//!
//! Given a nonnegative data matrix `V` (m x n), find nonnegative `W` (m x r) and `H` (r x n),
//! `r < min(m, n)`, minimising a divergence `D(V ‖ WH)` plus optional penalties:
//!
//! ```text
//!   min_{W ≥ 0, H ≥ 0}  D(V ‖ WH) + n·α_W·(ρ‖W‖₁ + ½(1−ρ)‖W‖²_F) + m·α_H·(ρ‖H‖₁ + ½(1−ρ)‖H‖²_F)
//!   D = ½‖V − WH‖²_F  (Loss::Frobenius)   or   Σ V log(V/WH) − V + WH  (Loss::KullbackLeibler)
//!   or a β-divergence (Loss::ItakuraSaito, Loss::Beta(β); multiplicative updates)
//! ```
//!
//! **Conventions.** Columns of `V` are samples (an image, a document), rows are features
//! (pixels, terms). `W`'s columns are the r basis vectors ("parts"); `H`'s columns are the
//! encodings of the samples. This is the transpose of scikit-learn's `X` (samples x features).
//!
//! ```
//! use nmf_gpu::ndarray::Array2;
//! use nmf_gpu::{Backend, Init, Loss, Nmf, Solver};
//!
//! // A small nonnegative matrix of rank 3.
//! let w0 = Array2::from_shape_fn((30, 3), |(i, j)| ((i * 7 + j * 3) % 5) as f32);
//! let h0 = Array2::from_shape_fn((3, 40), |(i, j)| ((i * 5 + j * 2) % 7) as f32);
//! let v = w0.dot(&h0);
//!
//! let fit = Nmf::params(3)
//!     .solver(Solver::Hals)
//!     .loss(Loss::Frobenius)
//!     .init(Init::Nndsvda)
//!     .max_iter(500)
//!     .tol(1e-6)
//!     .backend(Backend::Cpu)
//!     .fit(v.view())?;
//! assert_eq!(fit.w().dim(), (30, 3));
//! assert!(fit.relative_error(v.view())? < 1e-2);
//! let h_new = fit.transform(v.view())?; // encodings of (here: the same) samples
//! assert_eq!(h_new.dim(), (3, 40));
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```
//!
//! **The family.** The same engines (CPU and GPU) run the variants:
//!
//! | model | where |
//! |---|---|
//! | sparse data: V in CSR, products over the stored entries (CPU and GPU) | [`NmfParams::fit_sparse`], [`CsrMatrix`] |
//! | sparse NMF (L1/L2 penalties on either factor) | [`NmfParams::alpha_w`], [`NmfParams::alpha_h`], [`NmfParams::l1_ratio`] |
//! | orthogonal NMF (`HHᵀ = I` or `WᵀW = I`) | [`NmfParams::orthogonal`], [`Orthogonality`] |
//! | symmetric NMF `A ≈ HHᵀ` and tri-factor `A ≈ HSHᵀ` | [`symmetric`], with [`graph`] for reading graphs |
//! | masked NMF `‖M ⊙ (V − WH)‖²` (missing entries, recommendation) | [`masked`] |
//! | online (mini-batch) NMF: data streamed in batches, larger than memory | [`online`] |
//! | movies: crop, downsampling and baseline removal of frames as they stream | [`frames`] |
//! | clustering scores (purity, NMI, ARI) | [`cluster`] |
//! | choosing the rank: consensus, NMFk, cross-validation | [`select`] |
//! | topics (tokenising, tf-idf, top terms) | [`text`] |
//! | image datasets (faces), montages, PCA | [`images`] |

#![warn(missing_docs)]

pub use ndarray;
#[cfg(feature = "gpu")]
pub use wgpu;

pub mod cluster;
pub mod distributed;
mod engine;
mod error;
mod fit;
pub mod frames;
mod gpu_stats;
pub mod graph;
#[cfg(feature = "images")]
pub mod images;
mod init;
pub mod io;
#[doc(hidden)]
pub mod kernels;
pub(crate) mod linalg;
pub mod masked;
mod memory;
mod model;
pub mod online;
pub mod options;
mod params;
mod report;
pub mod select;
mod solver;
pub mod sparse;
pub mod symmetric;
#[cfg(feature = "text")]
pub mod text;
#[cfg(feature = "cli")]
mod vocabulary;

#[cfg(feature = "gpu")]
pub use engine::GpuContext;
pub use engine::{
    AdapterList, Backend, BackendChoice, DataSize, GpuRates, GpuStats, AUTO_GPU_MIN_DENSE_ENTRIES,
    AUTO_GPU_MIN_SPARSE_NNZ,
};
#[cfg(feature = "gpu")]
pub use engine::{TuneEffort, TuneRow};
pub use error::{Factor, NmfError, Result};
pub use masked::{MaskedFactorization, MaskedInit, MaskedNmf, MaskedParams, PenaltyScale};
pub use model::{relative_error, Factorization};
pub use online::{OnlineFactorization, OnlineNmf, OnlineParams};
pub use options::Fixed;
pub use options::{
    Checkpoint, CheckpointFn, Init, IterOptions, Loss, Orthogonality, Progress, ProgressFn, Resume,
    Solver, SparseOrder, ValidParams, DEFAULT_EPSILON,
};
pub use params::{Nmf, NmfParams};
pub use report::FitReport;
pub use sparse::CsrMatrix;
pub use symmetric::{SymFactorization, SymMethod, SymNmf, SymNmfParams};
