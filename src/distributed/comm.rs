//! The collectives of a distributed fit over the grid's communicators, with the volume each
//! moves counted and the time spent in them measured.
//!
//! **What is counted.** The bytes *this rank receives* under a bandwidth-optimal algorithm
//! (ring or recursive halving/doubling), for a collective over q ranks on T words of which
//! this rank's share is `t` (its piece of an all-gather or reduce-scatter; for an all-reduce,
//! its [`split`] share of T):
//! all-gather `T − t`, reduce-scatter `T − t`, all-reduce `2 (T − t)` (a reduce-scatter then
//! an all-gather). A collective over one rank moves nothing. The counts come from the buffers
//! handed to MPI, so they record what the code actually asks MPI to move.

use std::cell::Cell;
use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::raw::AsRaw;
use mpi::topology::{Color, Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::grid::{split, Layout};
use crate::error::{NmfError, Result};

/// The communicator a collective runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// The pc ranks of this rank's grid row (ordered by grid column).
    Row,
    /// The pr ranks of this rank's grid column (ordered by grid row).
    Col,
}

/// Which part of a fit communication is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Statistics of V, the start (NNDSVD's products), the initial loss.
    Setup,
    /// The updates of W and H.
    Iteration,
    /// Losses at checks.
    Check,
    /// The moves of accelerated HALS's inner sweeps (one scalar all-reduce per sweep).
    Inner,
}

/// The world communicator with its row and column communicators.
pub(crate) struct GridComm<'c, C: Communicator> {
    pub world: &'c C,
    row: SimpleCommunicator,
    col: SimpleCommunicator,
    pub layout: Layout,
    phase: Cell<Phase>,
    bytes: [Cell<u64>; 4],
    seconds: Cell<f64>,
}

/// The MPI count of `len` elements, refused above `i32::MAX` (MPI's limit per message).
fn count(len: usize) -> Result<i32> {
    i32::try_from(len).map_err(|_| NmfError::InvalidGrid {
        reason: format!(
            "a block of {len} values exceeds MPI's limit of 2^31 - 1 elements per message; use more ranks (a finer grid)"
        ),
    })
}

fn displacements(counts: &[i32]) -> Vec<i32> {
    counts
        .iter()
        .scan(0i32, |acc, &c| {
            let d = *acc;
            *acc = acc.saturating_add(c);
            Some(d)
        })
        .collect()
}

impl<'c, C: Communicator> GridComm<'c, C> {
    /// Split `world` into the grid's row and column communicators (collective).
    pub fn new(world: &'c C, layout: Layout) -> Result<Self> {
        let (i, j) = layout.coords;
        let split_by = |color: usize, key: usize| {
            world.split_by_color_with_key(Color::with_value(color as i32), key as i32)
        };
        let row = split_by(i, j);
        let col = split_by(layout.grid.rows + j, i);
        match (row, col) {
            (Some(row), Some(col)) => Ok(GridComm {
                world,
                row,
                col,
                layout,
                phase: Cell::new(Phase::Setup),
                bytes: Default::default(),
                seconds: Cell::new(0.0),
            }),
            _ => Err(NmfError::InvalidGrid {
                reason: "MPI could not split the communicator into grid rows and columns".into(),
            }),
        }
    }

