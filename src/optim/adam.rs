//! `torch.optim.Adam` and `torch.optim.AdamW`, step for step, over the flat parameter buffer.

use rayon::prelude::*;

use super::ParamGroup;

/// Hyper-parameters shared by all groups (weight decay is per group, see [`ParamGroup`]).
///
/// The values enter PyTorch's double-precision scalar arithmetic (bias corrections, step size)
/// as the decimal numbers they print as, so `0.9` here behaves like Python's `0.9`, not like
/// the `f32` nearest to it widened to `f64`; see [`Adam::step`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the running mean of gradients (PyTorch's `betas[0]`).
    pub beta1: f32,
    /// Decay of the running mean of squared gradients (PyTorch's `betas[1]`).
    pub beta2: f32,
    /// Added to the denominator for numerical stability.
    pub eps: f32,
    /// AdamW: decay the parameter directly (`p ← p·(1 − lr·wd)`) before the update, instead of
    /// Adam's L2 penalty added to the gradient (`g ← g + wd·p`).
    pub decoupled: bool,
}

impl Default for AdamConfig {
    /// PyTorch's defaults: `lr=1e-3, betas=(0.9, 0.999), eps=1e-8`, plain Adam.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decoupled: false,
        }
    }
}

/// The optimizer state: two moment buffers over the flat parameter vector and the step count.
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    groups: Vec<ParamGroup>,
    /// First moment; empty until the first step (PyTorch creates its state lazily too).
    exp_avg: Vec<f32>,
    /// Second moment; empty until the first step.
    exp_avg_sq: Vec<f32>,
    /// Updates taken so far (PyTorch's `state["step"]`, shared by every parameter here).
    step: u64,
    /// Each group's weight decay for the step in progress (kept: no allocation per step).
    decays: Vec<Decay>,
}

/// Chunk length for the parallel update: large enough that a task outweighs its scheduling.
const CHUNK: usize = 1 << 15;

/// The per-step scalars, rounded to `f32` where PyTorch's kernels round them.
#[derive(Debug, Clone, Copy)]
struct Scalars {
    /// `1 − beta1`, the `lerp` weight.
    lerp_weight: f32,
    beta2: f32,
    /// `1 − beta2`, the `addcmul` value.
    one_minus_beta2: f32,
    /// `sqrt(1 − beta2^step)`.
    bias_correction2_sqrt: f32,
    eps: f32,
    /// `−lr / (1 − beta1^step)`, the `addcdiv` value.
    neg_step_size: f32,
}

