//! Checks of the distributed fit, run under `mpirun` by `scripts/test-mpi` (feature `mpi`).
//!
//! ```text
//! mpirun -np P mpi_check parity GRID      W, H of every solver equal the single-process fit
//!                                         (same start, 50 iterations, relative difference
//!                                         < 1e-5), with dense and with sparse blocks, and the
//!                                         bytes per iteration match the formula
//! mpirun -np P mpi_check device GRID      one GPU engine per rank (any adapter, shared): W, H
//!                                         equal the single-process fit, and every iteration
//!                                         after the first copies the formula's bytes between
//!                                         host and device, allocating nothing
//! mpirun -np P mpi_check fail RANK        a negative entry in RANK's block: that rank reports
//!                                         it, the others see PeerFailed; exits 1
//! mpirun -np P mpi_check abort RANK       RANK aborts mid-collective: the job ends, non-zero
//! mpirun -np P mpi_check badgrid GRID [M N]  the grid (or `auto`, the chosen one) is refused for
//!                                         an M x N matrix on every rank before any work
//! mpi_check write-npy FILE [NEG_ROW NEG_COL]   the test matrix (optionally with one negative entry)
//! mpi_check control GRID                 resumption, checkpoints and the stop flag against single-process fits
//! mpi_check compare A.npy B.npy TOL       relative Frobenius difference of two matrices < TOL
//! mpi_check write-images DIR NPY         12 PGM images, and the V load_dir reads from them
//! mpi_check write-mtx FILE               the test matrix as a MatrixMarket coordinate file
//! mpi_check write-zarr DIR               the test matrix as a Zarr array (feature zarr): its
//!                                         17 samples on the first axis, Blosc-compressed chunks
//! mpi_check write-h5 FILE                the same as the dataset /v of an HDF5 file (feature hdf5)
//! mpi_check write-random FILE M N R       a benchmark matrix of rank R plus 1% noise
//! ```
//!
//! V is 23 x 17 (uneven blocks on every grid tried) of rank 3 plus noise, deterministic.

use std::process::ExitCode;

use nmf_gpu::distributed::mpi::traits::*;
use nmf_gpu::distributed::{self, device_bytes, iteration_bytes, Grid, Layout, LocalBlock};
use nmf_gpu::io::{read_matrix, write_npy_atomic, ReadOptions};
use nmf_gpu::ndarray::{s, Array2, ArrayView2};
use nmf_gpu::{Backend, CsrMatrix, Init, Loss, Nmf, NmfError, NmfParams, Orthogonality, Solver};

const M: usize = 23;
const N: usize = 17;
const R: usize = 3;
const ITERS: usize = 50;
const TOL: f64 = 1e-5;

/// A deterministic nonnegative test matrix: rank 3 plus a little structured noise.
fn test_matrix() -> Array2<f32> {
    let w = Array2::from_shape_fn((M, R), |(i, t)| 0.2 + ((i * 7 + t * 5) % 11) as f32 / 11.0);
    let h = Array2::from_shape_fn((R, N), |(t, j)| 0.1 + ((j * 3 + t * 13) % 7) as f32 / 7.0);
    let noise = Array2::from_shape_fn((M, N), |(i, j)| ((i * 31 + j * 17) % 13) as f32 / 130.0);
    w.dot(&h) + noise
}