    /// This rank in the world communicator.
    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// Charge what follows to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.set(phase);
    }

    /// Bytes received so far in `phase` (see the module docs).
    pub fn bytes(&self, phase: Phase) -> u64 {
        self.bytes[phase as usize].get()
    }

    /// Seconds spent inside collectives so far.
    pub fn seconds(&self) -> f64 {
        self.seconds.get()
    }

    fn charge(&self, words: usize, word_bytes: usize, start: Instant) {
        let b = &self.bytes[self.phase.get() as usize];
        b.set(b.get() + (words * word_bytes) as u64);
        self.seconds
            .set(self.seconds.get() + start.elapsed().as_secs_f64());
    }

    fn size_of(&self, group: Group) -> usize {
        (match group {
            Group::Row => self.row.size(),
            Group::Col => self.col.size(),
        }) as usize
    }

    fn rank_in(&self, group: Group) -> usize {
        (match group {
            Group::Row => self.row.rank(),
            Group::Col => self.col.rank(),
        }) as usize
    }

    /// Concatenate every rank's `local` over `group`, in the group's rank order; `counts` are
    /// the lengths of every rank's part.
    pub fn all_gather(&self, group: Group, local: &[f32], counts: &[usize]) -> Result<Vec<f32>> {
        let me = self.rank_in(group);
        check_parts(counts, self.size_of(group), me, local.len())?;
        let total: usize = counts.iter().sum();
        let mut out = vec![0f32; total];
        let start = Instant::now();
        let c: Vec<i32> = counts.iter().map(|&k| count(k)).collect::<Result<_>>()?;
        count(total)?;
        let d = displacements(&c);
        {
            let mut part = PartitionMut::new(&mut out[..], c, d);
            match group {
                Group::Row => self.row.all_gather_varcount_into(local, &mut part),
                Group::Col => self.col.all_gather_varcount_into(local, &mut part),
            }
        }
        self.charge(total - local.len(), 4, start);
        Ok(out)
    }

    /// Sum `full` over `group` and keep this rank's part (the parts have lengths `counts`, in
    /// the group's rank order): MPI_Reduce_scatter.
    pub fn reduce_scatter(&self, group: Group, full: &[f32], counts: &[usize]) -> Result<Vec<f32>> {
        let me = self.rank_in(group);
        let total: usize = counts.iter().sum();
        check_parts(
            counts,
            self.size_of(group),
            me,
            counts.get(me).copied().unwrap_or(0),
        )?;
        if full.len() != total {
            return Err(internal("the reduce-scatter buffer", total, full.len()));
        }
        let mut out = vec![0f32; counts[me]];
        let start = Instant::now();
        let c: Vec<i32> = counts.iter().map(|&k| count(k)).collect::<Result<_>>()?;
        count(total)?;
        let raw = match group {
            Group::Row => self.row.as_raw(),
            Group::Col => self.col.as_raw(),
        };
        // SAFETY: `full` holds Σ counts f32 values and `out` holds counts[me] (both checked
        // above); `c` has one count per rank of the communicator `raw` (checked by
        // check_parts); the datatype is MPI_FLOAT for f32 and the operation MPI_SUM.
        let rc = unsafe {
            mpi::ffi::MPI_Reduce_scatter(
                full.as_ptr().cast(),
                out.as_mut_ptr().cast(),
                c.as_ptr(),
                f32::equivalent_datatype().as_raw(),
                SystemOperation::sum().as_raw(),
                raw,
            )
        };
        if rc != 0 {
            return Err(NmfError::InvalidGrid {
                reason: format!("MPI_Reduce_scatter failed with code {rc}"),
            });
        }
        self.charge(total - counts[me], 4, start);
        Ok(out)
    }

    /// Sum `buf` over every rank, in place.
    pub fn all_reduce_f32(&self, buf: &mut [f32]) {
        self.all_reduce_sum(buf);
    }

    /// Sum `buf` over every rank, in place (f64).
    pub fn all_reduce_f64(&self, buf: &mut [f64]) {
        self.all_reduce_sum(buf);
    }

    /// Sum `buf` over every rank, in place, counted as words of `T`'s size.
    fn all_reduce_sum<T: Equivalence + Clone>(&self, buf: &mut [T]) {
        let start = Instant::now();
        let send = buf.to_vec();
        self.world
            .all_reduce_into(&send[..], buf, SystemOperation::sum());
        self.charge_all_reduce(buf.len(), std::mem::size_of::<T>(), start);
    }

    /// The largest `x` over every rank.
    pub fn all_max_f32(&self, x: f32) -> f32 {
        let start = Instant::now();
        let mut out = x;
        self.world
            .all_reduce_into(&x, &mut out, SystemOperation::max());
        self.charge_all_reduce(1, 4, start);
        out
    }

    fn charge_all_reduce(&self, words: usize, word_bytes: usize, start: Instant) {
        let p = self.size();
        let share = split(words, p, self.rank()).len();
        self.charge(2 * (words - share), word_bytes, start);
    }
}

