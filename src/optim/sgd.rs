//! `torch.optim.SGD`, step for step: momentum, dampening, Nesterov, weight decay per group.

use std::ops::Range;

use rayon::prelude::*;

/// Hyper-parameters shared by all groups (weight decay is per group, see [`ParamGroup`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 disables the buffer).
    pub momentum: f32,
    /// Dampening of the gradient's share of the momentum buffer.
    pub dampening: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// A range of the flat parameter buffer with its own weight decay (PyTorch's parameter groups).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamGroup {
    /// Elements of the flat buffer in this group.
    pub range: Range<usize>,
    /// L2 penalty added to the gradient as `grad + weight_decay · param`.
    pub weight_decay: f32,
}

/// The optimizer state: one momentum buffer over the flat parameter vector.
#[derive(Debug, Clone)]
pub struct Sgd {
    config: SgdConfig,
    groups: Vec<ParamGroup>,
    /// Momentum buffer; empty until the first step (PyTorch's "buffer is None").
    momentum: Vec<f32>,
}

/// Chunk length for the parallel update: large enough that a task outweighs its scheduling.
const CHUNK: usize = 1 << 15;

impl Sgd {
    /// An optimizer over `groups`, which must not overlap.
    pub fn new(config: SgdConfig, groups: Vec<ParamGroup>) -> Self {
        Sgd {
            config,
            groups,
            momentum: Vec::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Changes the learning rate (schedules).
    pub fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }

    /// The first moment: PyTorch's `momentum_buffer` (empty before the first step), for
    /// checkpoints.
    pub fn first_moment(&self) -> &[f32] {
        &self.momentum
    }

    /// Restores a momentum buffer saved with [`Sgd::first_moment`].
    pub fn set_first_moment(&mut self, buf: Vec<f32>) {
        self.momentum = buf;
    }

    /// One update of `params` with `grad`, exactly as `torch.optim.SGD.step` (for-loop
    /// implementation):
    ///
    /// ```text
    /// d = g + wd·p                     (weight decay of the parameter's group)
    /// buf = d                          (first step)
    /// buf = momentum·buf + (1 − dampening)·d   (later steps)
    /// d = d + momentum·buf  if nesterov  else  buf
    /// p = p − lr·d
    /// ```
    ///
    /// Each "add with alpha" is a fused multiply-add, as in PyTorch's CPU kernels, so results
    /// match it bit for bit on machines with FMA.
    ///
    /// Returns whether every updated parameter is finite: a NaN or infinite gradient shows up
    /// here, in the same pass, at no extra cost.
    ///
    /// # Determinism
    /// Element-wise only: splitting the work over threads cannot change a bit.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) -> bool {
        assert_eq!(
            params.len(),
            grad.len(),
            "parameter and gradient lengths differ"
        );
        let (update, momentum) = self.begin(params.len());
        if params.len() >= 2 * CHUNK {
            if momentum.is_empty() {
                params
                    .par_chunks_mut(CHUNK)
                    .zip(grad.par_chunks(CHUNK))
                    .enumerate()
                    .map(|(i, (p, g))| update.apply(i * CHUNK, p, g, &mut []))
                    .reduce(|| true, |a, b| a & b)
            } else {
                params
                    .par_chunks_mut(CHUNK)
                    .zip(grad.par_chunks(CHUNK))
                    .zip(momentum.par_chunks_mut(CHUNK))
                    .enumerate()
                    .map(|(i, ((p, g), m))| update.apply(i * CHUNK, p, g, m))
                    .reduce(|| true, |a, b| a & b)
            }
        } else {
            update.apply(0, params, grad, momentum)
        }
    }

    /// Starts a step over `len` parameters: the update, fixed for the step, and the momentum
    /// buffer it updates (empty without momentum). [`SgdUpdate::apply`] then updates any
    /// ranges, in any order or in parallel, with [`Sgd::step`]'s arithmetic.
    pub fn begin(&mut self, len: usize) -> (SgdUpdate<'_>, &mut [f32]) {
        let first = self.config.momentum != 0.0 && self.momentum.is_empty();
        if first {
            self.momentum = vec![0.0; len];
        }
        (
            SgdUpdate {
                config: self.config,
                first,
                groups: &self.groups,
            },
            &mut self.momentum,
        )
    }
}

/// One SGD step's update, applied range by range (see [`Sgd::begin`]).
#[derive(Debug, Clone, Copy)]
pub struct SgdUpdate<'a> {
    config: SgdConfig,
    first: bool,
    groups: &'a [ParamGroup],
}

impl SgdUpdate<'_> {
    /// Updates the parameters `start..start + p.len()` (`p`, with their gradient `g` and
    /// momentum `m`, empty without momentum), group by group; returns whether every updated
    /// parameter is finite. Element-wise: the ranges cannot change a bit.
    pub fn apply(&self, start: usize, p: &mut [f32], g: &[f32], m: &mut [f32]) -> bool {
        let end = start + p.len();
        let mut finite = true;
        for group in self.groups {
            let (lo, hi) = (group.range.start.max(start), group.range.end.min(end));
            if lo >= hi {
                continue;
            }
            let r = lo - start..hi - start;
            let m: &mut [f32] = if m.is_empty() {
                &mut []
            } else {
                &mut m[r.clone()]
            };
            finite &= update(
                &mut p[r.clone()],
                &g[r],
                m,
                group.weight_decay,
                self.config,
                self.first,
            );
        }
        finite
    }
}

/// Updates one chunk; returns whether every new parameter is finite.
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], wd: f32, c: SgdConfig, first: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports FMA, checked just above.
        return unsafe { update_fma(p, g, m, wd, c, first) };
    }
    update_generic(p, g, m, wd, c, first)
}

/// The same loop compiled with FMA enabled, so `mul_add` is one instruction instead of a call.
///
/// # Safety
/// The CPU must support FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn update_fma(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    wd: f32,
    c: SgdConfig,
    first: bool,
) -> bool {
    update_generic(p, g, m, wd, c, first)
}

#[inline(always)]
fn update_generic(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    wd: f32,
    c: SgdConfig,
    first: bool,
) -> bool {
    let (lr, mu, damp) = (c.lr, c.momentum, 1.0 - c.dampening);
    let mut finite = true;
    if m.is_empty() {
        for (p, &g) in p.iter_mut().zip(g) {
            let d = if wd != 0.0 { p.mul_add(wd, g) } else { g };
            *p = d.mul_add(-lr, *p);
            finite &= p.is_finite();
        }
        return finite;
    }
    for ((p, &g), b) in p.iter_mut().zip(g).zip(m.iter_mut()) {
        let d = if wd != 0.0 { p.mul_add(wd, g) } else { g };
        *b = if first { d } else { d.mul_add(damp, *b * mu) };
        let d = if c.nesterov { b.mul_add(mu, d) } else { *b };
        *p = d.mul_add(-lr, *p);
        finite &= p.is_finite();
    }
    finite
}