impl Adam {
    /// An optimizer over `groups`, which must not overlap.
    pub fn new(config: AdamConfig, groups: Vec<ParamGroup>) -> Self {
        Adam {
            config,
            groups,
            decays: Vec::new(),
            exp_avg: Vec::new(),
            exp_avg_sq: Vec::new(),
            step: 0,
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Changes the learning rate (schedules).
    pub fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }

    /// The first moment: PyTorch's `exp_avg` (empty before the first step), for checkpoints.
    pub fn first_moment(&self) -> &[f32] {
        &self.exp_avg
    }

    /// The second moment: PyTorch's `exp_avg_sq` (empty before the first step), for
    /// checkpoints.
    pub fn second_moment(&self) -> &[f32] {
        &self.exp_avg_sq
    }

    /// Updates taken so far; the bias corrections depend on it, so checkpoints must keep it.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Restores the state saved with [`Adam::first_moment`], [`Adam::second_moment`] and
    /// [`Adam::steps`]. Empty buffers with `steps == 0` are the state of a fresh optimizer.
    ///
    /// # Panics
    /// If the two buffers differ in length, or if exactly one of "the buffers are empty" and
    /// "`steps` is 0" holds (a state PyTorch cannot be in either).
    pub fn restore(&mut self, exp_avg: Vec<f32>, exp_avg_sq: Vec<f32>, steps: u64) {
        assert_eq!(
            exp_avg.len(),
            exp_avg_sq.len(),
            "Adam state: exp_avg and exp_avg_sq lengths differ"
        );
        assert_eq!(
            exp_avg.is_empty(),
            steps == 0,
            "Adam state: {} moment elements with {steps} steps taken",
            exp_avg.len()
        );
        self.exp_avg = exp_avg;
        self.exp_avg_sq = exp_avg_sq;
        self.step = steps;
    }

    /// One update of `params` with `grad`, exactly as `torch.optim.Adam.step` (or `AdamW`,
    /// if [`AdamConfig::decoupled`]) in its single-tensor implementation (`foreach=False`):
    ///
    /// ```text
    /// step += 1
    /// p = p·(1 − lr·wd)            (AdamW)       g = g + wd·p   (Adam with weight decay)
    /// m = m.lerp(g, 1 − β1)
    /// v = v·β2 + (1 − β2)·g·g
    /// denom = sqrt(v) / sqrt(1 − β2^step) + eps
    /// p = p − (lr / (1 − β1^step))·m / denom
    /// ```
    ///
    /// Like PyTorch, the scalars (`1 − lr·wd`, the bias corrections, the step size) are
    /// computed in `f64` from the decimal values of the configuration and rounded to `f32`
    /// once; the element-wise operations are PyTorch's CPU kernels: `lerp` and `addcmul` fused
    /// (one rounding), `add(alpha)` fused, division and `addcdiv` as written.
    ///
    /// Returns whether every updated parameter is finite: a NaN or infinite gradient shows up
    /// here, in the same pass, at no extra cost.
    ///
    /// # Exactness
    /// Bit for bit PyTorch's result except for its square root: PyTorch's CPU `sqrt` (Intel
    /// MKL's vector math, high-accuracy mode) is not correctly rounded and lands one ulp low
    /// on about 0.6% of inputs, which moves the parameters by at most an ulp or two. The
    /// moments (`m`, `v`) do not go through the square root and match exactly.
    ///
    /// # Determinism
    /// Element-wise only: splitting the work over threads cannot change a bit.
    ///
    /// # Panics
    /// If `params` and `grad` differ in length, or if restored state does not match their
    /// length.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) -> bool {
        assert_eq!(
            params.len(),
            grad.len(),
            "parameter and gradient lengths differ"
        );
        let (update, m, v) = self.begin(params.len());
        if params.len() >= 2 * CHUNK {
            params
                .par_chunks_mut(CHUNK)
                .zip(grad.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .enumerate()
                .map(|(i, (((p, g), m), v))| update.apply(i * CHUNK, p, g, m, v))
                .reduce(|| true, |a, b| a & b)
        } else {
            update.apply(0, params, grad, m, v)
        }
    }

    /// Starts a step over `len` parameters (the step count grows, the scalars are fixed): the
    /// update and the two moments it updates. [`AdamUpdate::apply`] then updates any ranges,
    /// in any order or in parallel, with [`Adam::step`]'s arithmetic.
    ///
    /// # Panics
    /// If restored state does not match `len`.
    pub fn begin(&mut self, len: usize) -> (AdamUpdate<'_>, &mut [f32], &mut [f32]) {
        if self.exp_avg.is_empty() {
            self.exp_avg = vec![0.0; len];
            self.exp_avg_sq = vec![0.0; len];
        }
        assert_eq!(
            self.exp_avg.len(),
            len,
            "Adam state has {} elements but there are {len} parameters",
            self.exp_avg.len(),
        );
        self.step += 1;
        let c = self.config;
        let (lr, beta1, beta2) = (as_decimal(c.lr), as_decimal(c.beta1), as_decimal(c.beta2));
        // Python's `float ** float` is C's `pow`; `black_box` keeps LLVM from rewriting
        // `pow(x, 0.5)` as `sqrt` (equal in practice, but this is what PyTorch runs).
        let t = self.step as f64;
        let bias_correction1 = 1.0 - beta1.powf(t);
        let bias_correction2 = 1.0 - beta2.powf(t);
        let scalars = Scalars {
            lerp_weight: (1.0 - beta1) as f32,
            beta2: c.beta2,
            one_minus_beta2: (1.0 - beta2) as f32,
            bias_correction2_sqrt: bias_correction2.powf(std::hint::black_box(0.5)) as f32,
            eps: c.eps,
            neg_step_size: (-(lr / bias_correction1)) as f32,
        };
        self.decays.clear();
        self.decays.extend(
            self.groups
                .iter()
                .map(|g| match (g.weight_decay, c.decoupled) {
                    (0.0, _) => Decay::None,
                    (wd, true) => Decay::Decoupled((1.0 - lr * as_decimal(wd)) as f32),
                    (wd, false) => Decay::L2(wd),
                }),
        );
        (
            AdamUpdate {
                scalars,
                groups: &self.groups,
                decays: &self.decays,
            },
            &mut self.exp_avg,
            &mut self.exp_avg_sq,
        )
    }
}

/// One Adam step's update, applied range by range (see [`Adam::begin`]).
#[derive(Debug, Clone, Copy)]
pub struct AdamUpdate<'a> {
    scalars: Scalars,
    groups: &'a [ParamGroup],
    decays: &'a [Decay],
}

