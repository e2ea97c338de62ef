//! Learning-rate schedules (linear warmup, then constant, cosine or step decay) and the
//! batch-size scaling rules for the base learning rate.

use serde::{Deserialize, Serialize};

use super::adam::as_decimal;

/// The learning rate as a function of the optimizer steps already taken.
///
/// In TOML (kebab-case, the decay's kind tagged by `type`):
///
/// ```toml
/// base-lr = 0.1
/// warmup-steps = 100
/// kind = { type = "cosine", total-steps = 1000, min-lr = 0.001 }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LrSchedule {
    /// The learning rate reached at the end of warmup, where the decay starts.
    pub base_lr: f32,
    /// Steps of linear warmup (0 for none): step `s < warmup_steps` uses
    /// `base_lr · (s + 1) / warmup_steps`, so the first update already moves and the last
    /// warmup step uses `base_lr`.
    #[serde(default)]
    pub warmup_steps: u64,
    /// What happens after warmup.
    pub kind: ScheduleKind,
}

/// The decay applied after warmup, to `t = step − warmup_steps`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    tag = "type",
    deny_unknown_fields
)]
pub enum ScheduleKind {
    /// `base_lr` throughout.
    Constant,
    /// PyTorch's `CosineAnnealingLR(T_max = total_steps − warmup_steps, eta_min = min_lr)` in
    /// its closed form, `min_lr + (base_lr − min_lr)·(1 + cos(π·t/T))/2`, held at `min_lr`
    /// once `t ≥ T` (PyTorch's would climb back up: it is periodic).
    Cosine {
        /// Steps of the whole run, warmup included; the cosine reaches `min_lr` there.
        total_steps: u64,
        /// The floor, reached at `total_steps`.
        min_lr: f32,
    },
    /// PyTorch's `StepLR(step_size, gamma)`: `base_lr · gamma^⌊t / step_size⌋`.
    Step {
        /// Steps between two decays.
        step_size: u64,
        /// Factor applied at each decay.
        gamma: f32,
    },
}

impl LrSchedule {
    /// A schedule without warmup or decay.
    pub fn constant(base_lr: f32) -> Self {
        LrSchedule {
            base_lr,
            warmup_steps: 0,
            kind: ScheduleKind::Constant,
        }
    }

    /// The learning rate for the update after `step` updates (0 gives the first update's).
    ///
    /// Computed in `f64` from the decimal values of the settings, as PyTorch's schedulers
    /// compute in Python floats, and rounded to `f32` once.
    pub fn lr_at(&self, step: u64) -> f32 {
        let base = as_decimal(self.base_lr);
        if step < self.warmup_steps {
            return (base * (step + 1) as f64 / self.warmup_steps as f64) as f32;
        }
        let t = step - self.warmup_steps;
        let lr = match self.kind {
            ScheduleKind::Constant => base,
            ScheduleKind::Cosine {
                total_steps,
                min_lr,
            } => {
                let min = as_decimal(min_lr);
                let period = total_steps.saturating_sub(self.warmup_steps);
                if t >= period {
                    min
                } else {
                    // PyTorch's `_get_closed_form_lr`, operation for operation.
                    let cos = (std::f64::consts::PI * t as f64 / period as f64).cos();
                    min + (base - min) * (1.0 + cos) / 2.0
                }
            }
            ScheduleKind::Step { step_size, gamma } => {
                base * as_decimal(gamma).powf((t / step_size) as f64)
            }
        };
        lr as f32
    }

