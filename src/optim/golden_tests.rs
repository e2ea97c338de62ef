//! Golden values from `torch.optim.SGD` (torch 2.15.0, CPU, float32), produced by
//! `python3 scripts/golden/sgd_golden.py > scripts/golden/sgd_golden.out.txt`. The constants
//! below are that file's output, pasted. The heart of the script:
//!
//! ```python
//! import torch
//!
//! torch.set_num_threads(1)
//!
//! LR = 0.1
//! W0 = [[0.5, -0.25, 1.0], [0.75, 0.1, -0.6]]
//! B0 = [0.2, -0.3]
//! GRADS_W = [
//!     [[0.1, -0.2, 0.3], [-0.4, 0.5, -0.6]],
//!     [[0.25, 0.05, -0.15], [0.35, -0.45, 0.55]],
//!     [[-0.3, 0.2, 0.1], [0.0, -0.1, 0.2]],
//!     [[0.05, -0.05, 0.4], [-0.2, 0.3, -0.35]],
//! ]
//! GRADS_B = [
//!     [0.15, -0.25],
//!     [-0.05, 0.4],
//!     [0.3, 0.1],
//!     [-0.2, -0.15],
//! ]
//!
//! # name: (momentum, dampening, nesterov, wd on w, wd on b)
//! CONFIGS = [
//!     ("PLAIN", dict(momentum=0.0, dampening=0.0, nesterov=False), 0.0, 0.0),
//!     ("MOMENTUM", dict(momentum=0.9, dampening=0.0, nesterov=False), 0.0, 0.0),
//!     ("MOMENTUM_DAMPENING", dict(momentum=0.9, dampening=0.1, nesterov=False), 0.0, 0.0),
//!     ("NESTEROV", dict(momentum=0.9, dampening=0.0, nesterov=True), 0.0, 0.0),
//!     ("MOMENTUM_WD_WEIGHT_ONLY", dict(momentum=0.9, dampening=0.0, nesterov=False), 0.01, 0.0),
//!     ("NESTEROV_WD_ALL", dict(momentum=0.9, dampening=0.0, nesterov=True), 0.05, 0.05),
//! ]
//!
//!
//! def fmt(v):
//!     return "%.9e" % v
//!
//!
//! def run(opt_kwargs, wd_w, wd_b):
//!     w = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
//!     b = torch.tensor(B0, dtype=torch.float32, requires_grad=True)
//!     # foreach=False: the single-tensor path, which is also the CPU default.
//!     opt = torch.optim.SGD(
//!         [
//!             {"params": [w], "weight_decay": wd_w},
//!             {"params": [b], "weight_decay": wd_b},
//!         ],
//!         lr=LR,
//!         foreach=False,
//!         **opt_kwargs,
//!     )
//!     rows = []
//!     for t in range(4):
//!         opt.zero_grad()
//!         w.grad = torch.tensor(GRADS_W[t], dtype=torch.float32)
//!         b.grad = torch.tensor(GRADS_B[t], dtype=torch.float32)
//!         opt.step()
//!         rows.append(w.detach().flatten().tolist() + b.detach().flatten().tolist())
//!     return rows
//!
//!
//! def rust_rows(name, rows):
//!     n = len(rows[0])
//! ```

// The literals are PyTorch's float32 values printed with 9 significant digits ("%.9e"), which
// round-trip exactly; clippy would have us trim them, but then they would no longer be the
// script's output verbatim.
#![allow(clippy::excessive_precision)]

use super::{ParamGroup, Sgd, SgdConfig};

// lr = 0.1. Rows: flattened w (2x3, row-major) then b (2) after steps 1..4.
// Initial params and per-step gradients:
pub(super) const W0: [[f32; 3]; 2] = [
    [5.000000000e-01, -2.500000000e-01, 1.000000000e+00],
    [7.500000000e-01, 1.000000000e-01, -6.000000000e-01],
];
pub(super) const B0: [f32; 2] = [2.000000000e-01, -3.000000000e-01];
pub(super) const GRADS_W: [[[f32; 3]; 2]; 4] = [
    [
        [1.000000000e-01, -2.000000000e-01, 3.000000000e-01],
        [-4.000000000e-01, 5.000000000e-01, -6.000000000e-01],
    ],
    [
        [2.500000000e-01, 5.000000000e-02, -1.500000000e-01],
        [3.500000000e-01, -4.500000000e-01, 5.500000000e-01],
    ],
    [
        [-3.000000000e-01, 2.000000000e-01, 1.000000000e-01],
        [0.000000000e+00, -1.000000000e-01, 2.000000000e-01],
    ],
    [
        [5.000000000e-02, -5.000000000e-02, 4.000000000e-01],
        [-2.000000000e-01, 3.000000000e-01, -3.500000000e-01],
    ],
];
pub(super) const GRADS_B: [[f32; 2]; 4] = [
    [1.500000000e-01, -2.500000000e-01],
    [-5.000000000e-02, 4.000000000e-01],
    [3.000000000e-01, 1.000000000e-01],
    [-2.000000000e-01, -1.500000000e-01],
];