impl AdamUpdate<'_> {
    /// Updates the parameters `start..start + p.len()` (`p`, with their gradient `g` and
    /// moments `m`, `v`), group by group; returns whether every updated parameter is finite.
    /// Element-wise: the ranges cannot change a bit.
    pub fn apply(
        &self,
        start: usize,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) -> bool {
        let end = start + p.len();
        let mut finite = true;
        for (group, &decay) in self.groups.iter().zip(self.decays) {
            let (lo, hi) = (group.range.start.max(start), group.range.end.min(end));
            if lo >= hi {
                continue;
            }
            let r = lo - start..hi - start;
            finite &= update(
                &mut p[r.clone()],
                &g[r.clone()],
                &mut m[r.clone()],
                &mut v[r],
                decay,
                self.scalars,
            );
        }
        finite
    }
}

/// The value a user who typed `x` meant, as Python would hold it: the shortest decimal that
/// round-trips through `f32`, parsed as `f64`. `0.9f32 as f64` is 0.89999997615…, which would
/// shift `1 − β1` and the bias corrections away from PyTorch's; this gives 0.9 exactly as
/// Python's float. Exact for every value written with at most 6 significant digits.
pub(super) fn as_decimal(x: f32) -> f64 {
    use std::fmt::Write as _;
    // `{:e}` prints the shortest round-trip digits, which f64 parses exactly. Formatted on the
    // stack: this runs every step (schedules, Adam), where the heap is off limits.
    struct Stack {
        bytes: [u8; 32],
        len: usize,
    }
    impl std::fmt::Write for Stack {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            let dst = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut buf = Stack {
        bytes: [0; 32],
        len: 0,
    };
    if write!(buf, "{x:e}").is_err() {
        return x as f64;
    }
    std::str::from_utf8(&buf.bytes[..buf.len])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(x as f64)
}

/// Weight decay of one group, with its scalar already rounded as PyTorch rounds it.
#[derive(Debug, Clone, Copy)]
enum Decay {
    None,
    /// Adam's L2 penalty: `g ← g + wd·p`.
    L2(f32),
    /// AdamW: `p ← p·factor` with `factor = 1 − lr·wd`.
    Decoupled(f32),
}

/// Updates one chunk; returns whether every new parameter is finite.
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], d: Decay, s: Scalars) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports FMA, checked just above.
        return unsafe { update_fma(p, g, m, v, d, s) };
    }
    update_generic(p, g, m, v, d, s)
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
    v: &mut [f32],
    d: Decay,
    s: Scalars,
) -> bool {
    update_generic(p, g, m, v, d, s)
}

#[inline(always)]
fn update_generic(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    d: Decay,
    s: Scalars,
) -> bool {
    let mut finite = true;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = match d {
            Decay::None => g,
            Decay::L2(wd) => p.mul_add(wd, g),
            Decay::Decoupled(factor) => {
                *p *= factor;
                g
            }
        };
        *m = lerp(*m, g, s.lerp_weight);
        *v = (s.one_minus_beta2 * g).mul_add(g, *v * s.beta2);
        let denom = v.sqrt() / s.bias_correction2_sqrt + s.eps;
        *p += s.neg_step_size * *m / denom;
        finite &= p.is_finite();
    }
    finite
}

