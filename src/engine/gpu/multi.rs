//! Several GPUs in one process ([`Backend::MultiGpu`](crate::Backend::MultiGpu)): V split into
//! row panels, one per device, each device a [`GpuEngine`] over its panel.
//!
//! With D devices and V's rows split `V = [V_1; …; V_D]` (device d holds `V_d`, m_d x n, in
//! proportion to the devices' relative speeds: those given with
//! [`GpuContext::with_relative_speed`], else equal on devices of one kind, else each device's
//! [`GpuContext::measure_speed`]), a factor W (m x r) lies in the same row panels `W = [W_1; …; W_D]`
//! and every other matrix (H, the Grams, the r x n products) has a whole copy on every device:
//!
//! ```text
//! V Hᵀ   = [V_1 Hᵀ; …; V_D Hᵀ]        each device its rows, nothing moves
//! Wᵀ V   = Σ_d W_dᵀ V_d               r x n per device, read back and summed on the host
//! Wᵀ W   = Σ_d W_dᵀ W_d               r x r per device, likewise
//! Wᵀ 1   = Σ_d W_dᵀ 1                 r x 1 (KL), zero sums replaced by 1 after the sum
//! Z Hᵀ, Wᵀ Z  (Z = V ⊘ WH, M ⊙ WH, the β blocks)   as V Hᵀ and Wᵀ V, Z_d formed on device d
//! D(V ‖ WH) = Σ_d D(V_d ‖ W_d H)       one loss per device, added in f64
//! ```
//!
//! A host sum is written back into every device's copy. The updates of W (multiplicative, HALS)
//! act on each row of W from that row's products and an r x r matrix, so each device updates
//! its panel; the updates of H run on every device's copy from the same summed inputs, so the
//! copies stay equal. Per iteration of a Frobenius fit (MU or HALS) the devices read back
//! `D·4·r·(n + r)` bytes (each its `W_dᵀ V_d` and `W_dᵀ W_d`) and are written as many (the sums);
//! V, W and H never move.
//!
//! The results equal one device's up to the order of f32 sums (the panels' partial products
//! are added on the host). A matrix found in the other layout than an operation needs (a
//! transpose of H used as W in symmetric fits) is moved through the host, correctly but at the
//! cost of a copy. Sparse V is refused (one device runs it).

use std::collections::HashMap;
use std::ops::Range;

use ndarray::{concatenate, s, Array2, ArrayView2, Axis};

use super::buffers::GpuMat;
use super::context::GpuContext;
use super::state::GpuEngine;
use super::GpuStats;
use crate::engine::data::{unsupported, DataOp};
use crate::engine::{Engine, FactorSums, Measure, MuDenominator, MuRule, Product, Shaped, Side};
use crate::error::{NmfError, Result};
use crate::options::{Loss, Regularization};

/// How a matrix lies on the devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spread {
    /// Row panels: device d holds the rows of its panel of V (the matrix has V's m rows).
    Rows,
    /// A whole copy on every device.
    Copies,
}

/// A matrix of the multi-device engine: one part per device (see [`Spread`]).
#[derive(Debug)]
pub(crate) struct MultiMat {
    rows: usize,
    cols: usize,
    spread: Spread,
    parts: Vec<GpuMat>,
}

