//! Golden values for `--clip-grad-norm` from `torch.nn.utils.clip_grad_norm_` followed by
//! `torch.optim.SGD`, `Adam` and `AdamW` (torch 2.15.0, CPU, float32), produced by
//! `python3 scripts/golden/clip_golden.py > scripts/golden/clip_golden.out.txt`. The constants
//! below are that file's output, pasted. The heart of the script:
//!
//! ```python
//! # w (2x3) in a group with weight_decay=0.01, b (2) in a group with weight_decay=0
//! for t in range(4):
//!     opt.zero_grad()
//!     w.grad = torch.tensor(GRADS_W[t], dtype=torch.float32)
//!     b.grad = torch.tensor(GRADS_B[t], dtype=torch.float32)
//!     norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm=MAX, norm_type=2.0, foreach=False)
//!     opt.step()
//!     rows.append(w.detach().flatten().tolist() + b.detach().flatten().tolist())
//! # SGD(lr=0.1, momentum=0.9) with MAX 0.5 (clips every step) and 10.0 (never clips);
//! # Adam and AdamW (lr=0.1, betas=(0.9, 0.999), eps=1e-8) with MAX 0.3.
//! ```
//!
//! torch sums each tensor's squares in f32 in its own order; dptrain sums them in f64 (see
//! [`super::clip_grad_norm`]), so the norms and what follows may differ in the last bit: the
//! comparison allows 2 ulps on the norms and 4 on the parameters (relative to
//! the step size for parameters near zero).

// The literals are PyTorch's float32 values printed with 9 significant digits ("%.9e"), which
// round-trip exactly; clippy would have us trim them, but then they would no longer be the
// script's output verbatim.
#![allow(clippy::excessive_precision)]

use super::golden_tests::{B0, GRADS_B, GRADS_W, W0};
use super::{OptimSettings, Optimizer, OptimizerKind, ParamGroup, clip_grad_norm};

// The initial params and per-step gradients (W0, B0, GRADS_W, GRADS_B) are the script's first
// lines of output, the same literals as sgd_golden.py's: taken from `golden_tests`.

// CLIP_SGD_MOMENTUM_WD: SGD {'lr': 0.1, 'momentum': 0.9, 'dampening': 0.0, 'nesterov': False} weight_decay(w)=0.01 weight_decay(b)=0.0 max_norm=0.5 (always clips)
// clamped clip coefficient per step: 5.012542009e-01, 5.337598920e-01, 9.284749031e-01, 7.216867805e-01
const CLIP_SGD_MOMENTUM_WD_PARAMS: [[f32; 8]; 4] = [
    [
        4.944874644e-01,
        -2.397249192e-01,
        9.839623570e-01,
        7.693001628e-01,
        7.483728975e-02,
        -5.693247914e-01,
        1.924811900e-01,
        -2.874686420e-01,
    ],
    [
        4.756876826e-01,
        -2.329064161e-01,
        9.765509367e-01,
        7.672194242e-01,
        7.613521069e-02,
        -5.705045462e-01,
        1.883830577e-01,
        -2.975408137e-01,
    ],
    [
        4.861464500e-01,
        -2.451063544e-01,
        9.596193433e-01,
        7.645795345e-01,
        8.651195467e-02,
        -5.895653367e-01,
        1.568404883e-01,
        -3.158905208e-01,
    ],
    [
        4.914647639e-01,
        -2.522327602e-01,
        9.145538211e-01,
        7.758727670e-01,
        7.411390543e-02,
        -5.808714032e-01,
        1.428859085e-01,
        -3.215799630e-01,
    ],
];
const CLIP_SGD_MOMENTUM_WD_NORMS: [f32; 4] = [
    9.974968433e-01,
    9.367497563e-01,
    5.385165215e-01,
    6.928203106e-01,
];

