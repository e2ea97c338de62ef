//! The observer that records a run into its directory: metrics lines, best weights and the
//! checkpoints its policy asks for.

use crate::checkpoint::{Boundary, CheckpointPolicy, CheckpointStore};
use crate::error::Result;
use crate::model::Mlp;
use crate::model::weights::ModelMeta;
use crate::run::RunDir;
use crate::train::{EpochMetrics, Observer, RunIdentity, Snapshot};

/// Records epochs, best weights and checkpoints into a [`RunDir`].
#[derive(Debug)]
pub struct RunRecorder {
    dir: RunDir,
    mlp: Mlp,
    meta: ModelMeta,
    checkpoints: Checkpoints,
}

/// Where checkpoints go, when they are written, and what identifies the run in them.
#[derive(Debug)]
struct Checkpoints {
    store: CheckpointStore,
    policy: CheckpointPolicy,
    identity: RunIdentity,
}

impl RunRecorder {
    /// A recorder writing into `dir` the weights of `mlp` with `meta`, and checkpoints under
    /// `policy` identified by `identity`.
    pub fn new(
        dir: RunDir,
        mlp: Mlp,
        meta: ModelMeta,
        policy: CheckpointPolicy,
        identity: RunIdentity,
    ) -> Self {
        let store = CheckpointStore::new(dir.path());
        RunRecorder {
            dir,
            mlp,
            meta,
            checkpoints: Checkpoints {
                store,
                policy,
                identity,
            },
        }
    }

    /// The directory written to.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }
}

impl Observer for RunRecorder {
    fn on_epoch(&mut self, metrics: &EpochMetrics) -> Result<()> {
        self.dir.append_metrics(metrics)
    }

    fn on_best(&mut self, _epoch: usize, params: &[f32]) -> Result<()> {
        self.dir
            .write_weights("best", &self.mlp, params, Some(&self.meta))
    }

    fn wants_checkpoint(&mut self, boundary: Boundary) -> bool {
        self.checkpoints.policy.writes_at(boundary)
    }

    fn on_checkpoint(&mut self, snapshot: &Snapshot<'_>) -> Result<()> {
        let c = &self.checkpoints;
        let bytes = snapshot.to_bytes(&c.identity);
        c.store.write(snapshot.progress.global_step, &bytes)?;
        c.store.remove(&c.policy.to_remove(&c.store.steps()));
        Ok(())
    }
}
