//! The process grid and the block partition of V, W and H (MPI-FAUN's layout).
//!
//! P = pr x pc ranks; rank `k` sits at grid position `(i, j) = (k / pc, k % pc)` (row-major).
//! V (m x n) is cut into pr row blocks and pc column blocks; rank (i, j) holds `V_ij`
//! (`m_i x n_j`). Row block i of W (`m_i x r`) is shared by the pc ranks of grid row i, each
//! owning the j-th of its pc pieces; column block j of H (`r x n_j`) is shared by the pr ranks
//! of grid column j, each owning the i-th of its pr pieces. Every split is [`split`]: the first
//! `len mod parts` parts get one element more, so uneven sizes differ by at most one.

use std::fmt;
use std::ops::Range;

use crate::error::{NmfError, Result};

/// Part `k` of `0..len` cut into `parts` nearly equal contiguous ranges (the first
/// `len mod parts` are one longer).
pub fn split(len: usize, parts: usize, k: usize) -> Range<usize> {
    let parts = parts.max(1);
    let (base, extra) = (len / parts, len % parts);
    let start = k * base + k.min(extra);
    let size = base + usize::from(k < extra);
    start.min(len)..(start + size).min(len)
}

/// A pr x pc process grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// pr: the number of row blocks of V.
    pub rows: usize,
    /// pc: the number of column blocks of V.
    pub cols: usize,
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

impl Grid {
    /// Parse `PRxPC` (e.g. `2x3`).
    pub fn parse(text: &str) -> Result<Grid> {
        let bad = || NmfError::InvalidGrid {
            reason: format!(
                "{text:?} is not a grid; write it as PRxPC with positive integers, e.g. 2x3"
            ),
        };
        let (a, b) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let rows: usize = a.trim().parse().map_err(|_| bad())?;
        let cols: usize = b.trim().parse().map_err(|_| bad())?;
        if rows == 0 || cols == 0 {
            return Err(bad());
        }
        Ok(Grid { rows, cols })
    }

    /// The number of ranks, pr·pc.
    pub fn size(&self) -> usize {
        self.rows * self.cols
    }

    /// MPI-FAUN's choice for P ranks and an m x n matrix: the factorisation P = pr·pc whose
    /// blocks are closest to the shape of V, `pr/pc ≈ m/n`, which minimises the per-iteration
    /// volume `r·(m/pr + n/pc)` of the all-gathers and reduce-scatters (a 1-D grid when one
    /// side is much longer: P x 1 for tall V, 1 x P for wide V). Among grids that fit the
    /// shape (pr ≤ m, pc ≤ n) when any does.
    pub fn choose(p: usize, m: usize, n: usize) -> Grid {
        let p = p.max(1);
        let cost = |g: &Grid| (m as f64 / g.rows as f64) + (n as f64 / g.cols as f64);
        (1..=p)
            .filter(|d| p.is_multiple_of(*d))
            .map(|d| Grid {
                rows: d,
                cols: p / d,
            })
            .min_by(|a, b| {
                let fits = |g: &Grid| g.rows <= m && g.cols <= n;
                fits(b)
                    .cmp(&fits(a))
                    .then(cost(a).total_cmp(&cost(b)))
                    .then(a.rows.cmp(&b.rows))
            })
            .unwrap_or(Grid { rows: p, cols: 1 })
    }

    /// Refuse a grid that does not match `p` ranks or cuts V (m x n) into empty blocks, or
    /// leaves a rank without a piece of W or H (every rank needs `m_i ≥ pc`, `n_j ≥ pr`).
    pub fn check(&self, p: usize, m: usize, n: usize) -> Result<()> {
        if self.size() != p {
            return Err(NmfError::InvalidGrid {
                reason: format!(
                    "the grid {self} has {} ranks but the job has {p}; give --grid PRxPC with PR·PC = {p}",
                    self.size()
                ),
            });
        }
        // The smallest row block m_i = ⌊m/pr⌋ is cut into pc pieces of W; likewise for H.
        if m / self.rows < self.cols || n / self.cols < self.rows {
            return Err(NmfError::InvalidGrid {
                reason: format!(
                    "the grid {self} is too fine for a {m} x {n} matrix: every rank needs at least one row of W and one column of H (m/pr ≥ pc and n/pc ≥ pr); use fewer ranks or another grid"
                ),
            });
        }
        Ok(())
    }
}