// PLAIN: lr=0.1 momentum=0.0 dampening=0.0 nesterov=False weight_decay(w)=0.0 weight_decay(b)=0.0
const PLAIN: [[f32; 8]; 4] = [
    [
        4.900000095e-01,
        -2.300000042e-01,
        9.699999690e-01,
        7.900000215e-01,
        5.000000075e-02,
        -5.400000215e-01,
        1.850000024e-01,
        -2.750000060e-01,
    ],
    [
        4.650000036e-01,
        -2.349999994e-01,
        9.849999547e-01,
        7.549999952e-01,
        9.499999881e-02,
        -5.950000286e-01,
        1.899999976e-01,
        -3.149999976e-01,
    ],
    [
        4.950000048e-01,
        -2.549999952e-01,
        9.749999642e-01,
        7.549999952e-01,
        1.049999967e-01,
        -6.150000095e-01,
        1.599999964e-01,
        -3.249999881e-01,
    ],
    [
        4.900000095e-01,
        -2.500000000e-01,
        9.349999428e-01,
        7.749999762e-01,
        7.499999553e-02,
        -5.799999833e-01,
        1.799999923e-01,
        -3.099999726e-01,
    ],
];

// MOMENTUM: lr=0.1 momentum=0.9 dampening=0.0 nesterov=False weight_decay(w)=0.0 weight_decay(b)=0.0
const MOMENTUM: [[f32; 8]; 4] = [
    [
        4.900000095e-01,
        -2.300000042e-01,
        9.699999690e-01,
        7.900000215e-01,
        5.000000075e-02,
        -5.400000215e-01,
        1.850000024e-01,
        -2.750000060e-01,
    ],
    [
        4.560000002e-01,
        -2.170000076e-01,
        9.579999447e-01,
        7.910000086e-01,
        5.000000075e-02,
        -5.410000086e-01,
        1.765000075e-01,
        -2.925000191e-01,
    ],
    [
        4.553999901e-01,
        -2.253000140e-01,
        9.371999502e-01,
        7.918999791e-01,
        6.000000238e-02,
        -5.619000196e-01,
        1.388500035e-01,
        -3.182500303e-01,
    ],
    [
        4.498599768e-01,
        -2.277700156e-01,
        8.784799576e-01,
        8.127099872e-01,
        3.900000080e-02,
        -5.457100272e-01,
        1.249650046e-01,
        -3.264250457e-01,
    ],
];

// MOMENTUM_DAMPENING: lr=0.1 momentum=0.9 dampening=0.1 nesterov=False weight_decay(w)=0.0 weight_decay(b)=0.0
const MOMENTUM_DAMPENING: [[f32; 8]; 4] = [
    [
        4.900000095e-01,
        -2.300000042e-01,
        9.699999690e-01,
        7.900000215e-01,
        5.000000075e-02,
        -5.400000215e-01,
        1.850000024e-01,
        -2.750000060e-01,
    ],
    [
        4.584999979e-01,
        -2.164999992e-01,
        9.564999938e-01,
        7.944999933e-01,
        4.549999908e-02,
        -5.354999900e-01,
        1.759999990e-01,
        -2.885000110e-01,
    ],
    [
        4.571500123e-01,
        -2.223500013e-01,
        9.353500009e-01,
        7.985500097e-01,
        5.044999719e-02,
        -5.494499803e-01,
        1.409000009e-01,
        -3.096500039e-01,
    ],
    [
        4.514349997e-01,
        -2.231149971e-01,
        8.803150058e-01,
        8.201950192e-01,
        2.790499665e-02,
        -5.305050015e-01,
        1.273099929e-01,
        -3.151850104e-01,
    ],
];

// NESTEROV: lr=0.1 momentum=0.9 dampening=0.0 nesterov=True weight_decay(w)=0.0 weight_decay(b)=0.0
const NESTEROV: [[f32; 8]; 4] = [
    [
        4.810000062e-01,
        -2.119999975e-01,
        9.430000186e-01,
        8.259999752e-01,
        5.000001285e-03,
        -4.860000312e-01,
        1.714999974e-01,
        -2.524999976e-01,
    ],
    [
        4.254000187e-01,
        -2.053000033e-01,
        9.472000003e-01,
        7.918999791e-01,
        5.000000075e-02,
        -5.419000387e-01,
        1.688499898e-01,
        -3.082500100e-01,
    ],
    [
        4.548600316e-01,
        -2.327700108e-01,
        9.184799790e-01,
        7.927100062e-01,
        6.899999827e-02,
        -5.807100534e-01,
        1.049649864e-01,
        -3.414250016e-01,
    ],
    [
        4.448740184e-01,
        -2.299930155e-01,
        8.256319761e-01,
        8.314390182e-01,
        2.009999566e-02,
        -5.311390758e-01,
        1.124684885e-01,
        -3.337824941e-01,
    ],
];