// CLIP_SGD_NO_CLIP: SGD {'lr': 0.1, 'momentum': 0.9, 'dampening': 0.0, 'nesterov': False} weight_decay(w)=0.01 weight_decay(b)=0.0 max_norm=10.0 (never clips)
// clamped clip coefficient per step: 1.000000000e+00, 1.000000000e+00, 1.000000000e+00, 1.000000000e+00
const CLIP_SGD_NO_CLIP_PARAMS: [[f32; 8]; 4] = [
    [
        4.894999862e-01,
        -2.297499925e-01,
        9.689999819e-01,
        7.892500162e-01,
        4.990000278e-02,
        -5.394000411e-01,
        1.850000024e-01,
        -2.750000060e-01,
    ],
    [
        4.545604885e-01,
        -2.162952423e-01,
        9.551309943e-01,
        7.887857556e-01,
        4.976010323e-02,
        -5.393206477e-01,
        1.765000075e-01,
        -2.925000191e-01,
    ],
    [
        4.526603818e-01,
        -2.239696681e-01,
        9.316937923e-01,
        7.875791192e-01,
        5.958443135e-02,
        -5.587098598e-01,
        1.388500035e-01,
        -3.182500303e-01,
    ],
    [
        4.454976320e-01,
        -2.256526798e-01,
        8.696686029e-01,
        8.057056069e-01,
        3.836674243e-02,
        -5.406014323e-01,
        1.249650046e-01,
        -3.264250457e-01,
    ],
];
const CLIP_SGD_NO_CLIP_NORMS: [f32; 4] = [
    9.974968433e-01,
    9.367497563e-01,
    5.385165215e-01,
    6.928203106e-01,
];

// CLIP_ADAM: Adam {'lr': 0.1, 'betas': (0.9, 0.999), 'eps': 1e-08} weight_decay(w)=0.01 weight_decay(b)=0.0 max_norm=0.3 (always clips)
// clamped clip coefficient per step: 3.007525206e-01, 3.202559352e-01, 5.570849776e-01, 4.330120981e-01
const CLIP_ADAM_PARAMS: [[f32; 8]; 4] = [
    [
        4.000000358e-01,
        -1.500000209e-01,
        8.999999762e-01,
        8.499999642e-01,
        1.490116119e-08,
        -5.000000596e-01,
        1.000000313e-01,
        -2.000000328e-01,
    ],
    [
        3.055285513e-01,
        -1.015253961e-01,
        8.645871282e-01,
        8.414046168e-01,
        2.805063967e-03,
        -5.009807348e-01,
        6.176026911e-02,
        -2.302793562e-01,
    ],
    [
        3.259565532e-01,
        -1.378915012e-01,
        8.082810640e-01,
        8.315156698e-01,
        2.135664225e-02,
        -5.264544487e-01,
        -7.788300514e-03,
        -2.746380568e-01,
    ],
    [
        3.348925710e-01,
        -1.568912715e-01,
        7.342534661e-01,
        8.490905166e-01,
        4.391299561e-03,
        -5.157201886e-01,
        -3.285162151e-02,
        -2.862209082e-01,
    ],
];
const CLIP_ADAM_NORMS: [f32; 4] = [
    9.974968433e-01,
    9.367497563e-01,
    5.385165215e-01,
    6.928203106e-01,
];

// CLIP_ADAMW: AdamW {'lr': 0.1, 'betas': (0.9, 0.999), 'eps': 1e-08} weight_decay(w)=0.01 weight_decay(b)=0.0 max_norm=0.3 (always clips)
// clamped clip coefficient per step: 3.007525206e-01, 3.202559352e-01, 5.570849776e-01, 4.330120981e-01
const CLIP_ADAMW_PARAMS: [[f32; 8]; 4] = [
    [
        3.995000422e-01,
        -1.497500241e-01,
        8.990000486e-01,
        8.492499590e-01,
        -9.997934103e-05,
        -4.994000494e-01,
        1.000000313e-01,
        -2.000000328e-01,
    ],
    [
        3.058830202e-01,
        -1.040038019e-01,
        8.739477992e-01,
        8.466720581e-01,
        3.036533017e-03,
        -5.029546618e-01,
        6.176026911e-02,
        -2.302793562e-01,
    ],
    [
        3.296392560e-01,
        -1.425034553e-01,
        8.260922432e-01,
        8.444890976e-01,
        2.189301513e-02,
        -5.311515927e-01,
        -7.788300514e-03,
        -2.746380568e-01,
    ],
    [
        3.422282040e-01,
        -1.638102680e-01,
        7.555670738e-01,
        8.697842360e-01,
        5.082100630e-03,
        -5.231966376e-01,
        -3.285162151e-02,
        -2.862209082e-01,
    ],
];
const CLIP_ADAMW_NORMS: [f32; 4] = [
    9.974968433e-01,
    9.367497563e-01,
    5.385165215e-01,
    6.928203106e-01,
];

