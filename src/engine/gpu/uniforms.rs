//! Parameter blocks of the kernels, laid out exactly as the WGSL structs of the same name.

use bytemuck::{Pod, Zeroable};

/// `struct Gemm` of `matmul.wgsl`: shapes, offsets and strides of A, B, C, D and the mask.
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
    pub pad0: u32,
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
    pub pad0: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// `struct Hals` of `hals.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct Hals {
    pub rows: u32,
    pub cols: u32,
    pub r: u32,
    pub pad0: u32,
    pub l1: f32,
    pub l2: f32,
    pub pad1: u32,
    pub pad2: u32,
}

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