// MOMENTUM_WD_WEIGHT_ONLY: lr=0.1 momentum=0.9 dampening=0.0 nesterov=False weight_decay(w)=0.01 weight_decay(b)=0.0
const MOMENTUM_WD_WEIGHT_ONLY: [[f32; 8]; 4] = [
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

// NESTEROV_WD_ALL: lr=0.1 momentum=0.9 dampening=0.0 nesterov=True weight_decay(w)=0.05 weight_decay(b)=0.05
const NESTEROV_WD_ALL: [[f32; 8]; 4] = [
    [
        4.762499928e-01,
        -2.096250057e-01,
        9.334999919e-01,
        8.188750148e-01,
        4.050004762e-03,
        -4.803000093e-01,
        1.695999950e-01,
        -2.496500015e-01,
    ],
    [
        4.141006172e-01,
        -1.999210715e-01,
        9.247817397e-01,
        7.739582062e-01,
        4.860652611e-02,
        -5.292071700e-01,
        1.645287871e-01,
        -3.018133342e-01,
    ],
    [
        4.358753562e-01,
        -2.237315923e-01,
        8.798506260e-01,
        7.613654137e-01,
        6.676386297e-02,
        -5.588575006e-01,
        9.766487777e-02,
        -3.300165236e-01,
    ],
    [
        4.166952670e-01,
        -2.164352536e-01,
        7.682155967e-01,
        7.842817307e-01,
        1.668993384e-02,
        -4.981150627e-01,
        1.022999287e-01,
        -3.161223829e-01,
    ],
];

fn run(momentum: f32, dampening: f32, nesterov: bool, wd_w: f32, wd_b: f32) -> Vec<[f32; 8]> {
    let mut params: Vec<f32> = W0.iter().flatten().chain(&B0).copied().collect();
    let mut sgd = Sgd::new(
        SgdConfig {
            lr: 0.1,
            momentum,
            dampening,
            nesterov,
        },
        vec![
            ParamGroup {
                range: 0..6,
                weight_decay: wd_w,
            },
            ParamGroup {
                range: 6..8,
                weight_decay: wd_b,
            },
        ],
    );
    let mut rows = Vec::new();
    for t in 0..4 {
        let grad: Vec<f32> = GRADS_W[t]
            .iter()
            .flatten()
            .chain(&GRADS_B[t])
            .copied()
            .collect();
        assert!(sgd.step(&mut params, &grad));
        rows.push(params.clone().try_into().unwrap());
    }
    rows
}

fn assert_matches(name: &str, got: &[[f32; 8]], want: &[[f32; 8]; 4]) {
    let fma = cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("fma");
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
            // Bit-exact where the CPU has FMA (PyTorch's kernels fuse too); else within 1 ulp-ish.
            let tol = if fma { 0.0 } else { 1e-6 };
            assert!(
                (g - w).abs() <= tol,
                "{name} step {} element {i}: {g:e} vs torch {w:e}",
                t + 1
            );
        }
    }
}

#[test]
fn plain_sgd_matches_torch() {
    assert_matches("PLAIN", &run(0.0, 0.0, false, 0.0, 0.0), &PLAIN);
}

#[test]
fn momentum_matches_torch() {
    assert_matches("MOMENTUM", &run(0.9, 0.0, false, 0.0, 0.0), &MOMENTUM);
}

#[test]
fn dampening_is_skipped_on_the_first_step_like_torch() {
    assert_matches(
        "MOMENTUM_DAMPENING",
        &run(0.9, 0.1, false, 0.0, 0.0),
        &MOMENTUM_DAMPENING,
    );
}

#[test]
fn nesterov_matches_torch() {
    assert_matches("NESTEROV", &run(0.9, 0.0, true, 0.0, 0.0), &NESTEROV);
}

#[test]
fn weight_decay_on_weights_only_matches_torch_parameter_groups() {
    assert_matches(
        "MOMENTUM_WD_WEIGHT_ONLY",
        &run(0.9, 0.0, false, 0.01, 0.0),
        &MOMENTUM_WD_WEIGHT_ONLY,
    );
}

#[test]
fn nesterov_with_weight_decay_on_both_groups_matches_torch() {
    assert_matches(
        "NESTEROV_WD_ALL",
        &run(0.9, 0.0, true, 0.05, 0.05),
        &NESTEROV_WD_ALL,
    );
}
