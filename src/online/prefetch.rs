//! Reading ahead: a thread pulls batches from a [`Source`], checks them, and hands them over
//! one at a time, so that reading (and decoding, and checking) batch k+1 overlaps the compute
//! on batch k. The hand-over is a rendezvous: at most one batch waits read ahead, so the host
//! holds at most two batches of the stream (the one in use and the one read ahead) besides the
//! one being filled.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use ndarray::Array2;

use super::source::Source;
use crate::engine::check_data;
use crate::error::{NmfError, Result};

/// A checked batch of the stream.
pub(crate) struct Batch {
    /// Pass over the data (0-based).
    pub epoch: usize,
    /// Index of its first column in V.
    pub col0: usize,
    /// The samples, m x b, row-major.
    pub data: Array2<f32>,
    /// Mean of its entries.
    pub mean: f64,
}

/// The receiving end: batches in order, then the end of the stream (or the first error).
pub(crate) type Batches = Receiver<Result<Batch>>;

/// Run `consume` on the batches of `epochs` passes over `source` (`max_cols` samples each),
/// read on a second thread. `consume` may stop early by returning; the reader stops then too.
pub(crate) fn stream<S: Source + ?Sized, T>(
    source: &mut S,
    max_cols: usize,
    epochs: usize,
    consume: impl FnOnce(&Batches) -> Result<T>,
) -> Result<T> {
    stream_from(source, max_cols, (0, 0), epochs, consume)
}

/// [`stream`] from sample `start.1` of pass `start.0` (a resumed fit): the batches before it
/// are read and dropped, so that the ones after lie where they lay in the first run.
pub(crate) fn stream_from<S: Source + ?Sized, T>(
    source: &mut S,
    max_cols: usize,
    start: (usize, usize),
    epochs: usize,
    consume: impl FnOnce(&Batches) -> Result<T>,
) -> Result<T> {
    let (tx, rx) = sync_channel(0);
    std::thread::scope(|scope| {
        scope.spawn(move || produce(source, max_cols, start, epochs, tx));
        let out = consume(&rx);
        drop(rx); // unblocks the reader, which then ends
        out
    })
}

fn produce<S: Source + ?Sized>(
    source: &mut S,
    max_cols: usize,
    start: (usize, usize),
    epochs: usize,
    tx: SyncSender<Result<Batch>>,
) {
    for epoch in start.0..epochs {
        let read = |source: &mut S, col0: usize| -> Result<Option<Array2<f32>>> {
            if epoch > 0 && col0 == 0 {
                source.rewind().map_err(|e| in_stream(source, 0, e))?;
            }
            source.next_batch(max_cols).map_err(|e| match e {
                e @ NmfError::InStream { .. } => e,
                e => NmfError::InStream {
                    origin: format!("reading samples {col0} to {}", col0 + max_cols - 1),
                    source: Box::new(e),
                },
            })
        };
        let mut col0 = 0;
        if epoch == start.0 {
            // A resumed fit: skip the samples already learnt from in this pass.
            while col0 < start.1 {
                match read(source, col0) {
                    Ok(Some(data)) => col0 += data.ncols(),
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        }
        loop {
            let next = match read(source, col0) {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let Some(data) = next else { break };
            let checked = check(source, col0, max_cols, data).map(|(data, mean)| Batch {
                epoch,
                col0,
                data,
                mean,
            });
            let batch = match checked {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            col0 += batch.data.ncols();
            if tx.send(Ok(batch)).is_err() {
                return;
            }
        }
        let n = source.dim().1;
        if col0 != n {
            let _ = tx.send(Err(in_stream(
                source,
                col0,
                NmfError::ShapeMismatch {
                    what: "the samples of a streamed source",
                    expected: format!("{n} samples per pass"),
                    found: format!("{col0}"),
                },
            )));
            return;
        }
    }
}

/// Shape and values of one batch: `m` rows, `1..=max_cols` columns, every entry finite and
/// nonnegative; errors name the sample (global column) and its origin.
fn check<S: Source + ?Sized>(
    source: &S,
    col0: usize,
    max_cols: usize,
    data: Array2<f32>,
) -> Result<(Array2<f32>, f64)> {
    let (m, n) = source.dim();
    let b = data.ncols();
    if data.nrows() != m || b == 0 || b > max_cols || col0 + b > n {
        return Err(in_stream(
            source,
            col0,
            NmfError::ShapeMismatch {
                what: "a batch of a streamed source",
                expected: format!("{m} rows and 1 to {} columns", max_cols.min(n - col0)),
                found: format!("{} x {b}", data.nrows()),
            },
        ));
    }
    if let Err(e) = check_data(data.view()) {
        let (col, e) = match e {
            NmfError::NonFiniteInput { row, col, value } => (
                col,
                NmfError::NonFiniteInput {
                    row,
                    col: col0 + col,
                    value,
                },
            ),
            NmfError::NegativeInput { row, col, value } => (
                col,
                NmfError::NegativeInput {
                    row,
                    col: col0 + col,
                    value,
                },
            ),
            other => (0, other),
        };
        return Err(in_stream(source, col0 + col, e));
    }
    let data = if data.is_standard_layout() {
        data
    } else {
        data.as_standard_layout().into_owned()
    };
    let mean = crate::init::mean(data.view());
    Ok((data, mean))
}

/// An error at sample `col` of `source`, naming where it comes from.
fn in_stream<S: Source + ?Sized>(source: &S, col: usize, e: NmfError) -> NmfError {
    match e {
        e @ NmfError::InStream { .. } => e,
        e => NmfError::InStream {
            origin: source.describe(col),
            source: Box::new(e),
        },
    }
}
