//! The tiled matmul (`shaders/matmul_tiled.wgsl`): its tile shapes, the operand layouts it is
//! specialised for, and the WGSL of each configuration.
//!
//! A configuration is a [`TileShape`] (workgroup `wg_x x wg_y`, register block `tm x tn`, depth
//! `bk` of the staged tiles), a [`Layout`] (the pipeline constants `A_T`, `B_T`) and whether A and
//! B are read as `vec4` (their offset, leading dimension and buffer length multiples of 4). A
//! workgroup covers `BM = wg_y·tm` rows and `BN = wg_x·tn` columns of C and stages
//! `bk·(BM + BN)` entries of A and B in workgroup memory; per step of the inner dimension an
//! invocation issues `tm/4 + tn/4` vec4 reads of the tiles for `tm·tn` multiply-adds.

use crate::error::{NmfError, Result};

/// Entries of the loss epilogues' reduction array (`MAX_WG` of the prelude): a tile's
/// invocations must not exceed it.
pub(crate) const MAX_INVOCATIONS: u32 = 256;

/// The tile of one tiled-matmul pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TileShape {
    /// Invocations along the columns of C.
    pub wg_x: u32,
    /// Invocations along the rows of C.
    pub wg_y: u32,
    /// Rows of C per invocation (a multiple of 4).
    pub tm: u32,
    /// Columns of C per invocation (a multiple of 4).
    pub tn: u32,
    /// Depth of the staged tiles along the inner dimension (a multiple of 4).
    pub bk: u32,
}

impl TileShape {
    /// Rows of C one workgroup covers (`BM`).
    pub(crate) fn rows(self) -> usize {
        (self.wg_y * self.tm) as usize
    }

    /// Columns of C one workgroup covers (`BN`).
    pub(crate) fn cols(self) -> usize {
        (self.wg_x * self.tn) as usize
    }

    /// Invocations of one workgroup.
    pub(crate) fn invocations(self) -> u32 {
        self.wg_x * self.wg_y
    }

    /// Bytes of workgroup memory: the two staged tiles and the loss reduction array.
    pub(crate) fn workgroup_bytes(self) -> u32 {
        4 * self.bk * (self.wg_y * self.tm + self.wg_x * self.tn) + 4 * MAX_INVOCATIONS
    }

    /// Whether the shader's assumptions hold: register block and depth multiples of 4, a
    /// power-of-two workgroup (the loss reduction halves it) of at most [`MAX_INVOCATIONS`].
    pub(crate) fn is_well_formed(self) -> bool {
        let pow2 = |x: u32| x.is_power_of_two();
        self.tm.is_multiple_of(4)
            && self.tn.is_multiple_of(4)
            && self.bk.is_multiple_of(4)
            && (4..=16).contains(&self.tm)
            && (4..=16).contains(&self.tn)
            && (4..=64).contains(&self.bk)
            && pow2(self.wg_x)
            && pow2(self.wg_y)
            && self.invocations() <= MAX_INVOCATIONS
    }

    /// Whether the device's limits admit this tile.
    pub(crate) fn fits(self, limits: &wgpu::Limits) -> bool {
        self.is_well_formed()
            && self.wg_x <= limits.max_compute_workgroup_size_x
            && self.wg_y <= limits.max_compute_workgroup_size_y
            && self.invocations() <= limits.max_compute_invocations_per_workgroup
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
    }
}

/// How A and B are stored: `T` marks an operand that is the transpose of a row-major matrix
/// (unit row stride), the others are row-major (unit column stride). The solvers use `AB`
/// (W H), `ABt` (V Hᵀ, H Hᵀ) and `AtB` (Wᵀ V, Wᵀ W).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Layout {
    /// `A · B`.
    AB,
    /// `Aᵀ · B`.
    AtB,
    /// `A · Bᵀ`.
    ABt,
    /// `Aᵀ · Bᵀ`.
    AtBt,
}

impl Layout {
    /// Every layout.
    pub(crate) const ALL: [Layout; 4] = [Layout::AB, Layout::AtB, Layout::ABt, Layout::AtBt];

    /// The layout of `A (rows x k) · B (k x cols)` from the operands' (row, column) strides,
    /// or `None` when an operand has no unit stride (then only the strided kernel applies). A
    /// dimension of length 1 has no stride that matters, so the other one decides.
    pub(crate) fn of(
        (a_rs, a_cs): (usize, usize),
        (b_rs, b_cs): (usize, usize),
        (rows, cols, k): (usize, usize, usize),
    ) -> Option<Layout> {
        // Row-major when the column stride is 1 (or there is one column); transposed when the
        // row stride is 1 (or there is one row).
        let transposed = |(rs, cs): (usize, usize), n_rows: usize, n_cols: usize| {
            if cs == 1 || n_cols == 1 {
                Some(false)
            } else if rs == 1 || n_rows == 1 {
                Some(true)
            } else {
                None
            }
        };
        Some(Layout::from_flags(
            transposed((a_rs, a_cs), rows, k)?,
            transposed((b_rs, b_cs), k, cols)?,
        ))
    }

