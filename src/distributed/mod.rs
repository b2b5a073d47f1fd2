//! Distributed NMF over MPI: one fit across many processes and machines, each
//! rank holding one block of V and driving its own engine (CPU or GPU), with the results of
//! the single-process fit.
//!
//! The algorithm is MPI-FAUN's (Kannan, Ballard & Park, PPoPP 2016 / TKDE 2018) on a pr x pc
//! process grid ([`Grid`], [`Layout`]): rank (i, j) holds `V_ij`, a piece of W's row block i and
//! a piece of H's column block j; each iteration all-gathers the factor blocks it needs,
//! multiplies them with `V_ij` on its engine, reduce-scatters the partial products and
//! all-reduces the r x r Gram matrices (see `solve` for the steps and the volume,
//! `iteration_bytes`). Solvers: MU (Frobenius and KL) and HALS; every start (random, the
//! NNDSVD family, custom) equals the single-process start for the same seed (see `start`), so
//! a distributed fit reproduces [`NmfParams::fit`](crate::NmfParams::fit) up to the order of float sums. Losses at
//! checks are all-reduced, so every rank stops at the same iteration.
//!
//! The grid, the block layout and the block reader are always built; the fit itself and the
//! collectives need the feature `mpi` (rsmpi over the system's MPI library).
//!
//! ```ignore
//! use nmf_gpu::distributed::{self, LocalBlock};
//! use nmf_gpu::{io::ReadOptions, Nmf, Solver};
//!
//! use nmf_gpu::distributed::mpi::traits::*;
//!
//! let universe = nmf_gpu::distributed::mpi::initialize().expect("MPI");
//! let world = universe.world();
//! let path = std::path::Path::new("V.npy");
//! let shape = distributed::npy_shape(path)?;
//! let layout = distributed::layout(&world, None, shape)?; // MPI-FAUN's grid for P and the shape
//! let block = distributed::agree(&world, distributed::read_npy_block(path, &layout, &ReadOptions::default()))?;
//! let fit = distributed::fit(&world, &Nmf::params(10).solver(Solver::Hals), layout, block)?;
//! if let Some((w, h)) = fit.gather(&world) {
//!     println!("W {:?}, H {:?}", w.dim(), h.dim()); // rank 0 only
//! }
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```
//!
//! **Failures.** Checks every rank makes alike (the grid, the options) return the same error
//! on every rank. An error of one rank before the iterations (an unreadable block, a negative
//! entry, an engine that cannot start) is shared with `agree`: that rank returns its error,
//! the others [`NmfError::PeerFailed`](crate::NmfError::PeerFailed). An error of one rank in
//! the middle of the collectives (a GPU failure) prints `error: rank K of P: ...` and aborts the
//! job (`abort`, MPI_Abort), so nothing hangs.

#[cfg(feature = "mpi")]
mod comm;
mod grid;
#[cfg(feature = "mpi")]
mod solve;
#[cfg(feature = "mpi")]
mod start;

use std::ops::Range;
use std::path::Path;

#[cfg(feature = "mpi")]
use mpi::datatype::PartitionMut;
#[cfg(feature = "mpi")]
use mpi::topology::Communicator;
#[cfg(feature = "mpi")]
use mpi::traits::*;
#[cfg(feature = "mpi")]
use ndarray::s;
use ndarray::Array2;

#[cfg(feature = "mpi")]
pub use mpi;

#[cfg(feature = "mpi")]
pub use self::comm::{abort, agree, fail_together, write_error_line, JobFailure};
pub use self::grid::{split, Grid, Layout};
#[cfg(feature = "mpi")]
pub use self::solve::{device_bytes, iteration_bytes};
use crate::error::Result;
use crate::io::ReadOptions;
#[cfg(feature = "mpi")]
use crate::params::NmfParams;
#[cfg(feature = "mpi")]
use crate::report::FitReport;
use crate::sparse::CsrMatrix;

/// This rank's block of V (`layout.rows x layout.cols`).
#[derive(Debug, Clone)]
pub enum LocalBlock {
    /// Dense, runs on the engine the backend selects.
    Dense(Array2<f32>),
    /// Sparse (CSR), runs on the CPU engine.
    Sparse(CsrMatrix),
}

/// Communication of one rank (bytes received, see the `comm` module's convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommStats {
    /// Statistics of V, the start (NNDSVD's sketches) and the initial loss.
    pub setup_bytes: u64,
    /// Per iteration, from the formula (`iteration_bytes`).
    pub iteration_bytes: u64,
    /// Per iteration, as counted from the buffers handed to MPI during the iterations.
    pub measured_iteration_bytes: u64,
    /// All loss checks together.
    pub check_bytes: u64,
    /// Accelerated HALS: the moves of the inner sweeps, all iterations together (one f64
    /// all-reduce per sweep, which every rank needs to stop after the same sweep as a single
    /// process would); 0 for the other solvers.
    pub inner_bytes: u64,
    /// Seconds spent inside collectives.
    pub seconds: f64,
}

/// Where one rank's time went.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    /// Reading its block (filled in by the caller that read it).
    pub read_seconds: f64,
    /// Statistics of V and the start.
    pub init_seconds: f64,
    /// The iterations (communication included).
    pub iterate_seconds: f64,
    /// Inside collectives (start and iterations).
    pub comm_seconds: f64,
}

#[cfg(feature = "mpi")]
/// One rank's share of a distributed fit.
#[derive(Debug, Clone)]
pub struct DistFit {
    /// Where the pieces lie.
    pub layout: Layout,
    /// This rank's rows of W (`layout.w_rows`, all r columns).
    pub w: Array2<f32>,
    /// This rank's columns of H (all r rows, `layout.h_cols`).
    pub h: Array2<f32>,
    /// Losses, iterations, how the run ended (the same on every rank).
    pub report: FitReport,
    /// The engine this rank ran on.
    pub engine: String,
    /// Bytes communicated.
    pub comm: CommStats,
    /// Time spent.
    pub timings: Timings,
    /// A GPU rank's device counters (`None` on the CPU engine).
    pub device: Option<DeviceStats>,
}

#[cfg(feature = "mpi")]
/// The host↔device traffic and device work of a GPU rank (see `solve`'s module docs for the
/// formula of [`device_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStats {
    /// The whole fit: V's upload, the start, the iterations, the loss checks.
    pub fit: crate::GpuStats,
    /// The first iteration alone (it allocates the matrices the later ones reuse).
    pub first_iteration: crate::GpuStats,
    /// The iterations after the first, summed.
    pub steady: crate::GpuStats,
    /// How many iterations `steady` sums.
    pub steady_iterations: u64,
    /// Bytes copied host → device per iteration, by the formula ([`device_bytes`]).
    pub upload_bytes_per_iteration: u64,
    /// Bytes copied device → host per iteration, by the formula.
    pub read_back_bytes_per_iteration: u64,
}