    /// Checks the settings once, before training.
    ///
    /// # Errors
    /// A message naming the setting and the value if: `base-lr` is not finite and positive;
    /// a cosine's `min-lr` is negative, not finite or above `base-lr`; a cosine's
    /// `warmup-steps` exceed its `total-steps` (equal is allowed: the cosine is then empty and
    /// the run continues at `min-lr`); a step decay's `step-size` is 0 or its `gamma` is not
    /// finite and positive.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.base_lr.is_finite() && self.base_lr > 0.0) {
            return Err(format!(
                "base-lr must be a positive number, got {}",
                self.base_lr
            ));
        }
        match self.kind {
            ScheduleKind::Constant => {}
            ScheduleKind::Cosine {
                total_steps,
                min_lr,
            } => {
                if !(min_lr.is_finite() && (0.0..=self.base_lr).contains(&min_lr)) {
                    return Err(format!(
                        "cosine min-lr must be between 0 and base-lr ({}), got {min_lr}",
                        self.base_lr
                    ));
                }
                if self.warmup_steps > total_steps {
                    return Err(format!(
                        "warmup-steps ({}) exceed the cosine's total-steps ({total_steps}); \
                         total-steps counts the whole run, warmup included",
                        self.warmup_steps
                    ));
                }
            }
            ScheduleKind::Step { step_size, gamma } => {
                if step_size == 0 {
                    return Err("step decay step-size must be at least 1, got 0".to_string());
                }
                if !(gamma.is_finite() && gamma > 0.0) {
                    return Err(format!(
                        "step decay gamma must be a positive number, got {gamma}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How the base learning rate follows the global batch size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LrScaling {
    /// The learning rate as given.
    #[default]
    None,
    /// Goyal et al. (2017), "Accurate, Large Minibatch SGD": `lr · batch / base_batch`.
    Linear,
    /// `lr · sqrt(batch / base_batch)`, the rule usually preferred for Adam.
    Sqrt,
}

impl LrScaling {
    /// `lr`, tuned for batches of `base_batch`, scaled for batches of `batch`.
    ///
    /// # Panics
    /// If `base_batch` is 0.
    pub fn scale(&self, lr: f32, batch: usize, base_batch: usize) -> f32 {
        assert!(base_batch > 0, "LR scaling needs a base batch size above 0");
        let ratio = batch as f64 / base_batch as f64;
        let lr = as_decimal(lr);
        (match self {
            LrScaling::None => lr,
            LrScaling::Linear => lr * ratio,
            LrScaling::Sqrt => lr * ratio.sqrt(),
        }) as f32
    }
}

#[cfg(test)]
mod tests {
    // The literals are Python floats printed with 17 significant digits, verbatim.
    #![allow(clippy::excessive_precision)]

    use super::*;

    // From `python3 scripts/golden/adam_golden.py` (torch 2.15.0); see
    // scripts/golden/adam_golden.out.txt. The lr each update uses, read from
    // `optimizer.param_groups[0]["lr"]` before it, with base lr 0.1; CHAINED is what the
    // scheduler's `step()` produces (recursive form), CLOSED its `_get_closed_form_lr()`.
    //
    // ```python
    // def lrs(make_sched, n):
    //     p = torch.zeros(1, requires_grad=True)
    //     opt = torch.optim.SGD([p], lr=0.1)
    //     sched = make_sched(opt)
    //     chained, closed = [], []
    //     for _ in range(n):
    //         chained.append(opt.param_groups[0]["lr"])
    //         closed.append(sched._get_closed_form_lr()[0])
    //         opt.step()
    //         sched.step()
    //     return chained, closed
    // ```

    // CosineAnnealingLR(T_max=10, eta_min=0.001), base lr 0.1: lr used by updates 1..12.
    const COSINE_CHAINED: [f64; 12] = [
        1.00000000000000006e-01,
        9.75772975566101125e-02,
        9.05463412215598978e-02,
        7.95953699884774241e-02,
        6.57963412215599036e-02,
        5.05000000000000032e-02,
        3.52036587784401098e-02,
        2.14046300115225893e-02,
        1.04536587784401086e-02,
        3.42270244338990044e-03,
        1.00000000000000002e-03,
        3.42270244338990044e-03,
    ];
    const COSINE_CLOSED: [f64; 12] = [
        1.00000000000000006e-01,
        9.75772975566101125e-02,
        9.05463412215598978e-02,
        7.95953699884774241e-02,
        6.57963412215599036e-02,
        5.05000000000000032e-02,
        3.52036587784401098e-02,
        2.14046300115225858e-02,
        1.04536587784401086e-02,
        3.42270244338990044e-03,
        1.00000000000000002e-03,
        3.42270244338988916e-03,
    ];

    // StepLR(step_size=3, gamma=0.5), base lr 0.1: lr used by updates 1..10.
    const STEP_CHAINED: [f64; 10] = [
        1.00000000000000006e-01,
        1.00000000000000006e-01,
        1.00000000000000006e-01,
        5.00000000000000028e-02,
        5.00000000000000028e-02,
        5.00000000000000028e-02,
        2.50000000000000014e-02,
        2.50000000000000014e-02,
        2.50000000000000014e-02,
        1.25000000000000007e-02,
    ];
    const STEP_CLOSED: [f64; 10] = STEP_CHAINED;

    fn cosine(warmup_steps: u64, total_steps: u64) -> LrSchedule {
        LrSchedule {
            base_lr: 0.1,
            warmup_steps,
            kind: ScheduleKind::Cosine {
                total_steps,
                min_lr: 0.001,
            },
        }
    }

    #[test]
    fn cosine_matches_torch_closed_form_up_to_t_max() {
        let s = cosine(0, 10);
        for (step, (&closed, &chained)) in COSINE_CLOSED.iter().zip(&COSINE_CHAINED).enumerate() {
            if step > 10 {
                break;
            }
            let lr = s.lr_at(step as u64);
            assert_eq!(lr, closed as f32, "step {step}");
            // The recursive form drifts in the last bits of f64 only.
            assert_eq!(lr, chained as f32, "step {step}");
        }
    }

    #[test]
    fn cosine_holds_min_lr_after_total_steps_where_torch_would_climb_back() {
        let s = cosine(0, 10);
        for step in 10..15 {
            assert_eq!(s.lr_at(step), 0.001);
        }
        // torch's 12th lr has climbed back above eta_min.
        assert!(f64::from(s.lr_at(11)) < COSINE_CLOSED[11]);
    }

    #[test]
    fn step_decay_matches_torch() {
        let s = LrSchedule {
            base_lr: 0.1,
            warmup_steps: 0,
            kind: ScheduleKind::Step {
                step_size: 3,
                gamma: 0.5,
            },
        };
        for (step, (&closed, &chained)) in STEP_CLOSED.iter().zip(&STEP_CHAINED).enumerate() {
            assert_eq!(s.lr_at(step as u64), closed as f32, "step {step}");
            assert_eq!(s.lr_at(step as u64), chained as f32, "step {step}");
        }
    }

    #[test]
    fn warmup_rises_linearly_to_base_lr_then_hands_over_to_the_decay() {
        // 4 warmup steps, then the cosine over the remaining 10 of 14.
        let s = cosine(4, 14);
        let by_hand = [0.025f32, 0.05, 0.075, 0.1];
        for (step, &want) in by_hand.iter().enumerate() {
            assert_eq!(s.lr_at(step as u64), want, "warmup step {step}");
        }
        for t in 0..=10 {
            assert_eq!(s.lr_at(4 + t), cosine(0, 10).lr_at(t), "t {t}");
        }
        assert_eq!(s.lr_at(100), 0.001);
    }

    #[test]
    fn warmup_then_constant_and_then_step() {
        let mut s = LrSchedule {
            base_lr: 0.2,
            warmup_steps: 2,
            kind: ScheduleKind::Constant,
        };
        assert_eq!(
            [s.lr_at(0), s.lr_at(1), s.lr_at(2), s.lr_at(99)],
            [0.1, 0.2, 0.2, 0.2]
        );
        s.kind = ScheduleKind::Step {
            step_size: 2,
            gamma: 0.1,
        };
        let lrs: Vec<f32> = (0..7).map(|k| s.lr_at(k)).collect();
        assert_eq!(lrs, [0.1, 0.2, 0.2, 0.2, 0.02, 0.02, 0.002]);
    }

    #[test]
    fn warmup_as_long_as_the_cosine_leaves_min_lr_after_it() {
        let s = cosine(5, 5);
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.lr_at(4), 0.1);
        assert_eq!(s.lr_at(5), 0.001);
    }

    #[test]
    fn validate_names_the_bad_setting() {
        let err = |s: LrSchedule| s.validate().unwrap_err();
        assert!(err(cosine(11, 10)).contains("warmup-steps (11)"));
        assert!(err(LrSchedule::constant(0.0)).contains("base-lr"));
        assert!(err(LrSchedule::constant(f32::NAN)).contains("base-lr"));
        let mut s = cosine(0, 10);
        s.kind = ScheduleKind::Cosine {
            total_steps: 10,
            min_lr: 0.5,
        };
        assert!(err(s).contains("min-lr"));
        s.kind = ScheduleKind::Step {
            step_size: 0,
            gamma: 0.5,
        };
        assert!(err(s).contains("step-size"));
        s.kind = ScheduleKind::Step {
            step_size: 1,
            gamma: -1.0,
        };
        assert!(err(s).contains("gamma"));
        assert_eq!(LrSchedule::constant(0.1).validate(), Ok(()));
    }

    #[test]
    fn linear_scaling_follows_the_batch_and_sqrt_its_root() {
        assert_eq!(LrScaling::None.scale(0.1, 1024, 256), 0.1);
        assert_eq!(LrScaling::Linear.scale(0.1, 1024, 256), 0.4);
        assert_eq!(LrScaling::Linear.scale(0.1, 128, 256), 0.05);
        assert_eq!(LrScaling::Sqrt.scale(0.1, 1024, 256), 0.2);
        assert_eq!(LrScaling::Sqrt.scale(0.1, 256, 256), 0.1);
    }

    #[test]
    #[should_panic(expected = "base batch size")]
    fn scaling_refuses_a_zero_base_batch() {
        LrScaling::Linear.scale(0.1, 8, 0);
    }

    #[test]
    fn schedules_read_from_kebab_case_toml() {
        let s: LrSchedule = toml::from_str(
            "base-lr = 0.1\nwarmup-steps = 4\n\
             kind = { type = \"cosine\", total-steps = 14, min-lr = 0.001 }\n",
        )
        .unwrap();
        assert_eq!(s, cosine(4, 14));
        let s: LrSchedule =
            toml::from_str("base-lr = 0.1\n[kind]\ntype = \"step\"\nstep-size = 3\ngamma = 0.5\n")
                .unwrap();
        assert_eq!(
            s.kind,
            ScheduleKind::Step {
                step_size: 3,
                gamma: 0.5
            }
        );
        let s: LrSchedule =
            toml::from_str("base-lr = 0.1\nkind = { type = \"constant\" }").unwrap();
        assert_eq!(s, LrSchedule::constant(0.1));
        assert!(
            toml::from_str::<LrSchedule>(
                "base-lr = 0.1\nwarmup = 3\nkind = { type = \"constant\" }"
            )
            .is_err()
        );
        let back: LrSchedule = toml::from_str(&toml::to_string(&cosine(4, 14)).unwrap()).unwrap();
        assert_eq!(back, cosine(4, 14));
        #[derive(Deserialize)]
        struct Wrap {
            scaling: LrScaling,
        }
        let w: Wrap = toml::from_str("scaling = \"sqrt\"").unwrap();
        assert_eq!(w.scaling, LrScaling::Sqrt);
    }
}
