//! Reproducible pseudo-random test data: Marsaglia's xorshift32 stream,
//! `s ← s ⊕ (s ≪ 13)`, `s ← s ⊕ (s ≫ 17)`, `s ← s ⊕ (s ≪ 5)`, each state giving the value
//! `(s mod q) / q` in `[0, 1)` for a number of levels `q`.

use ndarray::Array2;

/// Knuth's multiplicative hash constant (`⌊2³² / φ⌋`), which spreads small seeds apart.
const SPREAD: u32 = 2_654_435_761;

/// One xorshift32 stream of values `(s mod levels) / levels`.
pub(crate) struct XorShift {
    state: u32,
    levels: u32,
}

impl XorShift {
    /// The stream whose state starts at `state` (nonzero).
    pub(crate) fn new(state: u32, levels: u32) -> XorShift {
        XorShift { state, levels }
    }

    /// The stream of `seed`: its state starts at `seed · 2654435761 + add` (wrapping), so
    /// consecutive seeds give unrelated streams.
    pub(crate) fn seeded(seed: u32, add: u32, levels: u32) -> XorShift {
        XorShift::new(seed.wrapping_mul(SPREAD).wrapping_add(add), levels)
    }

    /// The next value, in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f32 {
        let s = &mut self.state;
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        (*s % self.levels) as f32 / self.levels as f32
    }

    /// A `rows x cols` matrix of `offset +` the next values, row by row.
    pub(crate) fn matrix(&mut self, rows: usize, cols: usize, offset: f32) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |_| offset + self.next_unit())
    }

    /// `len` values `offset +` the next values.
    pub(crate) fn vec(&mut self, len: usize, offset: f32) -> Vec<f32> {
        (0..len).map(|_| offset + self.next_unit()).collect()
    }
}