#[cfg(feature = "mpi")]
/// The layout of this rank for V of `shape`: on `grid`, or MPI-FAUN's choice for the job's
/// size and the shape ([`Grid::choose`]); a grid that does not fit is an
/// [`NmfError::InvalidGrid`](crate::NmfError::InvalidGrid) on every rank.
pub fn layout<C: Communicator>(
    world: &C,
    grid: Option<Grid>,
    shape: (usize, usize),
) -> Result<Layout> {
    let p = world.size() as usize;
    let grid = grid.unwrap_or_else(|| Grid::choose(p, shape.0, shape.1));
    grid.check(p, shape.0, shape.1)?;
    Ok(Layout::new(grid, shape, world.rank() as usize))
}

/// The shape of a 2-D `.npy` file (from its header).
pub fn npy_shape(path: &Path) -> Result<(usize, usize)> {
    crate::io::npy_shape(path)
}

/// Read this rank's block of a 2-D `.npy` file (only its bytes), at the ranges of its [`Layout`].
pub fn read_npy_block(path: &Path, layout: &Layout, options: &ReadOptions) -> Result<LocalBlock> {
    crate::io::read_npy_block(path, layout.rows.clone(), layout.cols.clone(), options)
        .map(LocalBlock::Dense)
}

/// The shape of a `.npy` or MatrixMarket (`.mtx`) file, from its header, of a TIFF stack
/// (a `.tif` file or a directory of them, feature `images`) from its page directories, or of
/// an HDF5 dataset (feature `hdf5`) or Zarr array (feature `zarr`) from its metadata (the
/// dataset [`ReadOptions::dataset`] names).
pub fn input_shape(path: &Path, options: &ReadOptions) -> Result<(usize, usize)> {
    #[cfg(feature = "images")]
    if is_format(path, crate::io::FileFormat::Tiff) {
        return crate::io::tiff::TiffStack::open(path, options).map(|s| s.shape());
    }
    #[cfg(feature = "hdf5")]
    if is_format(path, crate::io::FileFormat::Hdf5) {
        return crate::io::hdf5::Hdf5Dataset::open(path, options).map(|d| d.shape());
    }
    #[cfg(feature = "zarr")]
    if is_format(path, crate::io::FileFormat::Zarr) {
        return crate::io::zarr::ZarrArray::open(path, options).map(|a| a.shape());
    }
    match extension(path).as_deref() {
        Some("npy") => crate::io::npy_shape(path),
        Some("mtx") => crate::io::mtx_shape(path, options),
        _ => Err(unsupported(path)),
    }
}