/// PyTorch's `lerp` (ATen `Lerp.h`): anchored at the nearer end so that `weight` 0 and 1 give
/// the ends exactly, one fused multiply-add either way.
#[inline(always)]
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        weight.mul_add(end - start, start)
    } else {
        (weight - 1.0).mul_add(end - start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(n: usize, wd: f32) -> Vec<ParamGroup> {
        vec![ParamGroup {
            range: 0..n,
            weight_decay: wd,
        }]
    }

    #[test]
    fn as_decimal_recovers_what_the_user_typed() {
        assert_eq!(as_decimal(0.9), 0.9f64);
        assert_eq!(as_decimal(0.999), 0.999f64);
        assert_eq!(as_decimal(1e-8), 1e-8f64);
        assert_eq!(as_decimal(0.01), 0.01f64);
    }

    #[test]
    fn lerp_is_exact_at_both_ends() {
        assert_eq!(lerp(0.3, 0.7, 0.0), 0.3);
        assert_eq!(lerp(0.3, 0.7, 1.0), 0.7);
    }

    #[test]
    fn large_buffers_update_like_one_chunk_regardless_of_threads() {
        let n = 5 * CHUNK + 17;
        let params: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
            .collect();
        let grads: Vec<Vec<f32>> = (0..3)
            .map(|t| {
                (0..n)
                    .map(|i| (((i + t) * 53 % 97) as f32 - 48.0) / 128.0)
                    .collect()
            })
            .collect();
        let config = AdamConfig {
            lr: 0.01,
            decoupled: true,
            ..AdamConfig::default()
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut adam = Adam::new(config, groups(n, 0.1));
                let mut p = params.clone();
                for g in &grads {
                    assert!(adam.step(&mut p, g));
                }
                (
                    p,
                    adam.first_moment().to_vec(),
                    adam.second_moment().to_vec(),
                )
            })
        };
        let one = run(1);
        assert_eq!(one, run(3));
        // Oracle: the same buffer cut into groups too small to be split, so every element goes
        // through the sequential loop.
        let small: Vec<ParamGroup> = (0..n)
            .step_by(CHUNK)
            .map(|s| ParamGroup {
                range: s..(s + CHUNK).min(n),
                weight_decay: 0.1,
            })
            .collect();
        let mut adam = Adam::new(config, small);
        let mut p = params.clone();
        for g in &grads {
            assert!(adam.step(&mut p, g));
        }
        assert_eq!(one.0, p);
        assert_eq!(one.2, adam.second_moment());
    }

    #[test]
    fn parameters_outside_every_group_are_left_alone() {
        let mut adam = Adam::new(AdamConfig::default(), groups(2, 0.0));
        let mut p = vec![1.0, 2.0, 3.0];
        assert!(adam.step(&mut p, &[0.5, -0.5, 0.5]));
        assert_eq!(p[2], 3.0);
        assert_ne!(p[0], 1.0);
    }

    #[test]
    fn a_nan_gradient_is_reported() {
        let mut adam = Adam::new(AdamConfig::default(), groups(2, 0.0));
        let mut p = vec![1.0, 2.0];
        assert!(!adam.step(&mut p, &[0.5, f32::NAN]));
    }

    #[test]
    fn restored_state_continues_like_the_uninterrupted_run() {
        let cfg = AdamConfig {
            lr: 0.05,
            ..AdamConfig::default()
        };
        let grads = [[0.1f32, -0.3], [0.2, 0.4], [-0.5, 0.05]];
        let mut a = Adam::new(cfg, groups(2, 0.01));
        let mut pa = vec![0.5f32, -0.5];
        for g in &grads {
            a.step(&mut pa, g);
        }
        let mut b = Adam::new(cfg, groups(2, 0.01));
        let mut pb = vec![0.5f32, -0.5];
        b.step(&mut pb, &grads[0]);
        let mut c = Adam::new(cfg, groups(2, 0.01));
        c.restore(
            b.first_moment().to_vec(),
            b.second_moment().to_vec(),
            b.steps(),
        );
        for g in &grads[1..] {
            c.step(&mut pb, g);
        }
        assert_eq!(pa, pb);
        assert_eq!(c.steps(), 3);
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn restore_refuses_mismatched_buffers() {
        Adam::new(AdamConfig::default(), groups(2, 0.0)).restore(vec![0.0; 2], vec![0.0; 3], 1);
    }
}