fn run(optimizer: OptimizerKind, max_norm: f32) -> Vec<[f32; 8]> {
    let settings = OptimSettings {
        optimizer,
        lr: 0.1,
        momentum: if optimizer == OptimizerKind::Sgd {
            0.9
        } else {
            0.0
        },
        weight_decay: 0.01,
        clip_grad_norm: Some(max_norm),
        ..OptimSettings::default()
    };
    let groups = vec![
        ParamGroup {
            range: 0..6,
            weight_decay: 0.01,
        },
        ParamGroup {
            range: 6..8,
            weight_decay: 0.0,
        },
    ];
    let mut opt = Optimizer::new(&settings, groups);
    let mut params: Vec<f32> = W0.iter().flatten().chain(&B0).copied().collect();
    (0..4)
        .map(|t| {
            let mut grad = grads(t);
            assert!(opt.step(&mut params, &mut grad));
            params.clone().try_into().unwrap()
        })
        .collect()
}

fn grads(t: usize) -> Vec<f32> {
    GRADS_W[t]
        .iter()
        .flatten()
        .chain(&GRADS_B[t])
        .copied()
        .collect()
}

fn within_2_ulps(got: f32, want: f32) -> bool {
    (got - want).abs() <= 2.0 * f32::EPSILON * want.abs().max(f32::MIN_POSITIVE)
}

/// Within 4 ulps of the parameter or of the step size (lr = 0.1), whichever is larger: a
/// parameter that a step brought near zero keeps that step's absolute rounding (Adam's first
/// step moves w[1][1] from 0.1 to 1.5e-8), and a last-bit difference in the norm moves it.
fn close(got: f32, want: f32) -> bool {
    (got - want).abs() <= 4.0 * f32::EPSILON * want.abs().max(0.1)
}

fn assert_matches(name: &str, got: &[[f32; 8]], want: &[[f32; 8]; 4]) {
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
            assert!(
                close(g, w),
                "{name} step {} element {i}: {g:e} vs torch {w:e}",
                t + 1
            );
        }
    }
}

#[test]
fn the_global_norm_is_torchs() {
    // The norm is taken before clipping, so every configuration's norms are the same.
    for norms in [
        CLIP_SGD_MOMENTUM_WD_NORMS,
        CLIP_SGD_NO_CLIP_NORMS,
        CLIP_ADAM_NORMS,
        CLIP_ADAMW_NORMS,
    ] {
        for (t, &want) in norms.iter().enumerate() {
            let mut g = grads(t);
            let norm = clip_grad_norm(&mut g, &[0..6, 6..8], 0.5);
            assert!(
                within_2_ulps(norm, want),
                "step {}: {norm:e} vs {want:e}",
                t + 1
            );
        }
    }
}

#[test]
fn clipped_sgd_with_momentum_and_weight_decay_matches_torch() {
    assert_matches(
        "CLIP_SGD_MOMENTUM_WD",
        &run(OptimizerKind::Sgd, 0.5),
        &CLIP_SGD_MOMENTUM_WD_PARAMS,
    );
}

#[test]
fn a_max_norm_above_the_norm_changes_nothing() {
    assert_matches(
        "CLIP_SGD_NO_CLIP",
        &run(OptimizerKind::Sgd, 10.0),
        &CLIP_SGD_NO_CLIP_PARAMS,
    );
}

#[test]
fn clipped_adam_matches_torch() {
    assert_matches(
        "CLIP_ADAM",
        &run(OptimizerKind::Adam, 0.3),
        &CLIP_ADAM_PARAMS,
    );
}

#[test]
fn clipped_adamw_matches_torch() {
    assert_matches(
        "CLIP_ADAMW",
        &run(OptimizerKind::Adamw, 0.3),
        &CLIP_ADAMW_PARAMS,
    );
}