fn rel_diff(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

fn cases() -> Vec<(&'static str, NmfParams)> {
    let base = |solver, loss, init| {
        Nmf::params(R)
            .solver(solver)
            .loss(loss)
            .init(init)
            .max_iter(ITERS)
            .tol(0.0)
            .seed(7)
            .backend(Backend::Cpu)
    };
    vec![
        (
            "mu frobenius random",
            base(Solver::MultiplicativeUpdate, Loss::Frobenius, Init::Random),
        ),
        (
            "mu frobenius nndsvda",
            base(Solver::MultiplicativeUpdate, Loss::Frobenius, Init::Nndsvda),
        ),
        (
            "mu kl random",
            base(
                Solver::MultiplicativeUpdate,
                Loss::KullbackLeibler,
                Init::Random,
            ),
        ),
        (
            "hals nndsvd",
            base(Solver::Hals, Loss::Frobenius, Init::Nndsvd),
        ),
        (
            "hals random l1",
            base(Solver::Hals, Loss::Frobenius, Init::Random)
                .alpha_w(0.01)
                .l1_ratio(0.5),
        ),
        (
            "mu itakura-saito nndsvda",
            base(
                Solver::MultiplicativeUpdate,
                Loss::ItakuraSaito,
                Init::Nndsvda,
            ),
        ),
        (
            "mu beta 1.5 random",
            base(Solver::MultiplicativeUpdate, Loss::Beta(1.5), Init::Random),
        ),
        (
            "mu beta 0.5 nndsvda l1",
            base(Solver::MultiplicativeUpdate, Loss::Beta(0.5), Init::Nndsvda)
                .alpha_w(0.01)
                .l1_ratio(1.0),
        ),
        (
            "mu orthogonal W",
            base(Solver::MultiplicativeUpdate, Loss::Frobenius, Init::Nndsvda)
                .orthogonal(Orthogonality::W),
        ),
        (
            "mu orthogonal H",
            base(Solver::MultiplicativeUpdate, Loss::Frobenius, Init::Random)
                .orthogonal(Orthogonality::H),
        ),
        (
            "ahals nndsvda",
            base(Solver::AcceleratedHals, Loss::Frobenius, Init::Nndsvda),
        ),
        (
            "ahals random l2",
            base(Solver::AcceleratedHals, Loss::Frobenius, Init::Random).alpha_h(0.05),
        ),
    ]
}

/// A checkpoint as received: the iteration, W and H.
type Saved = (usize, Array2<f32>, Array2<f32>);

/// Resumption, checkpoints and the stop flag of a distributed fit, against single-process fits
/// of the same data: a fit resumed after 20 iterations for 30 more equals 50 straight; the
/// checkpoint after 25 iterations holds the single-process factors after 25; a stop flag raised
/// on one rank only stops every rank at the same check, with the report marked interrupted.
fn control<C: Communicator>(world: &C, grid: Grid) -> Result<bool, NmfError> {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    let v = test_matrix();
    let layout = distributed::layout(world, Some(grid), (M, N))?;
    let me = world.rank();
    let mut ok = true;
    let report = |what: &str, dw: f64, dh: f64| {
        let pass = dw < TOL && dh < TOL;
        if me == 0 {
            println!(
                "{} {what:40} grid {grid}: rel diff W {dw:.2e}, H {dh:.2e}",
                if pass { "ok  " } else { "FAIL" }
            );
        }
        pass
    };
    for solver in [Solver::MultiplicativeUpdate, Solver::AcceleratedHals] {
        let base = || {
            Nmf::params(R)
                .solver(solver)
                .init(Init::Nndsvda)
                .tol(0.0)
                .seed(5)
                .backend(Backend::Cpu)
        };
        let straight = base().max_iter(50).fit(v.view())?;
        let first = base().max_iter(20).fit(v.view())?;
        let resumed = base()
            .max_iter(50)
            .init(Init::Custom {
                w: first.w().to_owned(),
                h: first.h().to_owned(),
            })
            .resume(nmf_gpu::Resume {
                iterations_done: 20,
                initial_loss: first.report().initial_loss,
            });
        let fit = distributed::fit(world, &resumed, layout.clone(), block_of(&v, &layout))?;
        if fit.report.n_iter != 50 {
            eprintln!("FAIL resumed fit: {} iterations", fit.report.n_iter);
            ok = false;
        }
        if let Some((w, h)) = fit.gather(world) {
            ok &= report(
                &format!("{} resumed after 20 of 50", solver.name()),
                rel_diff(w.view(), straight.w()),
                rel_diff(h.view(), straight.h()),
            );
        }
        // The checkpoint after 25 iterations (rank 0 receives the gathered factors).
        let at25 = base().max_iter(25).fit(v.view())?;
        let saved: Arc<Mutex<Vec<Saved>>> = Arc::default();
        let sink = Arc::clone(&saved);
        let with_checkpoints = base().max_iter(50).checkpoint(25, move |c| {
            if let Ok(mut s) = sink.lock() {
                s.push((c.iteration, c.w.to_owned(), c.h.to_owned()));
            }
            Ok(())
        });
        distributed::fit(
            world,
            &with_checkpoints,
            layout.clone(),
            block_of(&v, &layout),
        )?;
        let saved = saved.lock().map(|s| s.clone()).unwrap_or_default();
        if me == 0 {
            let iterations: Vec<usize> = saved.iter().map(|c| c.0).collect();
            if iterations != [25, 50] {
                eprintln!("FAIL checkpoints at {iterations:?}, not [25, 50]");
                ok = false;
            }
            if let Some((_, w, h)) = saved.first() {
                ok &= report(
                    &format!("{} checkpoint after 25", solver.name()),
                    rel_diff(w.view(), at25.w()),
                    rel_diff(h.view(), at25.h()),
                );
            }
        } else if !saved.is_empty() {
            eprintln!("FAIL rank {me} received a checkpoint");
            ok = false;
        }
    }
    // Fixed components: a column of W and a row of H held (MU, HALS, β), or the whole of W.
    let start = Nmf::params(R)
        .init(Init::Nndsvda)
        .max_iter(5)
        .backend(Backend::Cpu)
        .fit(v.view())?;
    let custom = || Init::Custom {
        w: start.w().to_owned(),
        h: start.h().to_owned(),
    };
    let cases: [(&str, NmfParams); 4] = [
        (
            "mu, W column 0 and H row 2 fixed",
            Nmf::params(R).fix_w(vec![0]).fix_h(vec![2]),
        ),
        (
            "hals l2, W column 1 and H row 0 fixed",
            Nmf::params(R)
                .solver(Solver::Hals)
                .alpha_w(0.1)
                .l1_ratio(0.0)
                .fix_w(vec![1])
                .fix_h(vec![0]),
        ),
        (
            "mu beta 1.5, W column 2 fixed",
            Nmf::params(R).loss(Loss::Beta(1.5)).fix_w(vec![2]),
        ),
        (
            "mu kl, all of W fixed",
            Nmf::params(R)
                .loss(Loss::KullbackLeibler)
                .fix_w(nmf_gpu::Fixed::All),
        ),
    ];
    for (what, params) in cases {
        let params = params
            .init(custom())
            .max_iter(40)
            .tol(0.0)
            .backend(Backend::Cpu);
        let single = params.fit(v.view())?;
        let fit = distributed::fit(world, &params, layout.clone(), block_of(&v, &layout))?;
        if let Some((w, h)) = fit.gather(world) {
            ok &= report(
                what,
                rel_diff(w.view(), single.w()),
                rel_diff(h.view(), single.h()),
            );
        }
    }
    // The stop flag, raised before the start on the last rank only.
    let flag = Arc::new(AtomicBool::new(me + 1 == world.size()));
    let params = Nmf::params(R)
        .max_iter(200)
        .tol(0.0)
        .check_every(10)
        .backend(Backend::Cpu)
        .stop_flag(flag);
    let fit = distributed::fit(world, &params, layout.clone(), block_of(&v, &layout))?;
    if !fit.report.interrupted || fit.report.n_iter != 10 {
        eprintln!(
            "FAIL stop flag on one rank: rank {me} ran {} iterations, interrupted {}",
            fit.report.n_iter, fit.report.interrupted
        );
        ok = false;
    } else if me == 0 {
        println!("ok   a stop flag on one rank stops every rank after iteration 10");
    }
    Ok(ok)
}

fn block_of(v: &Array2<f32>, l: &Layout) -> LocalBlock {
    LocalBlock::Dense(v.slice(s![l.rows.clone(), l.cols.clone()]).to_owned())
}

fn parity<C: Communicator>(world: &C, grid: Grid) -> Result<bool, NmfError> {
    let v = test_matrix();
    let layout = distributed::layout(world, Some(grid), (M, N))?;
    let root = world.rank() == 0;
    let mut ok = true;
    for (name, params) in cases() {
        let single = params.fit(v.view())?;
        let fit = distributed::fit(world, &params, layout.clone(), block_of(&v, &layout))?;
        let loss = params.check(M, N)?.loss();
        let want = iteration_bytes(&layout, R, loss);
        if fit.comm.measured_iteration_bytes != want || fit.comm.iteration_bytes != want {
            eprintln!(
                "FAIL {name} grid {grid} rank {}: {} bytes per iteration counted, {want} by the formula",
                layout.rank, fit.comm.measured_iteration_bytes
            );
            ok = false;
        }
        // The job's total against the closed form 2r((pc−1)m + (pr−1)n)·4 + 4(P−1)T·b.
        let mut total = 0u64;
        world.all_reduce_into(
            &fit.comm.measured_iteration_bytes,
            &mut total,
            distributed::mpi::collective::SystemOperation::sum(),
        );
        let (pr, pc, p) = (grid.rows, grid.cols, grid.size());
        let (passes, t, b) = match loss {
            Loss::Frobenius => (2, R * R, 4),
            Loss::KullbackLeibler => (2, R, 8),
            _ => (3, 0, 0),
        };
        let closed = (passes * R * ((pc - 1) * M + (pr - 1) * N) * 4 + 4 * (p - 1) * t * b) as u64;
        if total != closed {
            eprintln!(
                "FAIL {name} grid {grid}: {total} bytes per iteration in all, closed form {closed}"
            );
            ok = false;
        }
        if fit.report.n_iter != ITERS {
            eprintln!("FAIL {name} grid {grid}: {} iterations", fit.report.n_iter);
            ok = false;
        }
        // Sparse blocks (CSR, CPU engine) give the same factors (the β rules other than KL
        // need dense data, distributed or not).
        let beta_rules = !matches!(loss, Loss::Frobenius | Loss::KullbackLeibler);
        if !beta_rules {
            let sparse_block = match block_of(&v, &layout) {
                LocalBlock::Dense(b) => LocalBlock::Sparse(CsrMatrix::from_dense(b.view())?),
                other => other,
            };
            let sparse = distributed::fit(world, &params, layout.clone(), sparse_block)?;
            if let Some((dw, dh, pass)) = against(world, &sparse, &single) {
                println!(
                    "{} {name:22} grid {grid}, sparse blocks: rel diff W {dw:.2e}, H {dh:.2e}",
                    if pass { "ok  " } else { "FAIL" }
                );
                ok &= pass;
            }
        }
        if let Some((dw, dh, pass)) = against(world, &fit, &single) {
            let dl = (fit.report.final_loss() - single.report().final_loss()).abs()
                / single.report().final_loss().max(1e-30);
            println!(
                "{} {name:22} grid {grid} on {p} ranks: rel diff W {dw:.2e}, H {dh:.2e}, loss {dl:.2e}; {total} bytes/iteration",
                if pass { "ok  " } else { "FAIL" }
            );
            ok &= pass;
        }
    }
    let all = every_rank(world, ok);
    if root && all {
        println!("parity: all cases passed on grid {grid}");
    }
    Ok(all)
}

/// One GPU engine per rank: the factors of the single-process fit, and the counters of the
/// iterations after the first against [`device_bytes`] (no buffer allocated, no bind group
/// built, one read-back per partial product).
fn device<C: Communicator>(world: &C, grid: Grid) -> Result<bool, NmfError> {
    let v = test_matrix();
    let layout = distributed::layout(world, Some(grid), (M, N))?;
    let gpu = Backend::Gpu(distributed::agree(world, nmf_gpu::GpuContext::new())?);
    let mut ok = true;
    for (name, solver, loss) in [
        (
            "mu frobenius",
            Solver::MultiplicativeUpdate,
            Loss::Frobenius,
        ),
        ("hals frobenius", Solver::Hals, Loss::Frobenius),
        ("mu kl", Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (
            "mu itakura-saito",
            Solver::MultiplicativeUpdate,
            Loss::ItakuraSaito,
        ),
    ] {
        let params = Nmf::params(R)
            .solver(solver)
            .loss(loss)
            .init(Init::Nndsvda)
            .max_iter(20)
            .tol(0.0)
            .check_every(5)
            .backend(Backend::Cpu);
        let single = params.fit(v.view())?;
        let params = params.backend(gpu.clone());
        let fit = distributed::fit(world, &params, layout.clone(), block_of(&v, &layout))?;
        let Some(d) = fit.device else {
            eprintln!("FAIL {name}: rank {} has no device counters", layout.rank);
            return Ok(false);
        };
        let (up, down) = device_bytes(&layout, R, loss);
        let k = d.steady_iterations;
        let products = if down == up { 2 } else { 4 };
        let s = d.steady;
        let counted = (s.bytes_uploaded, s.bytes_read_back, s.read_backs);
        if k != 19
            || counted != (k * up, k * down, k * products)
            || s.buffers_created != 0
            || s.bind_groups_created != 0
        {
            eprintln!(
                "FAIL {name} grid {grid} rank {}: {k} later iterations moved (up, down, read-backs) {counted:?}, the formula {:?}; {} buffers and {} bind groups created",
                layout.rank,
                (k * up, k * down, k * products),
                s.buffers_created,
                s.bind_groups_created
            );
            ok = false;
        }
        if let Some((dw, dh, pass)) = against(world, &fit, &single) {
            println!(
                "{} {name:17} grid {grid}, GPU ranks: rel diff W {dw:.2e}, H {dh:.2e}; rank 0 copies {up} B up, {down} B down per iteration",
                if pass { "ok  " } else { "FAIL" }
            );
            ok &= pass;
        }
    }
    Ok(every_rank(world, ok))
}

/// Whether `ok` holds on every rank (collective).
fn every_rank<C: Communicator>(world: &C, ok: bool) -> bool {
    let mut any_failed = 0i32;
    world.all_reduce_into(
        &i32::from(!ok),
        &mut any_failed,
        distributed::mpi::collective::SystemOperation::max(),
    );
    any_failed == 0
}

/// On rank 0: the relative differences of the gathered W and H from the single-process
/// fit's, and whether both are below [`TOL`] (collective; `None` on the other ranks).
fn against<C: Communicator>(
    world: &C,
    fit: &distributed::DistFit,
    single: &nmf_gpu::Factorization,
) -> Option<(f64, f64, bool)> {
    let (w, h) = fit.gather(world)?;
    let (dw, dh) = (
        rel_diff(w.view(), single.w()),
        rel_diff(h.view(), single.h()),
    );
    Some((dw, dh, dw < TOL && dh < TOL))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |k: usize| args.get(k).map(String::as_str).unwrap_or("");
    match arg(0) {
        "write-npy" => {
            let mut v = test_matrix();
            if let (Ok(i), Ok(j)) = (arg(2).parse::<usize>(), arg(3).parse::<usize>()) {
                v[[i, j]] = -1.0;
            }
            return match write_npy_atomic(arg(1), &v) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        "write-images" => {
            // 12 grey 6 x 5 PGM images in DIR, and the V that load_dir reads from them in NPY.
            let dir = std::path::Path::new(arg(1));
            let written = std::fs::create_dir_all(dir)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    for k in 0..12usize {
                        let mut pgm = b"P5\n6 5\n255\n".to_vec();
                        pgm.extend(
                            (0..30usize).map(|p| ((k * 37 + p * 11 + (p % 6) * k) % 251) as u8),
                        );
                        std::fs::write(dir.join(format!("face{k}.pgm")), pgm)
                            .map_err(|e| e.to_string())?;
                    }
                    let set = nmf_gpu::images::load_dir(dir, nmf_gpu::images::SizePolicy::Exact)
                        .map_err(|e| e.to_string())?;
                    write_npy_atomic(arg(2), &set.matrix()).map_err(|e| e.to_string())
                });
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        #[cfg(feature = "zarr")]
        "write-zarr" => {
            use nmf_gpu::io::zarr::meta::ZarrKind;
            use nmf_gpu::io::zarr::{ZarrCompression, ZarrDtype, ZarrSpec, ZarrWriter};
            // V's columns are the samples: the array is Vᵀ, in chunks of 5 samples.
            let v = test_matrix();
            let dtype = ZarrDtype {
                kind: ZarrKind::Float,
                size: 4,
                big_endian: false,
            };
            let mut spec = ZarrSpec::new(2, &[N as u64, M as u64], &[5, M as u64], dtype);
            spec.compression = ZarrCompression::BloscLz4;
            let data = v.t().mapv(f64::from).into_dyn();
            let written = ZarrWriter::create(arg(1), spec).and_then(|w| w.write_array(data.view()));
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        #[cfg(feature = "hdf5")]
        "write-h5" => {
            // Vᵀ as the chunked, deflated dataset /v.
            let vt = test_matrix().t().as_standard_layout().to_owned();
            let written = hdf5_metno::File::create(arg(1)).and_then(|f| {
                f.new_dataset_builder()
                    .with_data(&vt)
                    .chunk([4, M])
                    .deflate(4)
                    .create("v")
                    .map(|_| ())
            });
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        "write-mtx" => {
            // The test matrix as a MatrixMarket coordinate file (every entry stored).
            let v = test_matrix();
            let mut text = format!(
                "%%MatrixMarket matrix coordinate real general\n{M} {N} {}\n",
                M * N
            );
            for ((i, j), x) in v.indexed_iter() {
                text.push_str(&format!("{} {} {x:e}\n", i + 1, j + 1));
            }
            return match std::fs::write(arg(1), text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {}: {e}", arg(1));
                    ExitCode::FAILURE
                }
            };
        }
        "write-random" => {
            // A benchmark matrix: M x N of rank R plus 1% noise, from a fixed linear
            // congruential sequence.
            let dims: Vec<usize> = (2..5).map(|k| arg(k).parse().unwrap_or(0)).collect();
            let (m, n, r) = (dims[0].max(1), dims[1].max(1), dims[2].max(1));
            let mut state = 12345u64;
            let mut next = move || {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 24) as f32
            };
            let w = Array2::from_shape_simple_fn((m, r), &mut next);
            let h = Array2::from_shape_simple_fn((r, n), &mut next);
            let v = w.dot(&h) + Array2::from_shape_simple_fn((m, n), &mut next) * 0.01;
            return match write_npy_atomic(arg(1), &v) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        "compare" => {
            let opts = ReadOptions::default();
            let (a, b) = match (read_matrix(arg(1), &opts), read_matrix(arg(2), &opts)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let tol: f64 = arg(3).parse().unwrap_or(TOL);
            let d = if a.dim() == b.dim() {
                rel_diff(a.view(), b.view())
            } else {
                f64::INFINITY
            };
            println!("{} vs {}: relative difference {d:.2e}", arg(1), arg(2));
            return if d < tol {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        _ => {}
    }
    let Some(universe) = distributed::mpi::initialize() else {
        eprintln!("error: MPI could not be initialised");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let me = world.rank() as usize;
    let result = match arg(0) {
        "parity" => Grid::parse(arg(1)).and_then(|g| parity(&world, g)),
        "control" => Grid::parse(arg(1)).and_then(|g| control(&world, g)),
        "device" => Grid::parse(arg(1)).and_then(|g| device(&world, g)),
        "badgrid" => {
            let shape = match (arg(2).parse(), arg(3).parse()) {
                (Ok(m), Ok(n)) => (m, n),
                _ => (M, N),
            };
            let grid = match arg(1) {
                "auto" => Ok(None),
                text => Grid::parse(text).map(Some),
            };
            match grid.and_then(|g| distributed::layout(&world, g, shape)) {
                Err(NmfError::InvalidGrid { reason }) => {
                    if me == 0 {
                        println!("refused as expected: {reason}");
                    }
                    Ok(true)
                }
                Err(e) => Err(e),
                Ok(_) => {
                    eprintln!("FAIL: grid {} accepted", arg(1));
                    Ok(false)
                }
            }
        }
        "abort" => {
            // RANK fails in the middle of the collectives: it aborts the job while the others
            // wait in a barrier; the job must end (non-zero) rather than hang.
            let bad: usize = arg(1).parse().unwrap_or(1);
            if me == bad {
                distributed::abort(
                    &world,
                    &NmfError::GpuDeviceLost {
                        message: "simulated device loss".into(),
                    },
                );
            }
            world.barrier();
            Ok(true)
        }
        "fail" => {
            let bad: usize = arg(1).parse().unwrap_or(1);
            let mut v = test_matrix();
            let layout = distributed::layout(
                &world,
                Some(Grid {
                    rows: world.size() as usize,
                    cols: 1,
                }),
                (M, N),
            );
            match layout {
                Ok(layout) => {
                    if me == bad {
                        v[[layout.rows.start, 0]] = -2.0;
                    }
                    let params = Nmf::params(R).max_iter(5).backend(Backend::Cpu);
                    match distributed::fit(&world, &params, layout.clone(), block_of(&v, &layout)) {
                        // Every rank ends through the coordinated failure: the failing
                        // rank prints, its peers wait for the line, then all exit 1.
                        Err(NmfError::PeerFailed { rank }) if rank == bad => {
                            distributed::fail_together(&world, None);
                            return ExitCode::from(1);
                        }
                        Err(e) => {
                            let text = format!("rank {me}: {e}");
                            distributed::fail_together(&world, Some((&text, 1)));
                            return ExitCode::from(1);
                        }
                        Ok(_) => {
                            eprintln!("FAIL: rank {me} finished a fit with a negative entry");
                            Ok(false)
                        }
                    }
                }
                Err(e) => Err(e),
            }
        }
        other => {
            eprintln!("usage: mpi_check parity GRID | fail RANK | badgrid GRID | write-npy FILE | compare A B TOL (got {other:?})");
            Ok(false)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: rank {me}: {e}");
            ExitCode::FAILURE
        }
    }
}