    fn from_flags(a_t: bool, b_t: bool) -> Layout {
        match (a_t, b_t) {
            (false, false) => Layout::AB,
            (true, false) => Layout::AtB,
            (false, true) => Layout::ABt,
            (true, true) => Layout::AtBt,
        }
    }

    /// The override `A_T`: A is the transpose of a row-major matrix.
    pub(crate) fn a_t(self) -> bool {
        matches!(self, Layout::AtB | Layout::AtBt)
    }

    /// The override `B_T`: B is the transpose of a row-major matrix.
    pub(crate) fn b_t(self) -> bool {
        matches!(self, Layout::ABt | Layout::AtBt)
    }

    /// Its name in tables and in the tuning cache.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layout::AB => "AB",
            Layout::AtB => "AtB",
            Layout::ABt => "ABt",
            Layout::AtBt => "AtBt",
        }
    }

    /// The layout named `name` (inverse of [`name`](Self::name)).
    pub(crate) fn parse(name: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// One tiled-matmul pipeline besides its epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tiled {
    pub shape: TileShape,
    pub layout: Layout,
    /// A bound as `array<vec4<f32>>`.
    pub a_vec: bool,
    /// B bound as `array<vec4<f32>>`.
    pub b_vec: bool,
}

#[cfg(test)]
impl Tiled {
    /// The configuration the registered source's header spells out (16 x 16 invocations of
    /// 4 x 4, depth 16, `A · B`, scalar loads): what the reflection tests read.
    pub(crate) const DEFAULT: Tiled = Tiled {
        shape: TileShape {
            wg_x: 16,
            wg_y: 16,
            tm: 4,
            tn: 4,
            bk: 16,
        },
        layout: Layout::AB,
        a_vec: false,
        b_vec: false,
    };
}

/// Whether an operand at entry `off` of a buffer of `buf_bytes` bytes, with leading dimension
/// `lead` (the stride of its non-contiguous direction), can be read with vec4 loads: offset,
/// leading dimension and buffer length in whole vec4s (so every quad the shader reads as one
/// vec4 is 16-byte aligned and inside the buffer).
pub(crate) fn vec4_ok(off: usize, lead: usize, buf_bytes: u64) -> bool {
    off.is_multiple_of(4) && lead.is_multiple_of(4) && buf_bytes.is_multiple_of(16)
}

const HEADER_START: &str = "// header:\n";
const HEADER_END: &str = "// end of header\n";

/// The declaration of one operand (`name` at `binding`) and its load helpers: `<name>_one(e)`
/// the entry at flat index e, `<name>_quad(e)` the four entries from e (e a multiple of 4 when
/// `vec`).
fn operand_decl(name: &str, binding: u32, vec: bool) -> String {
    if vec {
        format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f32>>;\n\
             fn {name}_one(e: u32) -> f32 {{ return {name}[e >> 2u][e & 3u]; }}\n\
             fn {name}_quad(e: u32) -> vec4<f32> {{ return {name}[e >> 2u]; }}\n"
        )
    } else {
        format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<f32>;\n\
             fn {name}_one(e: u32) -> f32 {{ return {name}[e]; }}\n\
             fn {name}_quad(e: u32) -> vec4<f32> {{ \
             return vec4<f32>({name}[e], {name}[e + 1u], {name}[e + 2u], {name}[e + 3u]); }}\n"
        )
    }
}

/// The header of `shaders/matmul_tiled.wgsl` for one configuration.
pub(crate) fn header(t: Tiled) -> String {
    let s = t.shape;
    format!(
        "const WG_X: u32 = {}u;\nconst WG_Y: u32 = {}u;\nconst TM: u32 = {}u;\n\
         const TN: u32 = {}u;\nconst BK: u32 = {}u;\n{}{}",
        s.wg_x,
        s.wg_y,
        s.tm,
        s.tn,
        s.bk,
        operand_decl("a", 0, t.a_vec),
        operand_decl("b", 1, t.b_vec),
    )
}

/// The WGSL of one configuration: `module` (the registered source of the tiled matmul, prelude
/// included) with its header replaced by [`header`].
pub(crate) fn source(module: &str, t: Tiled) -> Result<String> {
    let bad = || NmfError::GpuShader {
        kernel: "matmul_tiled",
        message: "the tiled matmul's source has no replaceable header".into(),
    };
    if !t.shape.is_well_formed() {
        return Err(NmfError::GpuInternal {
            message: format!("tile {:?} breaks the tiled matmul's assumptions", t.shape),
        });
    }
    let start = module.find(HEADER_START).ok_or_else(bad)? + HEADER_START.len();
    let end = start + module[start..].find(HEADER_END).ok_or_else(bad)?;
    Ok(format!(
        "{}{}{}",
        &module[..start],
        header(t),
        &module[end..]
    ))
}
