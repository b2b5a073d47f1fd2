//! Parameter blocks of the kernels, laid out exactly as the WGSL structs of the same name,
//! and the codes of their mode fields. A test reflects the shaders with naga and checks every
//! struct's size and every code against them.

use bytemuck::{Pod, Zeroable};

use crate::engine::{MuRule, Side};

/// `struct Gemm` of `matmul.wgsl`: shapes, offsets and strides of A, B, C, D and the mask;
/// `eps` the guard of the KL loss epilogue, `beta` the β of the β epilogues.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Gemm {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub accumulate: u32,
    pub a_off: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub eps: f32,
    pub b_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub k_chunk: u32,
    pub c_off: u32,
    pub c_rs: u32,
    pub c_cs: u32,
    pub c_slice: u32,
    pub d_off: u32,
    pub d_rs: u32,
    pub d_cs: u32,
    pub mask_off: u32,
    pub mask_rs: u32,
    pub mask_cs: u32,
    pub beta: f32,
    pub pad1: u32,
}

/// `struct Mu` of `mu_update.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Mu {
    pub rows: u32,
    pub cols: u32,
    pub r: u32,
    pub side: u32,
    pub den: u32,
    pub l1: f32,
    pub l2: f32,
    pub eps: f32,
    pub rule: u32,
    pub gamma: f32,
    pub floor: f32,
    pub pad2: u32,
}

/// `Mu::side`: which factor the update writes (`SIDE_*` in `mu_update.wgsl`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MuSide {
    /// `X = W` (m x r).
    Left = 0,
    /// `X = H` (r x n).
    Right = 1,
}

impl From<Side> for MuSide {
    fn from(side: Side) -> Self {
        match side {
            Side::Left => MuSide::Left,
            Side::Right => MuSide::Right,
        }
    }
}

/// `Mu::den`: what the `small` binding holds (`DEN_*` in `mu_update.wgsl`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MuDen {
    /// An r x r matrix `P`: `D = X P` (Left) or `P X` (Right).
    Product = 0,
    /// A length-r vector `s`: `D = s[t]`.
    Sums = 1,
    /// A matrix of X's shape: `D` itself.
    Elementwise = 2,
}

/// `Mu::rule`: how the ratio is applied (`RULE_*` in `mu_update.wgsl`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MuRuleCode {
    /// `f(ρ) = ρ`.
    Plain = 0,
    /// `f(ρ) = √ρ`.
    Sqrt = 1,
    /// `f(ρ) = ½ + ½ρ`.
    Damped = 2,
    /// `f(ρ) = ρ^γ`.
    Power = 3,
}

impl From<MuRule> for MuRuleCode {
    fn from(rule: MuRule) -> Self {
        match rule {
            MuRule::Plain => MuRuleCode::Plain,
            MuRule::Sqrt => MuRuleCode::Sqrt,
            MuRule::Damped => MuRuleCode::Damped,
            MuRule::Power { .. } => MuRuleCode::Power,
        }
    }
}

/// The WGSL constant of `mu_update.wgsl` each code stands for: `(name, value)`.
#[cfg(test)]
pub(crate) const MU_CODES: &[(&str, u32)] = &[
    ("SIDE_LEFT", MuSide::Left as u32),
    ("SIDE_RIGHT", MuSide::Right as u32),
    ("DEN_PRODUCT", MuDen::Product as u32),
    ("DEN_SUMS", MuDen::Sums as u32),
    ("DEN_ELEMENTWISE", MuDen::Elementwise as u32),
    ("RULE_PLAIN", MuRuleCode::Plain as u32),
    ("RULE_SQRT", MuRuleCode::Sqrt as u32),
    ("RULE_DAMPED", MuRuleCode::Damped as u32),
    ("RULE_POWER", MuRuleCode::Power as u32),
];

/// `struct Hals` of `hals.wgsl`: the shape of X, the penalties, and for the inner sweeps
/// decided on the device the sweep's index, the stopping rule with its `tol²`, and the number
/// of invocations whose moves `hals_stop` sums (rows of W or columns of H).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Hals {
    pub rows: u32,
    pub cols: u32,
    pub r: u32,
    pub sweep: u32,
    pub l1: f32,
    pub l2: f32,
    pub tol_sq: f32,
    pub rule: u32,
    pub count: u32,
    pub pad0: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// `Hals::rule`: the inner stopping rule (`STOP_*` in `hals.wgsl`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopRule {
    /// Stop when a sweep moves X by at most `tol²` times the first sweep's move.
    FirstMove = 0,
    /// Stop when a sweep moves X by at most `tol²` times `‖X‖²`.
    Relative = 1,
}

/// Entries of the tracking buffer before the per-invocation moves (`TRACK_HEAD`).
pub(crate) const TRACK_HEAD: usize = 4;

/// The WGSL constant of `hals.wgsl` each code stands for: `(name, value)`.
#[cfg(test)]
pub(crate) const HALS_CODES: &[(&str, u32)] = &[
    ("STOP_FIRST_MOVE", StopRule::FirstMove as u32),
    ("STOP_RELATIVE", StopRule::Relative as u32),
    ("TRACK_HEAD", TRACK_HEAD as u32),
];

/// `struct Sums` of `sums.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Sums {
    pub count: u32,
    pub len: u32,
    pub outer: u32,
    pub inner: u32,
    pub zero_to_one: u32,
    pub bound: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// `struct Slices` of `slices.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Slices {
    pub rows: u32,
    pub cols: u32,
    pub slices: u32,
    pub slice_len: u32,
    pub c_off: u32,
    pub c_rs: u32,
    pub c_cs: u32,
    pub accumulate: u32,
}

/// `struct Ew` of `elementwise.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Ew {
    pub rows: u32,
    pub cols: u32,
    pub a: f32,
    pub b: f32,
}

/// `struct Sparse` of `spmm.wgsl` and `sparse_entries.wgsl`: one row panel of a CSR matrix
/// (`rows` rows from `row0`), the rank, the strides of the dense operands and the output, and
/// where the loss partials go.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Sparse {
    pub rows: u32,
    pub r: u32,
    pub row0: u32,
    pub mode: u32,
    pub x_rs: u32,
    pub x_cs: u32,
    pub out_rs: u32,
    pub out_cs: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub out_off: u32,
    pub out_stride2: u32,
    pub eps: f32,
    pub pad0: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// `Sparse::mode` of `sparse_entries` (`MODE_*` in `sparse_entries.wgsl`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SparseMode {
    /// The KL ratios `v / max(wh, ε)` at the stored entries.
    KlRatio = 0,
    /// Per row, `Σ (v − wh)²` and `Σ wh²` over the stored entries.
    Frobenius = 1,
    /// Per row, `Σ_{v > ε} v log(v / max(wh, ε)) − v` over the stored entries.
    KlLoss = 2,
    /// The model `wh` at the stored entries.
    Model = 3,
}

/// The WGSL constant of `sparse_entries.wgsl` each code stands for: `(name, value)`.
#[cfg(test)]
pub(crate) const SPARSE_CODES: &[(&str, u32)] = &[
    ("MODE_KL_RATIO", SparseMode::KlRatio as u32),
    ("MODE_FROBENIUS", SparseMode::Frobenius as u32),
    ("MODE_KL_LOSS", SparseMode::KlLoss as u32),
    ("MODE_MODEL", SparseMode::Model as u32),
];