/// Read this rank's block of a `.npy` file (only its bytes) or of a MatrixMarket coordinate
/// file (every line parsed, only the block's entries kept), held sparse (CSR, CPU engine) when
/// `sparse`, else dense.
pub fn read_block(
    path: &Path,
    layout: &Layout,
    sparse: bool,
    options: &ReadOptions,
) -> Result<LocalBlock> {
    let (rows, cols) = (layout.rows.clone(), layout.cols.clone());
    // A TIFF stack, an HDF5 dataset, a Zarr array: the rank reads only its block (the frames
    // of its columns; the hyperslab or chunks of its block).
    let dense = read_array_block(path, options, &rows, &cols);
    if let Some(dense) = dense {
        let dense = dense?;
        return if sparse {
            CsrMatrix::from_dense(dense.view()).map(LocalBlock::Sparse)
        } else {
            Ok(LocalBlock::Dense(dense))
        };
    }
    match (extension(path).as_deref(), sparse) {
        (Some("npy"), false) => read_npy_block(path, layout, options),
        (Some("npy"), true) => {
            let dense = crate::io::read_npy_block(path, rows, cols, options)?;
            CsrMatrix::from_dense(dense.view()).map(LocalBlock::Sparse)
        }
        (Some("mtx"), true) => {
            crate::io::read_mtx_block(path, rows, cols, options).map(LocalBlock::Sparse)
        }
        (Some("mtx"), false) => crate::io::read_mtx_block(path, rows, cols, options)
            .map(|v| LocalBlock::Dense(v.to_dense())),
        _ => Err(unsupported(path)),
    }
}

/// The block `rows x cols` of a TIFF stack, an HDF5 dataset or a Zarr array (those of the
/// features built), or `None` for another input.
#[allow(unused_variables)]
fn read_array_block(
    path: &Path,
    options: &ReadOptions,
    rows: &Range<usize>,
    cols: &Range<usize>,
) -> Option<Result<Array2<f32>>> {
    #[cfg(feature = "images")]
    if is_format(path, crate::io::FileFormat::Tiff) {
        return Some(
            crate::io::tiff::TiffStack::open(path, options)
                .and_then(|s| s.read_block(rows.clone(), cols.clone())),
        );
    }
    #[cfg(feature = "hdf5")]
    if is_format(path, crate::io::FileFormat::Hdf5) {
        return Some(
            crate::io::hdf5::Hdf5Dataset::open(path, options)
                .and_then(|d| d.read_block(rows.clone(), cols.clone())),
        );
    }
    #[cfg(feature = "zarr")]
    if is_format(path, crate::io::FileFormat::Zarr) {
        return Some(
            crate::io::zarr::ZarrArray::open(path, options)
                .and_then(|a| a.read_block(rows.clone(), cols.clone())),
        );
    }
    None
}

/// The images of a directory as V (pixels x images, as
/// [`images::load_dir_with`](crate::images::load_dir_with) reads it), for a distributed fit:
/// the files in order and V's shape, from the first image's header (or the size policy).
#[cfg(feature = "images")]
#[derive(Debug, Clone)]
pub struct ImageDir {
    dir: std::path::PathBuf,
    names: Vec<std::path::PathBuf>,
    size: crate::images::SizePolicy,
    shape: (usize, usize),
}

#[cfg(feature = "images")]
impl ImageDir {
    /// List the images of `dir` (every rank lists the same files in the same order).
    pub fn open(
        dir: &Path,
        size: crate::images::SizePolicy,
        options: &ReadOptions,
    ) -> Result<ImageDir> {
        let (names, shape) = crate::images::plan_dir(dir, size, options)?;
        Ok(ImageDir {
            dir: dir.to_path_buf(),
            names,
            size,
            shape,
        })
    }