/// Whether every rank succeeded: the lowest failing rank (an all-reduce of one integer).
/// Every rank must call it at the same point.
pub(crate) fn first_failure<C: Communicator>(world: &C, failed: bool) -> Option<usize> {
    let me = if failed {
        world.rank() as u64
    } else {
        u64::MAX
    };
    let mut lowest = u64::MAX;
    world.all_reduce_into(&me, &mut lowest, SystemOperation::min());
    (lowest != u64::MAX).then_some(lowest as usize)
}

/// `result` on every rank when all succeeded; otherwise this rank's own error where it
/// failed, and [`NmfError::PeerFailed`] on the others. Collective: every rank calls it at the
/// same point, so a rank that fails never leaves the others waiting.
pub fn agree<C: Communicator, T>(world: &C, result: Result<T>) -> Result<T> {
    match (first_failure(world, result.is_err()), result) {
        (_, Err(e)) => Err(e),
        (Some(rank), Ok(_)) => Err(NmfError::PeerFailed { rank }),
        (None, Ok(v)) => Ok(v),
    }
}

/// Print `error: rank K of P: <e>` once (from this rank) and abort the whole job with exit
/// code 1 (MPI_Abort): the way out of an error that strikes one rank in the middle of the
/// collectives, where the others would otherwise wait for it forever. The line is written
/// in full before the abort is asked for.
pub fn abort<C: Communicator>(world: &C, e: &NmfError) -> ! {
    write_error_line(&format!("rank {} of {}: {e}", world.rank(), world.size()));
    world.abort(1)
}

/// Write `error: <message>` to standard error as one `write` of the whole line, flushed: a
/// launcher that ends the job a moment later finds either nothing or the whole line in the
/// pipe, never `error: ` alone.
pub fn write_error_line(message: &str) {
    use std::io::Write;
    let line = format!("error: {message}\n");
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes()).and_then(|()| err.flush());
}

/// How a job that failed ends, as agreed by [`fail_together`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobFailure {
    /// The rank whose message was printed.
    pub rank: usize,
    /// The exit code every rank exits with (the printing rank's).
    pub code: u8,
}

/// Coordinated failure: every rank calls it at the same point, `mine` holding this rank's own
/// message and exit code, if it has one (`None` on a rank that only saw a peer fail).
///
/// The ranks agree on the lowest rank holding a message (one all-reduce of
/// `rank · 256 + code`), that rank prints it once with [`write_error_line`], and a barrier
/// holds every rank until the line is written: no rank can exit, and so have the launcher
/// end the job (`mpirun` kills the others when one exits non-zero), while another still
/// holds the message. Every rank then exits with the printing rank's code. `None` when no
/// rank holds a message (nothing is printed; the callers decide).
pub fn fail_together<C: Communicator>(world: &C, mine: Option<(&str, u8)>) -> Option<JobFailure> {
    let me = world.rank() as u64;
    let key = match mine {
        Some((_, code)) => me * 256 + u64::from(code),
        None => u64::MAX,
    };
    let mut lowest = u64::MAX;
    world.all_reduce_into(&key, &mut lowest, SystemOperation::min());
    let agreed = (lowest != u64::MAX).then_some(JobFailure {
        rank: (lowest / 256) as usize,
        code: (lowest % 256) as u8,
    });
    if let (Some(job), Some((message, _))) = (agreed, mine) {
        if job.rank as u64 == me {
            write_error_line(message);
        }
    }
    world.barrier();
    agreed
}

fn check_parts(counts: &[usize], size: usize, me: usize, mine: usize) -> Result<()> {
    if counts.len() != size || counts.get(me) != Some(&mine) {
        return Err(internal("the collective's parts", size, counts.len()));
    }
    Ok(())
}

fn internal(what: &'static str, expected: usize, found: usize) -> NmfError {
    NmfError::ShapeMismatch {
        what,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}
