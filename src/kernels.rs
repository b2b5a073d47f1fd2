//! The CPU engine's products, exposed (doc-hidden) for the criterion benches only; not part of
//! the supported API.

use ndarray::{Array2, ArrayView2};

use crate::engine::cpu::CpuEngine;
use crate::engine::{Engine, Side};
use crate::error::Result;

/// The products one Frobenius iteration computes on the CPU, over a borrowed V.
pub struct CpuProducts<'a> {
    engine: CpuEngine<'a>,
}

impl<'a> CpuProducts<'a> {
    /// Wrap V (m x n).
    pub fn new(v: ArrayView2<'a, f32>) -> Self {
        CpuProducts {
            engine: CpuEngine::new(v),
        }
    }
    /// `out = V Hᵀ` (m x r).
    pub fn v_ht(&mut self, h: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.v_ht(h, out)
    }
    /// `out = Wᵀ V` (r x n).
    pub fn wt_v(&mut self, w: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.wt_v(w, out)
    }
    /// `out = H Hᵀ` (r x r).
    pub fn h_ht(&mut self, h: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.gram(h, Side::Right, out)
    }
    /// `out = Wᵀ W` (r x r).
    pub fn wt_w(&mut self, w: &Array2<f32>, out: &mut Array2<f32>) -> Result<()> {
        self.engine.gram(w, Side::Left, out)
    }
}
