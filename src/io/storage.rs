//! How a data matrix is held in memory: the one list of the names `--storage` and the other
//! front ends accept.

use std::fmt;

/// How V is held: densely, as compressed sparse rows, or chosen from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// Sparse for a MatrixMarket coordinate file whose declared density (entries on its size
    /// line, doubled for a mirrored file, over rows x cols) is below
    /// [`AUTO_SPARSE_DENSITY`], dense otherwise.
    #[default]
    Auto,
    /// Every input as a dense matrix.
    Dense,
    /// A MatrixMarket file as compressed sparse rows (either engine), in time and memory
    /// proportional to its stored entries.
    Sparse,
}

/// [`Storage::Auto`] holds a MatrixMarket coordinate file sparsely below this density.
pub const AUTO_SPARSE_DENSITY: f64 = 0.1;

impl Storage {
    /// Every value, in a fixed order.
    pub const ALL: [Storage; 3] = [Storage::Auto, Storage::Dense, Storage::Sparse];

    /// The name, as a front end accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Storage::Auto => "auto",
            Storage::Dense => "dense",
            Storage::Sparse => "sparse",
        }
    }

    /// The value whose name is `name`.
    pub fn from_name(name: &str) -> Option<Storage> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// One line for a front end's help.
    pub fn help(self) -> &'static str {
        match self {
            Storage::Auto => {
                "sparse for a MatrixMarket coordinate file below 10% density, else dense"
            }
            Storage::Dense => "every input as a dense matrix",
            Storage::Sparse => "a MatrixMarket file as compressed sparse rows (CPU or GPU engine)",
        }
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