impl Shaped for MultiMat {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

/// The engine over one V split across several devices.
pub(crate) struct MultiGpuEngine {
    devices: Vec<GpuEngine>,
    /// The rows of V on each device.
    bounds: Vec<Range<usize>>,
    m: usize,
    n: usize,
    /// Per-device pieces of the sums formed on the host, kept by shape across calls.
    scratch: HashMap<(usize, usize), Vec<Vec<GpuMat>>>,
    /// A column of ones per device (its panel's rows), for the column sums of W.
    ones: Option<Vec<GpuMat>>,
}

/// The row panels of `m` rows over devices of relative speeds `weights`: contiguous, in order,
/// in proportion to the weights (equal when one is not a positive finite number), every panel
/// at least one row; with more devices than rows, the last devices get no panel.
pub(crate) fn row_panels(m: usize, weights: &[f64]) -> Vec<Range<usize>> {
    let d = weights.len().min(m).max(1);
    let w: Vec<f64> = match weights.get(..d) {
        Some(w) if w.iter().all(|w| w.is_finite() && *w > 0.0) => w.to_vec(),
        _ => vec![1.0; d],
    };
    let total: f64 = w.iter().sum();
    let mut panels = Vec::with_capacity(d);
    let (mut start, mut acc) = (0usize, 0.0f64);
    for (k, wk) in w.iter().enumerate() {
        acc += wk;
        let end = if k + 1 == d {
            m
        } else {
            // At least one row here, and one left for each later panel.
            ((m as f64 * acc / total).round() as usize).clamp(start + 1, m - (d - k - 1))
        };
        panels.push(start..end);
        start = end;
    }
    panels
}

/// The weights of the devices' row panels: the speeds given with
/// [`GpuContext::with_relative_speed`] when every device has one; equal on devices of one kind
/// (the same adapter name, vendor and device id, driver and API: their speeds are the same);
/// else each device's [`GpuContext::measure_speed`], timed now.
fn panel_weights(contexts: &[GpuContext]) -> Result<Vec<f64>> {
    if let Some(given) = contexts.iter().map(GpuContext::relative_speed).collect() {
        return Ok(given);
    }
    let kind = |c: &GpuContext| {
        let i = c.adapter_info();
        (i.name, i.vendor, i.device, i.driver, i.backend)
    };
    let first = contexts.first().map(kind);
    if contexts.iter().all(|c| Some(kind(c)) == first) {
        return Ok(vec![1.0; contexts.len()]);
    }
    let speeds = contexts
        .iter()
        .map(GpuContext::measure_speed)
        .collect::<Result<Vec<f64>>>()?;
    log::info!("multi-GPU engine: measured speeds {speeds:?} GFLOP/s");
    Ok(speeds)
}

fn no_device() -> NmfError {
    NmfError::GpuNoAdapter {
        reason: "the multi-GPU engine was given no device".into(),
    }
}

fn shape(what: &'static str, x: &MultiMat, rows: usize, cols: usize) -> Result<()> {
    crate::engine::data::check_shape(what, x, (rows, cols))
}

impl MultiGpuEngine {
    /// Split `v` (m x n) into row panels over `contexts` and upload each to its device.
    pub(crate) fn new(contexts: &[GpuContext], v: ArrayView2<'_, f32>) -> Result<Self> {
        if contexts.is_empty() {
            return Err(no_device());
        }
        let (m, n) = v.dim();
        let weights = panel_weights(contexts)?;
        let bounds = row_panels(m, &weights);
        let devices = bounds
            .iter()
            .zip(contexts)
            .map(|(rows, ctx)| GpuEngine::new(ctx, v.slice(s![rows.clone(), ..])))
            .collect::<Result<Vec<_>>>()?;
        log::info!(
            "multi-GPU engine: V {m} x {n} in row panels {:?} over {} devices",
            bounds,
            devices.len()
        );
        Ok(MultiGpuEngine {
            devices,
            bounds,
            m,
            n,
            scratch: HashMap::new(),
            ones: None,
        })
    }

    /// The layout a new matrix of `rows` rows takes: row panels when it has V's rows.
    fn natural(&self, rows: usize) -> Spread {
        if rows == self.m {
            Spread::Rows
        } else {
            Spread::Copies
        }
    }

    fn alloc(&mut self, rows: usize, cols: usize, spread: Spread) -> Result<MultiMat> {
        let mut parts = Vec::with_capacity(self.devices.len());
        for (dev, b) in self.devices.iter_mut().zip(&self.bounds) {
            let part_rows = match spread {
                Spread::Rows => b.len(),
                Spread::Copies => rows,
            };
            parts.push(dev.zeros(part_rows, cols)?);
        }
        Ok(MultiMat {
            rows,
            cols,
            spread,
            parts,
        })
    }

    /// Write the host matrix `a` (the shape of `out`) into every part of `out`.
    fn write(&mut self, a: ArrayView2<'_, f32>, out: &mut MultiMat) -> Result<()> {
        for ((dev, b), part) in self
            .devices
            .iter_mut()
            .zip(&self.bounds)
            .zip(&mut out.parts)
        {
            match out.spread {
                Spread::Rows => dev.upload_into(a.slice(s![b.clone(), ..]), part)?,
                Spread::Copies => dev.upload_into(a, part)?,
            }
        }
        Ok(())
    }

