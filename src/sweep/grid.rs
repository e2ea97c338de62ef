//! The runs a study trains at each batch size: every optimizer, momentum, learning-rate factor
//! and seed, in the order that lets pruning stop the hopeless ones soonest.

use crate::optim::OptimizerKind;
use crate::pipeline::BatchSize;
use crate::sweep::SweepConfig;
use crate::train::TrainConfig;

/// One cell of the grid at a batch size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSpec {
    /// The update rule.
    pub optimizer: OptimizerKind,
    /// The momentum (SGD's `momentum`, Adam's `beta1`) from `--momentum-grid`, or `None` for
    /// the one given with the training settings.
    pub momentum: Option<f32>,
    /// The factor on the scaled learning rate.
    pub lr_factor: f32,
    /// The run's seed.
    pub seed: u64,
}

/// The grid's factors, the one nearest 1 (the scaled rate itself) first, then outwards,
/// alternating above and below: the likely best run finishes first and becomes the reference
/// the others are pruned against.
pub fn center_out(factors: &[f32]) -> Vec<f32> {
    let mut f = factors.to_vec();
    f.sort_by(|a, b| {
        let (la, lb) = (a.log2().abs(), b.log2().abs());
        la.total_cmp(&lb).then(b.total_cmp(a))
    });
    f.dedup();
    f
}

/// Every run of one batch size, seed by seed (pruning compares runs of the same seed, which
/// share their initial weights and batch order), then optimizer, momentum, and learning-rate
/// factors from the centre out.
pub fn runs(base: &TrainConfig, sweep: &SweepConfig) -> Vec<RunSpec> {
    let optimizers: Vec<OptimizerKind> = match &sweep.optimizers {
        Some(list) => list.iter().map(|o| o.0).collect(),
        None => vec![base.optim.optimizer],
    };
    let momenta: Vec<Option<f32>> = match &sweep.momentum_grid {
        Some(list) => list.iter().copied().map(Some).collect(),
        None => vec![None],
    };
    let factors = center_out(&sweep.lr_grid);
    let mut out = Vec::new();
    for s in 0..sweep.seeds as u64 {
        for &optimizer in &optimizers {
            for &momentum in &momenta {
                for &lr_factor in &factors {
                    out.push(RunSpec {
                        optimizer,
                        momentum,
                        lr_factor,
                        seed: base.run.seed + s,
                    });
                }
            }
        }
    }
    out
}

/// The training settings of `spec` at batch size `batch`: the study's settings with the
/// cell's optimizer, momentum, learning-rate factor and seed; the noise scale measured, no
/// early stopping (each run trains its whole budget unless pruned).
pub fn config(base: &TrainConfig, batch: BatchSize, spec: &RunSpec) -> TrainConfig {
    let mut cfg = base.clone();
    cfg.batch.batch_size = batch;
    cfg.run.seed = spec.seed;
    cfg.run.noise_scale = true;
    cfg.run.patience = None;
    cfg.optim.optimizer = spec.optimizer;
    if let Some(m) = spec.momentum {
        match spec.optimizer {
            OptimizerKind::Sgd => cfg.optim.momentum = m,
            OptimizerKind::Adam | OptimizerKind::Adamw => cfg.optim.beta1 = m,
        }
    }
    if spec.optimizer != OptimizerKind::Sgd {
        // Nesterov is SGD's; a study comparing optimizers applies it to SGD only.
        cfg.optim.nesterov = false;
    }
    // The trainer scales `lr` for the batch size (`lr_scaling`); the factor multiplies the base.
    cfg.optim.lr = base.optim.lr * spec.lr_factor;
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setting::List;
    use crate::sweep::OptimizerChoice;

    #[test]
    fn factors_run_from_the_scaled_rate_outwards() {
        let grid = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
        assert_eq!(center_out(&grid), [1.0, 2.0, 0.5, 4.0, 0.25, 8.0, 0.125]);
    }

    #[test]
    fn every_optimizer_momentum_factor_and_seed_is_one_run() {
        let base = TrainConfig::default();
        let sweep = SweepConfig {
            lr_grid: List(vec![0.5, 1.0]),
            seeds: 2,
            momentum_grid: Some(List(vec![0.0, 0.9])),
            optimizers: Some(List(vec![
                OptimizerChoice(OptimizerKind::Sgd),
                OptimizerChoice(OptimizerKind::Adam),
            ])),
            ..SweepConfig::default()
        };
        let specs = runs(&base, &sweep);
        assert_eq!(specs.len(), 2 * 2 * 2 * 2);
        let adam = specs
            .iter()
            .find(|s| s.optimizer == OptimizerKind::Adam && s.momentum == Some(0.0))
            .unwrap();
        let cfg = config(&base, BatchSize::Rows(16), adam);
        assert_eq!(cfg.optim.beta1, 0.0);
        assert_eq!(cfg.optim.momentum, base.optim.momentum);
        assert!(cfg.run.noise_scale && cfg.run.patience.is_none());
    }
}