    /// V's shape, `(pixels, images)`.
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }

    /// This rank's block: it decodes only its share of the files (the images of its column
    /// block) and keeps its rows of pixels.
    pub fn read_block(&self, layout: &Layout, options: &ReadOptions) -> Result<LocalBlock> {
        crate::images::load_dir_block(
            &self.dir,
            &self.names,
            self.size,
            options,
            layout.rows.clone(),
            layout.cols.clone(),
        )
        .map(LocalBlock::Dense)
    }
}

/// Whether `path` is of `format` (a TIFF stack, an HDF5 file, a Zarr store).
#[cfg(any(feature = "images", feature = "hdf5", feature = "zarr"))]
fn is_format(path: &Path, format: crate::io::FileFormat) -> bool {
    crate::io::FileFormat::from_path(path).is_ok_and(|f| f == format)
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn unsupported(path: &Path) -> crate::NmfError {
    crate::NmfError::UnsupportedInput {
        path: path.to_path_buf(),
        reason: "a distributed fit reads .npy files, TIFF stacks, HDF5 datasets and Zarr arrays (only each rank's block) and MatrixMarket coordinate .mtx files; convert the matrix with numpy.save or scipy.io.mmwrite".into(),
    }
}

#[cfg(feature = "mpi")]
/// Fit `V ≈ W H` with V spread over the ranks of `world` as `layout` says, each rank giving
/// its `block` (collective: every rank calls it with the same `params` and `layout` shape and
/// grid). Solvers: [`Solver::MultiplicativeUpdate`](crate::Solver) (Frobenius, KL) and
/// [`Solver::Hals`](crate::Solver); the backend in `params` chooses each rank's engine for
/// dense blocks. Progress callbacks run on every rank (with the same, all-reduced losses); a
/// stop flag is not used (ranks would see it at different iterations).
pub fn fit<C: Communicator>(
    world: &C,
    params: &NmfParams,
    layout: Layout,
    block: LocalBlock,
) -> Result<DistFit> {
    solve::fit(world, params, layout, block)
}

#[cfg(feature = "mpi")]
impl DistFit {
    /// Gather W (m x r) and H (r x n) on rank 0 (collective): `Some` there, `None` elsewhere.
    pub fn gather<C: Communicator>(&self, world: &C) -> Option<(Array2<f32>, Array2<f32>)> {
        gather_factors(world, &self.layout, &self.w, &self.h)
    }

    /// Every rank's [`DeviceStats`] on rank 0, by rank (`None` for a CPU rank); `None` on the
    /// other ranks (collective).
    pub fn gather_device<C: Communicator>(&self, world: &C) -> Option<Vec<Option<DeviceStats>>> {
        let d = self.device.unwrap_or_default();
        let mut mine = vec![u64::from(self.device.is_some())];
        for stats in [d.fit, d.first_iteration, d.steady] {
            mine.extend(stats.to_array());
        }
        mine.extend([
            d.steady_iterations,
            d.upload_bytes_per_iteration,
            d.read_back_bytes_per_iteration,
        ]);
        let root = world.process_at_rank(0);
        if world.rank() != 0 {
            root.gather_into(&mine[..]);
            return None;
        }
        let mut all = vec![0u64; mine.len() * world.size() as usize];
        root.gather_into_root(&mine[..], &mut all[..]);
        let stats = |v: &[u64]| {
            crate::GpuStats::from_array(std::array::from_fn(|k| v.get(k).copied().unwrap_or(0)))
        };
        Some(
            all.chunks_exact(mine.len())
                .map(|v| {
                    (v[0] == 1).then(|| DeviceStats {
                        fit: stats(&v[1..]),
                        first_iteration: stats(&v[9..]),
                        steady: stats(&v[17..]),
                        steady_iterations: v[25],
                        upload_bytes_per_iteration: v[26],
                        read_back_bytes_per_iteration: v[27],
                    })
                })
                .collect(),
        )
    }

    /// Every rank's timings and bytes on rank 0 (collective): `Some` there, in rank order.
    pub fn gather_stats<C: Communicator>(&self, world: &C) -> Option<Vec<(Timings, CommStats)>> {
        let t = &self.timings;
        let c = &self.comm;
        let mine = [
            t.read_seconds,
            t.init_seconds,
            t.iterate_seconds,
            t.comm_seconds,
            c.setup_bytes as f64,
            c.iteration_bytes as f64,
            c.measured_iteration_bytes as f64,
            c.check_bytes as f64,
            c.seconds,
            c.inner_bytes as f64,
        ];
        let root = world.process_at_rank(0);
        if world.rank() != 0 {
            root.gather_into(&mine[..]);
            return None;
        }
        let mut all = vec![0f64; mine.len() * world.size() as usize];
        root.gather_into_root(&mine[..], &mut all[..]);
        Some(
            all.chunks_exact(mine.len())
                .map(|v| {
                    (
                        Timings {
                            read_seconds: v[0],
                            init_seconds: v[1],
                            iterate_seconds: v[2],
                            comm_seconds: v[3],
                        },
                        CommStats {
                            setup_bytes: v[4] as u64,
                            iteration_bytes: v[5] as u64,
                            measured_iteration_bytes: v[6] as u64,
                            check_bytes: v[7] as u64,
                            seconds: v[8],
                            inner_bytes: v[9] as u64,
                        },
                    )
                })
                .collect(),
        )
    }
}

/// Gather the factor pieces of every rank into W (m x r) and H (r x n) on rank 0
/// (collective): `Some` there, `None` elsewhere.
#[cfg(feature = "mpi")]
pub(crate) fn gather_factors<C: Communicator>(
    world: &C,
    l: &Layout,
    w_piece: &Array2<f32>,
    h_piece: &Array2<f32>,
) -> Option<(Array2<f32>, Array2<f32>)> {
    let (m, n) = l.shape;
    let r = w_piece.ncols();
    let root = world.process_at_rank(0);
    let w_local = w_piece.as_standard_layout().into_owned();
    let ht_local = h_piece.t().as_standard_layout().into_owned();

    let w_send = w_local.as_slice().unwrap_or(&[]);
    let ht_send = ht_local.as_slice().unwrap_or(&[]);
    if world.rank() != 0 {
        root.gather_varcount_into(w_send);
        root.gather_varcount_into(ht_send);
        return None;
    }
    let layouts: Vec<Layout> = (0..world.size() as usize)
        .map(|k| Layout::new(l.grid, l.shape, k))
        .collect();
    let counts = |f: &dyn Fn(&Layout) -> usize| -> Vec<i32> {
        layouts.iter().map(|x| (f(x) * r) as i32).collect()
    };
    let displs = |c: &[i32]| -> Vec<i32> {
        c.iter()
            .scan(0, |a, &x| {
                let d = *a;
                *a += x;
                Some(d)
            })
            .collect()
    };
    let mut w = vec![0f32; m * r];
    let wc = counts(&|x| x.w_rows.len());
    let wd = displs(&wc);
    root.gather_varcount_into_root(w_send, &mut PartitionMut::new(&mut w[..], wc, wd));
    let mut ht = vec![0f32; n * r];
    let hc = counts(&|x| x.h_cols.len());
    let hd = displs(&hc);
    root.gather_varcount_into_root(ht_send, &mut PartitionMut::new(&mut ht[..], hc, hd.clone()));
    let w = Array2::from_shape_vec((m, r), w).ok()?;
    let mut h = Array2::<f32>::zeros((r, n));
    for (x, &d) in layouts.iter().zip(&hd) {
        let len = x.h_cols.len();
        let part = ndarray::ArrayView2::from_shape((len, r), &ht[d as usize..d as usize + len * r])
            .ok()?;
        h.slice_mut(s![.., x.h_cols.clone()]).assign(&part.t());
    }
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_blocks_are_read_by_offsets_in_c_and_fortran_order() {
        let dir = tempfile::tempdir().unwrap();
        let v = Array2::from_shape_fn((7, 5), |(i, j)| (i * 10 + j) as f32);
        let c = dir.path().join("c.npy");
        let f = dir.path().join("f.npy");
        ndarray_npy::write_npy(&c, &v).unwrap();
        ndarray_npy::write_npy(&f, &v.t().as_standard_layout().t()).unwrap();
        assert_eq!(npy_shape(&c).unwrap(), (7, 5));
        assert_eq!(npy_shape(&f).unwrap(), (7, 5));
        let grid = Grid { rows: 3, cols: 2 };
        for k in 0..grid.size() {
            let l = Layout::new(grid, (7, 5), k);
            let want = v.slice(ndarray::s![l.rows.clone(), l.cols.clone()]);
            for path in [&c, &f] {
                match read_npy_block(path, &l, &ReadOptions::default()).unwrap() {
                    LocalBlock::Dense(b) => assert_eq!(b, want, "{} rank {k}", path.display()),
                    LocalBlock::Sparse(_) => panic!("a .npy block is dense"),
                }
            }
        }
        let outside = Layout {
            rows: 5..9,
            ..Layout::new(grid, (7, 5), 0)
        };
        assert!(read_npy_block(&c, &outside, &ReadOptions::default()).is_err());
    }

    #[test]
    fn mtx_blocks_keep_their_entries_and_mirror_symmetric_files() {
        let dir = tempfile::tempdir().unwrap();
        let general = dir.path().join("g.mtx");
        std::fs::write(
            &general,
            "%%MatrixMarket matrix coordinate real general\n4 3 4\n1 1 1.5\n4 3 2\n2 2 3\n4 3 1\n",
        )
        .unwrap();
        let opts = ReadOptions::default();
        assert_eq!(input_shape(&general, &opts).unwrap(), (4, 3));
        let grid = Grid { rows: 2, cols: 1 };
        let mut v = Array2::<f32>::zeros((4, 3));
        for k in 0..2 {
            let l = Layout::new(grid, (4, 3), k);
            let LocalBlock::Dense(b) = read_block(&general, &l, false, &opts).unwrap() else {
                panic!("dense asked")
            };
            v.slice_mut(ndarray::s![l.rows.clone(), l.cols.clone()])
                .assign(&b);
        }
        let want = ndarray::array![[1.5f32, 0., 0.], [0., 3., 0.], [0., 0., 0.], [0., 0., 3.]];
        assert_eq!(v, want);
        let sym = dir.path().join("s.mtx");
        std::fs::write(
            &sym,
            "%%MatrixMarket matrix coordinate real symmetric\n3 3 2\n2 1 4\n3 3 1\n",
        )
        .unwrap();
        let l = Layout::new(Grid { rows: 1, cols: 3 }, (3, 3), 0);
        let LocalBlock::Sparse(b) = read_block(&sym, &l, true, &opts).unwrap() else {
            panic!("sparse asked")
        };
        assert_eq!(b.to_dense(), ndarray::array![[0f32], [4.], [0.]]);
        let bad = dir.path().join("v.csv");
        assert!(read_block(&bad, &l, false, &opts).is_err());
    }

    #[cfg(feature = "images")]
    #[test]
    fn image_blocks_are_the_blocks_of_the_whole_set() {
        let dir = tempfile::tempdir().unwrap();
        for k in 0..5u8 {
            let mut pgm = b"P5\n3 2\n255\n".to_vec();
            pgm.extend((0..6u8).map(|p| k * 40 + p));
            std::fs::write(dir.path().join(format!("{k}.pgm")), pgm).unwrap();
        }
        let opts = ReadOptions::default();
        let policy = crate::images::SizePolicy::Exact;
        let whole = crate::images::load_dir_with(dir.path(), policy, &opts)
            .unwrap()
            .into_matrix();
        let set = ImageDir::open(dir.path(), policy, &opts).unwrap();
        assert_eq!(set.shape(), (6, 5));
        let grid = Grid { rows: 2, cols: 2 };
        for k in 0..4 {
            let l = Layout::new(grid, (6, 5), k);
            let LocalBlock::Dense(b) = set.read_block(&l, &opts).unwrap() else {
                panic!("image blocks are dense")
            };
            assert_eq!(b, whole.slice(ndarray::s![l.rows.clone(), l.cols.clone()]));
        }
        // An image of another size in a later share is refused.
        std::fs::write(dir.path().join("9.pgm"), b"P5\n2 2\n255\n\x01\x02\x03\x04").unwrap();
        let set = ImageDir::open(dir.path(), policy, &opts).unwrap();
        let l = Layout::new(Grid { rows: 1, cols: 2 }, set.shape(), 1);
        assert!(matches!(
            set.read_block(&l, &opts),
            Err(crate::NmfError::MixedImageSizes { .. })
        ));
    }
}