    /// `x` in the layout `spread`: `None` when it already is, else a copy moved through the host.
    fn respread(&mut self, x: &MultiMat, spread: Spread) -> Result<Option<MultiMat>> {
        if x.spread == spread {
            return Ok(None);
        }
        if spread == Spread::Rows && x.rows != self.m {
            return Err(NmfError::ShapeMismatch {
                what: "a matrix split into V's row panels",
                expected: format!("{} rows", self.m),
                found: format!("{} x {}", x.rows, x.cols),
            });
        }
        let a = self.download(x)?;
        let mut out = self.alloc(x.rows, x.cols, spread)?;
        self.write(a.view(), &mut out)?;
        Ok(Some(out))
    }

    /// Put `x` itself in the layout `spread`, keeping its contents.
    fn make(&mut self, x: &mut MultiMat, spread: Spread) -> Result<()> {
        if let Some(moved) = self.respread(x, spread)? {
            *x = moved;
        }
        Ok(())
    }

    /// Give the output `out` the layout `spread` (its contents are about to be overwritten).
    fn ensure(&mut self, out: &mut MultiMat, spread: Spread) -> Result<()> {
        if out.spread != spread {
            *out = self.alloc(out.rows, out.cols, spread)?;
        }
        Ok(())
    }

    /// One `rows x cols` work matrix per device, kept across calls.
    fn take_scratch(&mut self, rows: usize, cols: usize) -> Result<Vec<GpuMat>> {
        if let Some(set) = self.scratch.get_mut(&(rows, cols)).and_then(|v| v.pop()) {
            return Ok(set);
        }
        self.devices
            .iter_mut()
            .map(|dev| dev.zeros(rows, cols))
            .collect()
    }

    /// Submit every device's pending work, so that the devices run at once before a read-back.
    fn flush(&mut self) -> Result<()> {
        for dev in &mut self.devices {
            dev.sched.submit(&dev.ctx)?;
        }
        Ok(())
    }

    /// `out` (copies) `= post(Σ_d pieces[d])`, summed on the host in device order.
    fn reduce(
        &mut self,
        pieces: Vec<GpuMat>,
        out: &mut MultiMat,
        post: impl Fn(&mut Array2<f32>),
    ) -> Result<()> {
        self.flush()?;
        let mut total: Option<Array2<f32>> = None;
        for (dev, piece) in self.devices.iter_mut().zip(&pieces) {
            let a = dev.download(piece)?;
            total = Some(match total {
                None => a,
                Some(t) => t + &a,
            });
        }
        let mut total = total.ok_or_else(no_device)?;
        post(&mut total);
        if let Some(p) = pieces.first() {
            let key = (p.rows, p.cols);
            self.scratch.entry(key).or_default().push(pieces);
        }
        self.ensure(out, Spread::Copies)?;
        self.write(total.view(), out)
    }

    /// Run `f` on every device with its index.
    fn each(&mut self, mut f: impl FnMut(usize, &mut GpuEngine) -> Result<()>) -> Result<()> {
        for (d, dev) in self.devices.iter_mut().enumerate() {
            f(d, dev)?;
        }
        Ok(())
    }

    /// The layout an operation on the factor `x` of `side` runs in: row panels for W (V's
    /// rows), copies for H and the small matrices.
    fn factor_spread(&self, x: &MultiMat, side: Side) -> Spread {
        if side == Side::Left && x.rows == self.m {
            Spread::Rows
        } else {
            Spread::Copies
        }
    }

    /// The layout of an update of `x` ([`Self::factor_spread`]), with `x` put in it and `num`
    /// (shaped like `x`) moved to it when it lies otherwise.
    fn update_layout(
        &mut self,
        x: &mut MultiMat,
        num: &MultiMat,
        side: Side,
    ) -> Result<(Spread, Option<MultiMat>)> {
        let spread = self.factor_spread(x, side);
        self.make(x, spread)?;
        Ok((spread, self.respread(num, spread)?))
    }

    /// `out = Z Hᵀ` (Left, per panel) or `Wᵀ Z` (Right, summed), with `f` the product on one
    /// device; `w` in row panels, `h` copied.
    fn blockwise(
        &mut self,
        w: &MultiMat,
        h: &MultiMat,
        side: Side,
        out: &mut MultiMat,
        mut f: impl FnMut(usize, &mut GpuEngine, &GpuMat, &GpuMat, &mut GpuMat) -> Result<()>,
    ) -> Result<()> {
        let wr = self.respread(w, Spread::Rows)?;
        let w = wr.as_ref().unwrap_or(w);
        let hc = self.respread(h, Spread::Copies)?;
        let h = hc.as_ref().unwrap_or(h);
        match side {
            Side::Left => {
                shape("a product with V's rows", out, self.m, w.cols)?;
                self.ensure(out, Spread::Rows)?;
                self.each(|d, dev| f(d, dev, &w.parts[d], &h.parts[d], &mut out.parts[d]))
            }
            Side::Right => {
                shape("a product with V's columns", out, w.cols, self.n)?;
                let mut pieces = self.take_scratch(w.cols, self.n)?;
                self.each(|d, dev| f(d, dev, &w.parts[d], &h.parts[d], &mut pieces[d]))?;
                self.reduce(pieces, out, |_| {})
            }
        }
    }