/// Where one rank's blocks lie in the global matrices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The grid.
    pub grid: Grid,
    /// The shape of V, (m, n).
    pub shape: (usize, usize),
    /// The rank in the world communicator.
    pub rank: usize,
    /// Its grid position (i, j).
    pub coords: (usize, usize),
    /// Rows of V (and of W) in its block: the row block i.
    pub rows: Range<usize>,
    /// Columns of V (and of H) in its block: the column block j.
    pub cols: Range<usize>,
    /// The rows of W this rank owns (piece j of row block i).
    pub w_rows: Range<usize>,
    /// The columns of H this rank owns (piece i of column block j).
    pub h_cols: Range<usize>,
}

impl Layout {
    /// The layout of world rank `rank` (after [`Grid::check`]).
    pub fn new(grid: Grid, shape: (usize, usize), rank: usize) -> Layout {
        let (m, n) = shape;
        let coords = (rank / grid.cols, rank % grid.cols);
        let rows = split(m, grid.rows, coords.0);
        let cols = split(n, grid.cols, coords.1);
        let w = split(rows.len(), grid.cols, coords.1);
        let h = split(cols.len(), grid.rows, coords.0);
        Layout {
            grid,
            shape,
            rank,
            coords,
            w_rows: rows.start + w.start..rows.start + w.end,
            h_cols: cols.start + h.start..cols.start + h.end,
            rows,
            cols,
        }
    }

    /// The pieces of W in this rank's grid row (in grid-column order), as global row ranges.
    pub fn w_pieces(&self) -> Vec<Range<usize>> {
        pieces(&self.rows, self.grid.cols)
    }

    /// The pieces of H in this rank's grid column (in grid-row order), as global column ranges.
    pub fn h_pieces(&self) -> Vec<Range<usize>> {
        pieces(&self.cols, self.grid.rows)
    }
}

/// `whole` split into `parts` pieces ([`split`]), in order, as ranges of the whole index space.
fn pieces(whole: &Range<usize>, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|k| {
            let p = split(whole.len(), parts, k);
            whole.start + p.start..whole.start + p.end
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_range_evenly() {
        for len in 0..20 {
            for parts in 1..6 {
                let ranges: Vec<_> = (0..parts).map(|k| split(len, parts, k)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[parts - 1].end, len);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].len() >= w[1].len() && w[0].len() - w[1].len() <= 1);
                }
            }
        }
    }

    #[test]
    fn grids_parse_and_check() {
        assert_eq!(Grid::parse("2x3").unwrap(), Grid { rows: 2, cols: 3 });
        for bad in ["2", "0x4", "ax2", "2x", "-1x2"] {
            assert!(
                matches!(Grid::parse(bad), Err(NmfError::InvalidGrid { .. })),
                "{bad}"
            );
        }
        let g = Grid { rows: 2, cols: 2 };
        assert!(g.check(4, 10, 10).is_ok());
        assert!(g.check(3, 10, 10).is_err());
        assert!(Grid { rows: 4, cols: 1 }.check(4, 3, 10).is_err());
        assert!(Grid { rows: 1, cols: 4 }.check(4, 10, 3).is_err());
    }

    #[test]
    fn choice_follows_the_shape() {
        assert_eq!(Grid::choose(4, 1000, 1000), Grid { rows: 2, cols: 2 });
        assert_eq!(Grid::choose(4, 100_000, 100), Grid { rows: 4, cols: 1 });
        assert_eq!(Grid::choose(4, 100, 100_000), Grid { rows: 1, cols: 4 });
        assert_eq!(Grid::choose(3, 50, 60), Grid { rows: 1, cols: 3 });
        assert_eq!(Grid::choose(1, 5, 5), Grid { rows: 1, cols: 1 });
    }

    #[test]
    fn layouts_tile_the_factors() {
        let (m, n) = (11, 7);
        for grid in [
            Grid { rows: 2, cols: 2 },
            Grid { rows: 3, cols: 1 },
            Grid { rows: 1, cols: 3 },
        ] {
            let mut w_rows = vec![0; m];
            let mut h_cols = vec![0; n];
            for k in 0..grid.size() {
                let l = Layout::new(grid, (m, n), k);
                l.w_rows.clone().for_each(|i| w_rows[i] += 1);
                l.h_cols.clone().for_each(|j| h_cols[j] += 1);
                assert!(l.rows.start <= l.w_rows.start && l.w_rows.end <= l.rows.end);
                assert_eq!(l.w_pieces()[l.coords.1], l.w_rows);
                assert_eq!(l.h_pieces()[l.coords.0], l.h_cols);
            }
            assert!(w_rows.iter().chain(&h_cols).all(|&c| c == 1), "{grid}");
        }
    }
}
