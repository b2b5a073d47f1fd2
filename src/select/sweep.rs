//! Running many independent fits at once: a worker per CPU thread, each running its jobs one at
//! a time inside a one-thread rayon pool, so that the engine's own parallel loops and GEMMs
//! stay on that thread (no oversubscription); on a GPU one worker queues every fit on the
//! shared device context. Results are stored by job index, so the outcome does not depend on
//! which worker ran what.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{NmfError, Result};

/// Run `job(0..n_jobs)` on `workers` threads (each single-threaded when `single_threaded`);
/// the results in job order, or the error of the first failed job (by index) — remaining jobs
/// are skipped once one fails.
pub(crate) fn run_jobs<T, J>(
    n_jobs: usize,
    workers: usize,
    single_threaded: bool,
    job: J,
) -> Result<Vec<T>>
where
    T: Send,
    J: Fn(usize) -> Result<T> + Sync,
{
    run_jobs_until_stopped(n_jobs, workers, single_threaded, job, || {}, || false)?
        .into_iter()
        .map(|x| {
            x.ok_or(NmfError::Interrupted {
                what: "the rank sweep",
            })
        })
        .collect()
}

/// [`run_jobs`], calling `done()` after each job and keeping what finished when `stop()` ends
/// the run early: the result of each job in job order, `None` for a job skipped because of the
/// stop (the jobs already running finish first); the error of the first failed job (by index)
/// as in `run_jobs`.
pub(crate) fn run_jobs_until_stopped<T, J, D, S>(
    n_jobs: usize,
    workers: usize,
    single_threaded: bool,
    job: J,
    done: D,
    stop: S,
) -> Result<Vec<Option<T>>>
where
    T: Send,
    J: Fn(usize) -> Result<T> + Sync,
    D: Fn() + Sync,
    S: Fn() -> bool + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..n_jobs).map(|_| None).collect());
    let workers = workers.clamp(1, n_jobs.max(1));
    let work = || {
        let pool = if single_threaded {
            rayon::ThreadPoolBuilder::new().num_threads(1).build().ok()
        } else {
            None
        };
        loop {
            if failed.load(Ordering::Relaxed) || stop() {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n_jobs {
                break;
            }
            let out = match &pool {
                Some(p) => p.install(|| job(i)),
                None => job(i),
            };
            if out.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            if let Ok(mut s) = slots.lock() {
                s[i] = Some(out);
            }
            done();
        }
    };
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(work);
            }
        });
    }
    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(n_jobs);
    for slot in slots {
        match slot {
            Some(Ok(x)) => out.push(Some(x)),
            Some(Err(e)) => return Err(e),
            None => out.push(None),
        }
    }
    Ok(out)
}

/// A seed for job `(kind, rank, run)` of a sweep seeded with `seed` (SplitMix64 mixing), so
/// that each fit's randomness depends on what it is, not on when it ran.
pub(crate) fn job_seed(seed: u64, kind: u64, rank: usize, run: usize) -> u64 {
    let mut z = seed;
    for x in [kind, rank as u64, run as u64] {
        z = splitmix(z ^ splitmix(x.wrapping_add(0x9E37_79B9_7F4A_7C15)));
    }
    z
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