    /// `Σ_d f(device d, W_d, H)` in f64, `w` in row panels and `h` copied.
    fn summed(
        &mut self,
        w: &MultiMat,
        h: &MultiMat,
        mut f: impl FnMut(usize, &mut GpuEngine, &GpuMat, &GpuMat) -> Result<f64>,
    ) -> Result<f64> {
        let wr = self.respread(w, Spread::Rows)?;
        let w = wr.as_ref().unwrap_or(w);
        let hc = self.respread(h, Spread::Copies)?;
        let h = hc.as_ref().unwrap_or(h);
        self.flush()?;
        let mut total = 0.0;
        for (d, dev) in self.devices.iter_mut().enumerate() {
            total += f(d, dev, &w.parts[d], &h.parts[d])?;
        }
        Ok(total)
    }
}

impl Engine for MultiGpuEngine {
    type Mat = MultiMat;

    fn name(&self) -> String {
        let names: Vec<String> = self
            .devices
            .iter()
            .zip(&self.bounds)
            .map(|(dev, b)| format!("{} rows {}..{}", dev.name(), b.start, b.end))
            .collect();
        format!("gpu x{} [{}]", self.devices.len(), names.join("; "))
    }

    fn dims(&self) -> (usize, usize) {
        (self.m, self.n)
    }

    fn upload(&mut self, a: ArrayView2<'_, f32>) -> Result<MultiMat> {
        let (rows, cols) = a.dim();
        let spread = self.natural(rows);
        let mut parts = Vec::with_capacity(self.devices.len());
        for (dev, b) in self.devices.iter_mut().zip(&self.bounds) {
            parts.push(match spread {
                Spread::Rows => dev.upload(a.slice(s![b.clone(), ..]))?,
                Spread::Copies => dev.upload(a)?,
            });
        }
        Ok(MultiMat {
            rows,
            cols,
            spread,
            parts,
        })
    }

    fn upload_into(&mut self, a: ArrayView2<'_, f32>, out: &mut MultiMat) -> Result<()> {
        shape("the matrix uploaded into", out, a.nrows(), a.ncols())?;
        self.write(a, out)
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<MultiMat> {
        let spread = self.natural(rows);
        self.alloc(rows, cols, spread)
    }

    fn download(&mut self, a: &MultiMat) -> Result<Array2<f32>> {
        match a.spread {
            Spread::Copies => {
                let (dev, part) = self
                    .devices
                    .first_mut()
                    .zip(a.parts.first())
                    .ok_or_else(no_device)?;
                dev.download(part)
            }
            Spread::Rows => {
                let mut panels = Vec::with_capacity(a.parts.len());
                for (dev, part) in self.devices.iter_mut().zip(&a.parts) {
                    panels.push(dev.download(part)?);
                }
                let views: Vec<_> = panels.iter().map(|p| p.view()).collect();
                concatenate(Axis(0), &views).map_err(|e| NmfError::GpuInternal {
                    message: format!("joining the row panels of a matrix: {e}"),
                })
            }
        }
    }

    /// The products with V through this engine's own operations below (each device's engine
    /// holds its rows of V behind its data operator).
    fn product(&mut self, p: Product<'_, MultiMat>, out: &mut MultiMat) -> Result<()> {
        match p {
            Product::VHt(h) => self.v_ht(h, out),
            Product::WtV(w) => self.wt_v(w, out),
            Product::Kl(f) => self.kl_numerator(f.w, f.h, f.side, out),
            Product::Masked(mask, f) => self.masked_product(mask, f.w, f.h, f.side, out),
            Product::Pattern(_) => Err(unsupported(DataOp::Pattern)),
        }
    }

    fn measure(&mut self, w: &MultiMat, h: &MultiMat, what: Measure<'_, MultiMat>) -> Result<f64> {
        match what {
            Measure::Divergence(loss, eps) => self.loss(w, h, loss, eps),
            Measure::Masked(mask) => self.masked_loss(mask, w, h),
            Measure::Pattern => Err(unsupported(DataOp::Pattern)),
        }
    }

    fn v_ht(&mut self, h: &MultiMat, out: &mut MultiMat) -> Result<()> {
        let r = h.rows;
        shape("H (r x n) in V Hᵀ", h, r, self.n)?;
        shape("the output of V Hᵀ", out, self.m, r)?;
        let hc = self.respread(h, Spread::Copies)?;
        let h = hc.as_ref().unwrap_or(h);
        self.ensure(out, Spread::Rows)?;
        self.each(|d, dev| dev.v_ht(&h.parts[d], &mut out.parts[d]))
    }

    fn wt_v(&mut self, w: &MultiMat, out: &mut MultiMat) -> Result<()> {
        let r = w.cols;
        shape("W (m x r) in Wᵀ V", w, self.m, r)?;
        shape("the output of Wᵀ V", out, r, self.n)?;
        let wr = self.respread(w, Spread::Rows)?;
        let w = wr.as_ref().unwrap_or(w);
        let mut pieces = self.take_scratch(r, self.n)?;
        self.each(|d, dev| dev.wt_v(&w.parts[d], &mut pieces[d]))?;
        self.reduce(pieces, out, |_| {})
    }

    fn kl_numerator(
        &mut self,
        w: &MultiMat,
        h: &MultiMat,
        side: Side,
        out: &mut MultiMat,
    ) -> Result<()> {
        self.blockwise(w, h, side, out, |_, dev, w, h, o| {
            dev.kl_numerator(w, h, side, o)
        })
    }

    fn beta_products(
        &mut self,
        w: &MultiMat,
        h: &MultiMat,
        side: Side,
        beta: f32,
        num: &mut MultiMat,
        den: &mut MultiMat,
    ) -> Result<()> {
        let wr = self.respread(w, Spread::Rows)?;
        let w = wr.as_ref().unwrap_or(w);
        let hc = self.respread(h, Spread::Copies)?;
        let h = hc.as_ref().unwrap_or(h);
        let r = w.cols;
        match side {
            Side::Left => {
                shape("the numerator of a β-divergence update", num, self.m, r)?;
                shape("the denominator of a β-divergence update", den, self.m, r)?;
                self.ensure(num, Spread::Rows)?;
                self.ensure(den, Spread::Rows)?;
                self.each(|d, dev| {
                    let (n_d, d_d) = (&mut num.parts[d], &mut den.parts[d]);
                    dev.beta_products(&w.parts[d], &h.parts[d], side, beta, n_d, d_d)
                })
            }
            Side::Right => {
                shape("the numerator of a β-divergence update", num, r, self.n)?;
                shape("the denominator of a β-divergence update", den, r, self.n)?;
                let mut nums = self.take_scratch(r, self.n)?;
                let mut dens = self.take_scratch(r, self.n)?;
                self.each(|d, dev| {
                    let (n_d, d_d) = (&mut nums[d], &mut dens[d]);
                    dev.beta_products(&w.parts[d], &h.parts[d], side, beta, n_d, d_d)
                })?;
                self.reduce(nums, num, |_| {})?;
                self.reduce(dens, den, |_| {})
            }
        }
    }

    fn pin(&mut self, x: &mut MultiMat, anchor: &MultiMat) -> Result<()> {
        shape("the anchor of pinned entries", anchor, x.rows, x.cols)?;
        let ar = self.respread(anchor, x.spread)?;
        let anchor = ar.as_ref().unwrap_or(anchor);
        self.each(|d, dev| dev.pin(&mut x.parts[d], &anchor.parts[d]))
    }

    fn factor_sums(&mut self, x: &MultiMat, which: FactorSums, out: &mut MultiMat) -> Result<()> {
        if which == FactorSums::ColumnsOfW && x.rows == self.m {
            // Σ_d W_dᵀ 1 (r x 1), zero sums replaced by 1 after the sum.
            shape("the column sums of W", out, x.cols, 1)?;
            let xr = self.respread(x, Spread::Rows)?;
            let x = xr.as_ref().unwrap_or(x);
            if self.ones.is_none() {
                let mut ones = Vec::with_capacity(self.devices.len());
                for (dev, b) in self.devices.iter_mut().zip(&self.bounds) {
                    ones.push(dev.upload(Array2::<f32>::ones((b.len(), 1)).view())?);
                }
                self.ones = Some(ones);
            }
            let mut pieces = self.take_scratch(x.cols, 1)?;
            let ones = self.ones.take().unwrap_or_default();
            let res = self.each(|d, dev| match ones.get(d) {
                Some(one) => dev.cross(&x.parts[d], one, Side::Left, &mut pieces[d]),
                None => Err(no_device()),
            });
            self.ones = Some(ones);
            res?;
            return self.reduce(pieces, out, |s| {
                s.mapv_inplace(|v| if v == 0.0 { 1.0 } else { v })
            });
        }
        let xc = self.respread(x, Spread::Copies)?;
        let x = xc.as_ref().unwrap_or(x);
        self.ensure(out, Spread::Copies)?;
        self.each(|d, dev| dev.factor_sums(&x.parts[d], which, &mut out.parts[d]))
    }

    #[allow(clippy::too_many_arguments)]
    fn mu_step(
        &mut self,
        x: &mut MultiMat,
        num: &MultiMat,
        den: MuDenominator<'_, MultiMat>,
        side: Side,
        reg: Regularization,
        eps: f32,
        rule: MuRule,
    ) -> Result<()> {
        let (spread, nr) = self.update_layout(x, num, side)?;
        let num = nr.as_ref().unwrap_or(num);
        // The r x r and r x 1 denominators are copied; an elementwise one lies like X.
        let (dm, dspread) = match den {
            MuDenominator::Gram(g) | MuDenominator::Product(g) | MuDenominator::Sums(g) => {
                (g, Spread::Copies)
            }
            MuDenominator::Elementwise(e) => (e, spread),
        };
        let dr = self.respread(dm, dspread)?;
        let dm = dr.as_ref().unwrap_or(dm);
        self.each(|d, dev| {
            let part = &dm.parts[d];
            let den = match den {
                MuDenominator::Gram(_) => MuDenominator::Gram(part),
                MuDenominator::Product(_) => MuDenominator::Product(part),
                MuDenominator::Sums(_) => MuDenominator::Sums(part),
                MuDenominator::Elementwise(_) => MuDenominator::Elementwise(part),
            };
            dev.mu_step(&mut x.parts[d], &num.parts[d], den, side, reg, eps, rule)
        })
    }

    fn cross(&mut self, x: &MultiMat, y: &MultiMat, side: Side, out: &mut MultiMat) -> Result<()> {
        if self.factor_spread(x, side) == Spread::Rows {
            shape("the second factor of xᵀ y", y, x.rows, y.cols)?;
            shape("the output of a small product", out, x.cols, y.cols)?;
            let xr = self.respread(x, Spread::Rows)?;
            let x = xr.as_ref().unwrap_or(x);
            let yr = self.respread(y, Spread::Rows)?;
            let y = yr.as_ref().unwrap_or(y);
            let mut pieces = self.take_scratch(x.cols, y.cols)?;
            self.each(|d, dev| dev.cross(&x.parts[d], &y.parts[d], side, &mut pieces[d]))?;
            return self.reduce(pieces, out, |_| {});
        }
        let xc = self.respread(x, Spread::Copies)?;
        let x = xc.as_ref().unwrap_or(x);
        let yc = self.respread(y, Spread::Copies)?;
        let y = yc.as_ref().unwrap_or(y);
        self.ensure(out, Spread::Copies)?;
        self.each(|d, dev| dev.cross(&x.parts[d], &y.parts[d], side, &mut out.parts[d]))
    }

    fn mul_small(
        &mut self,
        x: &MultiMat,
        s: &MultiMat,
        side: Side,
        out: &mut MultiMat,
    ) -> Result<()> {
        let spread = self.factor_spread(x, side);
        shape(
            "the output of a product with a small matrix",
            out,
            x.rows,
            x.cols,
        )?;
        let xr = self.respread(x, spread)?;
        let x = xr.as_ref().unwrap_or(x);
        let sc = self.respread(s, Spread::Copies)?;
        let s = sc.as_ref().unwrap_or(s);
        self.ensure(out, spread)?;
        self.each(|d, dev| dev.mul_small(&x.parts[d], &s.parts[d], side, &mut out.parts[d]))
    }

    fn transpose(&mut self, x: &MultiMat, out: &mut MultiMat) -> Result<()> {
        shape("the output of a transpose", out, x.cols, x.rows)?;
        let xc = self.respread(x, Spread::Copies)?;
        let x = xc.as_ref().unwrap_or(x);
        self.ensure(out, Spread::Copies)?;
        self.each(|d, dev| dev.transpose(&x.parts[d], &mut out.parts[d]))
    }

    fn axpby(&mut self, a: f32, x: &MultiMat, b: f32, y: &mut MultiMat) -> Result<()> {
        shape("y in a x + b y", y, x.rows, x.cols)?;
        let spread = if x.spread == Spread::Rows || y.spread == Spread::Rows {
            Spread::Rows
        } else {
            Spread::Copies
        };
        self.make(y, spread)?;
        let xr = self.respread(x, spread)?;
        let x = xr.as_ref().unwrap_or(x);
        self.each(|d, dev| dev.axpby(a, &x.parts[d], b, &mut y.parts[d]))
    }

    fn masked_product(
        &mut self,
        mask: &MultiMat,
        w: &MultiMat,
        h: &MultiMat,
        side: Side,
        out: &mut MultiMat,
    ) -> Result<()> {
        shape("the mask (m x n)", mask, self.m, self.n)?;
        let mr = self.respread(mask, Spread::Rows)?;
        let mask = mr.as_ref().unwrap_or(mask);
        self.blockwise(w, h, side, out, |d, dev, w, h, o| {
            dev.masked_product(&mask.parts[d], w, h, side, o)
        })
    }

    fn masked_loss(&mut self, mask: &MultiMat, w: &MultiMat, h: &MultiMat) -> Result<f64> {
        shape("the mask (m x n)", mask, self.m, self.n)?;
        let mr = self.respread(mask, Spread::Rows)?;
        let mask = mr.as_ref().unwrap_or(mask);
        self.summed(w, h, |d, dev, w, h| dev.masked_loss(&mask.parts[d], w, h))
    }

    fn hals_step(
        &mut self,
        x: &mut MultiMat,
        num: &MultiMat,
        gram: &MultiMat,
        side: Side,
        reg: Regularization,
    ) -> Result<()> {
        let (_, nr) = self.update_layout(x, num, side)?;
        let num = nr.as_ref().unwrap_or(num);
        let gc = self.respread(gram, Spread::Copies)?;
        let gram = gc.as_ref().unwrap_or(gram);
        self.each(|d, dev| dev.hals_step(&mut x.parts[d], &num.parts[d], &gram.parts[d], side, reg))
    }

    fn loss(&mut self, w: &MultiMat, h: &MultiMat, loss: Loss, eps: f32) -> Result<f64> {
        shape("W (m x r) in a loss", w, self.m, w.cols)?;
        self.summed(w, h, |_, dev, w, h| dev.loss(w, h, loss, eps))
    }

    fn set_batch(&mut self, v: Array2<f32>) -> Result<()> {
        if v.nrows() != self.m {
            return Err(NmfError::ShapeMismatch {
                what: "a batch of samples",
                expected: format!("{} rows (features)", self.m),
                found: format!("{} x {}", v.nrows(), v.ncols()),
            });
        }
        for (dev, b) in self.devices.iter_mut().zip(&self.bounds) {
            dev.set_batch(v.slice(s![b.clone(), ..]).to_owned())?;
        }
        self.n = v.ncols();
        Ok(())
    }

    fn stats(&self) -> Option<GpuStats> {
        self.devices
            .iter()
            .filter_map(|dev| dev.stats())
            .reduce(|a, b| a.plus(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::row_panels;

    #[test]
    fn row_panels_follow_the_speeds_and_cover_every_row() {
        assert_eq!(row_panels(10, &[f64::NAN, 1.0]), vec![0..5, 5..10]);
        assert_eq!(row_panels(37, &[1.0, 1.0]), vec![0..19, 19..37]);
        assert_eq!(row_panels(12, &[3.0, 1.0]), vec![0..9, 9..12]);
        // Every panel at least one row, however slow its device.
        assert_eq!(row_panels(4, &[1000.0, 1.0, 1.0]), vec![0..2, 2..3, 3..4]);
        // More devices than rows: the last ones are left out.
        assert_eq!(row_panels(2, &[1.0, 1.0, 1.0]), vec![0..1, 1..2]);
        assert_eq!(row_panels(1, &[2.0]), vec![0..1]);
    }
}
