//! Per-shard gradients on a rayon pool, reduced in a fixed order into the batch-mean gradient.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::loss::{Loss, LossSum, Targets};
use crate::model::matmul::Accum;
use crate::model::{DropoutKey, Mlp, Mode, PackedWeights, WeightWriter, Workspace};
use crate::optim::StepUpdate;
use crate::parallel::collective::{Collective, Share, SingleProcess, Tag};
use crate::parallel::noise::NoiseSample;

/// Shard gradients computed before they are reduced into the output: bounds the memory held in
/// shard buffers to `WAVE × parameters` whatever the batch size.
pub const WAVE: usize = 16;

/// Chunk of the parameter vector one reduction task sums (fits the L2 cache with a few inputs).
const REDUCE_CHUNK: usize = 1 << 14;

/// Chunk of a running sum sent along the chain at a time (1 MiB, a whole number of reduction
/// chunks): small enough that the next rank starts adding while the rest is on its way.
const CHAIN_CHUNK: usize = 16 * REDUCE_CHUNK;

/// Whether a training step also measures what the gradient-noise scale needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseEstimate {
    /// Sum the shard gradients' squared norms during the reduction (batches of ≥ 2 shards).
    Measure,
    /// Only the gradient.
    Skip,
}

/// A batch as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    /// `rows × inputs` features.
    pub x: &'a [f32],
    /// The rows' targets.
    pub targets: Targets<'a>,
    /// Number of rows.
    pub rows: usize,
}

/// What a training step's gradient pass reports besides the gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepResult {
    /// The batch's summed loss.
    pub loss: LossSum,
    /// The step's gradient-noise estimates, when asked for and the batch has two shards or more.
    pub noise: Option<NoiseSample>,
    /// Whether any process asked to stop after this step.
    pub stop: bool,
}

/// Where a step's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    /// Forward and backward passes over the shards.
    pub compute: Duration,
    /// Summing the shard gradients.
    pub reduce: Duration,
}

/// A step in progress: what its runs of shards have added so far (see
/// [`GradientEngine::add_shards`]).
#[derive(Debug)]
pub struct StepAccumulator {
    /// Shards in the whole batch.
    shards: usize,
    /// The shards this process computes (all of them in one process).
    mine: Range<usize>,
    /// Rows the mean is taken over.
    mean_over: usize,
    /// The next shard expected.
    done: usize,
    /// Shard buffers, taken from the engine's pool for the step.
    bufs: Vec<Vec<f32>>,
    /// Buffers at the front of `bufs` computed but not yet added: the sum of the shards before
    /// this process's has not arrived yet.
    pending: usize,
    /// Rows of each pending shard.
    pending_rows: [usize; WAVE],
    /// Whether the gradient holds the sum of every shard before `done`.
    joined: bool,
    /// Keep the batch's last wave for [`GradientEngine::finish_step_and_update`].
    defer_last: bool,
    /// The scalars that came along the chain with the shards before this process's.
    trailer: Option<Trailer>,
    /// Per-shard loss sums of this process's shards, in shard order.
    losses: Vec<LossSum>,
    /// Per-shard terms of the noise estimate (squared norms of the shard means).
    small: Vec<f64>,
    /// `|G_big|²`, once the batch's gradient is complete here.
    big: f64,
    /// Per-chunk sums of squares for the noise estimate (with two shards or more).
    squares: Option<Vec<[f64; WAVE + 1]>>,
    /// The step's weights, packed once for every shard (taken from the engine at the step's
    /// first run).
    weights: Option<PackedWeights>,
}

impl StepAccumulator {
    /// Keeps the batch's last wave of shard gradients unsummed, for
    /// [`GradientEngine::finish_step_and_update`] to sum and apply in one pass (one process
    /// only).
    pub fn defer_last_wave(&mut self) {
        self.defer_last = true;
    }
}

/// What travels along the chain after a running sum's chunks: the loss sums, the noise terms
/// and the stop flag of the shards so far; the last rank adds `|G_big|²` and broadcasts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Trailer {
    loss: LossSum,
    small: f64,
    stop: bool,
    big: f64,
}

impl Trailer {
    const LEN: usize = 5;

    fn to_array(self) -> [f64; Self::LEN] {
        [
            self.loss.sum,
            self.loss.correct as f64, // exact below 2^53 rows
            self.small,
            f64::from(u8::from(self.stop)),
            self.big,
        ]
    }

    fn from_array(a: [f64; Self::LEN]) -> Self {
        Trailer {
            loss: LossSum {
                sum: a[0],
                correct: a[1] as usize,
            },
            small: a[2],
            stop: a[3] != 0.0,
            big: a[4],
        }
    }
}

/// Computes batch gradients shard by shard.
///
/// # Determinism
/// A batch of `B` rows is cut into `ceil(B / shard_size)` shards of `shard_size` rows (the last
/// may be shorter). The cut does not depend on the number of threads. Each shard's gradient is
/// computed by one thread with single-threaded kernels, and the shard gradients are added in
/// shard order (`((g₀ + g₁) + g₂) + …`) for every parameter; threads only split the parameter
/// vector between them. So the result is bit-identical for any thread count, unlike a
/// `par_iter().sum()`, whose association depends on work stealing.
#[derive(Debug)]
pub struct GradientEngine {
    mlp: Mlp,
    loss: Loss,
    shard_size: usize,
    workspaces: Mutex<Vec<Workspace>>,
    buffers: Mutex<Vec<Vec<f32>>>,
    /// Per-chunk sums of squares for the noise scale, `[chunk][shard…, output]`.
    squares: Mutex<Vec<[f64; WAVE + 1]>>,
    /// Per-shard loss sums and noise terms of a step (kept between steps: no allocation).
    lists: Mutex<(Vec<LossSum>, Vec<f64>)>,
    /// The weights packed for the products, kept between steps (no allocation).
    weights: Mutex<Option<PackedWeights>>,
    /// The processes the batch is shared with.
    collective: Arc<dyn Collective>,
}

impl GradientEngine {
    /// An engine for `mlp` trained on `loss`, cutting batches into shards of `shard_size` rows.
    ///
    /// # Panics
    /// If `shard_size` is zero (validated at the CLI).
    pub fn new(mlp: Mlp, loss: Loss, shard_size: usize) -> Self {
        assert!(shard_size > 0, "shard size must be positive");
        GradientEngine {
            mlp,
            loss,
            shard_size,
            workspaces: Mutex::new(Vec::new()),
            buffers: Mutex::new(Vec::new()),
            squares: Mutex::new(Vec::new()),
            lists: Mutex::new((Vec::new(), Vec::new())),
            weights: Mutex::new(None),
            collective: Arc::new(SingleProcess),
        }
    }

    /// Shares every batch with the processes of `collective`: this process computes its
    /// [`Share`] of the shards, and the sum continues along the chain (see
    /// [`crate::parallel::collective`]), so the gradient is bit-identical to one process's.
    pub fn with_collective(mut self, collective: Arc<dyn Collective>) -> Self {
        self.collective = collective;
        self
    }

    /// The part of every batch this process computes.
    pub fn share(&self) -> Share {
        self.collective.share()
    }

    /// The model.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Rows per shard.
    pub fn shard_size(&self) -> usize {
        self.shard_size
    }

    fn take_workspace(&self) -> Workspace {
        let ws = self.workspaces.lock().expect("workspace pool").pop();
        ws.unwrap_or_else(|| Workspace::new(&self.mlp, self.shard_size))
    }

    fn put_workspace(&self, ws: Workspace) {
        self.workspaces.lock().expect("workspace pool").push(ws);
    }

    fn shard<'a>(&self, batch: &BatchRef<'a>, k: usize) -> (usize, BatchRef<'a>) {
        let (s, inputs, outputs) = (self.shard_size, self.mlp.inputs(), self.mlp.outputs());
        let start = k * s;
        let rows = s.min(batch.rows - start);
        let targets = match batch.targets {
            Targets::Values(v) => Targets::Values(&v[start * outputs..(start + rows) * outputs]),
            Targets::Labels(l) => Targets::Labels(&l[start..start + rows]),
        };
        let x = &batch.x[start * inputs..(start + rows) * inputs];
        (start, BatchRef { x, targets, rows })
    }

    /// Forward, loss and backward of shard `k` of `run` into `grad` (overwritten); `run`
    /// starts at row `offset` of its batch (dropout masks are keyed by the row in the batch).
    #[allow(clippy::too_many_arguments)] // one shard's inputs and output, each distinct
    fn shard_gradient(
        &self,
        params: &[f32],
        weights: Option<&PackedWeights>,
        run: &BatchRef<'_>,
        offset: usize,
        k: usize,
        mean_over: usize,
        key: DropoutKey,
        grad: &mut [f32],
    ) -> LossSum {
        let (start, shard) = self.shard(run, k);
        let mode = Mode::Train {
            key,
            offset: offset + start,
        };
        let mut ws = self.take_workspace();
        self.mlp
            .forward_packed(params, weights, shard.x, shard.rows, &mut ws, mode);
        let (out, dout) = ws.output_grad(shard.rows, self.mlp.outputs());
        let sum = self.loss.sum_over(
            out,
            self.mlp.outputs(),
            shard.targets,
            mean_over,
            Some(dout),
        );
        self.mlp
            .backward_packed(params, weights, shard.x, shard.rows, &mut ws, mode, grad);
        self.put_workspace(ws);
        sum
    }

    /// The engine's packed weights (allocated on first use), packed from `params` for shards of
    /// up to `rows` rows.
    fn packed_weights(&self, params: &[f32], rows: usize) -> PackedWeights {
        let taken = self.weights.lock().expect("packed weights").take();
        let mut w = taken.unwrap_or_else(|| PackedWeights::new(&self.mlp, self.shard_size));
        let rows = rows.min(self.shard_size);
        // The last step's update pass may have written these weights there already.
        if !w.take_written(params, rows) {
            w.pack(&self.mlp, params, rows);
        }
        w
    }

    /// Grows `bufs` to the shard buffers a step over `mine` shards of this process uses: one
    /// per shard of a wave (on first use only).
    fn grow_buffers(&self, bufs: &mut Vec<Vec<f32>>, mine: usize) {
        while bufs.len() < mine.min(WAVE) {
            bufs.push(vec![0.0; self.mlp.num_params()]);
        }
    }

    /// Prepares the engine for steps over batches of `batch_rows` rows, on the current rayon
    /// pool, before the training clock starts: one shard's gradient of zeros per thread the
    /// first wave will use, into the shard buffers steps will use, so that the workspaces, the
    /// shard buffers, the packed weights and every thread's packing buffers are allocated and
    /// their pages touched here and not in the first epoch's steps (on the seed's model, those
    /// made the first epoch take 8 times as long as the others).
    ///
    /// Changes nothing a step computes: every buffer is overwritten before it is read, the
    /// weights are packed again at each step's start, and dropout masks are keyed, not drawn.
    /// Local to this process (no message is sent).
    pub fn warm_up(&self, params: &[f32], batch_rows: usize) {
        let s = self.shard_size;
        let total = batch_rows.div_ceil(s);
        let mine = self.share().shards(total);
        if mine.is_empty() {
            return;
        }
        // The shards of the first wave that run at once, each on its own thread.
        let shards = mine.len().min(WAVE).min(rayon::current_num_threads());
        let rows = (shards * s).min(batch_rows);
        let x = vec![0f32; rows * self.mlp.inputs()];
        let (values, labels);
        let targets = match self.loss {
            Loss::Mse => {
                values = vec![0f32; rows * self.mlp.outputs()];
                Targets::Values(&values)
            }
            Loss::CrossEntropy => {
                labels = vec![0u32; rows];
                Targets::Labels(&labels)
            }
        };
        let run = BatchRef {
            x: &x,
            targets,
            rows,
        };
        let weights = self.packed_weights(params, rows);
        let key = DropoutKey {
            seed: 0,
            epoch: 0,
            step: 0,
        };
        let mut bufs = std::mem::take(&mut *self.buffers.lock().expect("buffer pool"));
        if total > 1 {
            self.grow_buffers(&mut bufs, mine.len());
            bufs[..shards]
                .par_iter_mut()
                .enumerate()
                .for_each(|(i, buf)| {
                    self.shard_gradient(params, Some(&weights), &run, 0, i, rows, key, buf);
                });
        } else {
            // One shard per step: it is computed straight into the step's gradient.
            let mut grad = vec![0f32; self.mlp.num_params()];
            self.shard_gradient(params, Some(&weights), &run, 0, 0, rows, key, &mut grad);
        }
        *self.buffers.lock().expect("buffer pool") = bufs;
        *self.weights.lock().expect("packed weights") = Some(weights);
    }

    /// The gradient of the mean loss over `batch` (training mode: dropout keyed by `key`),
    /// written into `grad`; returns the batch's summed loss. The whole batch at once:
    /// [`GradientEngine::begin_step`], one [`GradientEngine::add_shards`] and
    /// [`GradientEngine::finish_step`].
    ///
    /// `mean_over` is the row count of the whole (global) batch: the batch's own rows in one
    /// process; all processes' rows when a [`crate::parallel::Collective`] joins them.
    ///
    /// With `noise`, the squared norms the gradient-noise estimate needs are summed during the
    /// reduction's pass over the shard gradients (see [`NoiseSample`]); they cost no extra pass.
    ///
    /// Must run inside the rayon pool meant to do the work (see [`crate::train`]); the engine
    /// never picks a pool itself.
    #[allow(clippy::too_many_arguments)] // one step's inputs and outputs, each distinct
    pub fn gradient(
        &self,
        params: &[f32],
        batch: &BatchRef<'_>,
        mean_over: usize,
        key: DropoutKey,
        grad: &mut [f32],
        times: &mut StepTimes,
        noise: NoiseEstimate,
    ) -> StepResult {
        let mut step = self.begin_step(batch.rows, mean_over, noise);
        self.add_shards(&mut step, params, batch, 0, key, grad, times);
        self.finish_step(step, grad, false, times)
    }

    /// Starts a step over a batch of `batch_rows` rows (the mean is over `mean_over` rows),
    /// whose shards then arrive in runs ([`GradientEngine::add_shards`]): all of them in one
    /// process, this process's [`Share`] when a batch is shared.
    pub fn begin_step(
        &self,
        batch_rows: usize,
        mean_over: usize,
        noise: NoiseEstimate,
    ) -> StepAccumulator {
        let shards = batch_rows.div_ceil(self.shard_size);
        let mine = self.share().shards(shards);
        let squares = (noise == NoiseEstimate::Measure && shards > 1).then(|| {
            let mut sq = std::mem::take(&mut *self.squares.lock().expect("squares"));
            sq.resize(
                self.mlp.num_params().div_ceil(REDUCE_CHUNK),
                [0.0; WAVE + 1],
            );
            sq
        });
        let bufs = std::mem::take(&mut *self.buffers.lock().expect("buffer pool"));
        let (mut losses, mut small) = std::mem::take(&mut *self.lists.lock().expect("lists"));
        losses.clear();
        small.clear();
        StepAccumulator {
            shards,
            done: mine.start,
            // Nothing comes before the first shard: the running sum starts here.
            joined: mine.start == 0,
            defer_last: false,
            mine,
            mean_over,
            bufs,
            pending: 0,
            pending_rows: [0; WAVE],
            trailer: None,
            losses,
            small,
            big: 0.0,
            squares,
            weights: None,
        }
    }

    /// Adds the gradients of the shards of `run` into `grad`: `run` holds the batch's rows from
    /// `offset` on (a multiple of the shard size), a whole number of shards unless it is the
    /// batch's last run. Runs must come in row order, and cover this process's share of the
    /// batch (see [`Share::rows`]).
    ///
    /// # Determinism
    /// The shard gradients are summed in shard order whatever the runs are: cutting a batch into
    /// runs changes neither the shards nor the order of their sum, so a step streamed run by
    /// run ends on the same bits as the whole batch at once.
    ///
    /// A process whose share does not start the batch keeps its first wave of shard gradients
    /// until the sum of the shards before them arrives (at its next wave, or at the end of the
    /// step), then adds them in order.
    ///
    /// # Panics
    /// If `offset` is not where the previous run ended, a run that is not the last has a
    /// partial shard, or a run goes past this process's share.
    #[allow(clippy::too_many_arguments)] // one run's inputs and outputs, each distinct
    pub fn add_shards(
        &self,
        step: &mut StepAccumulator,
        params: &[f32],
        run: &BatchRef<'_>,
        offset: usize,
        key: DropoutKey,
        grad: &mut [f32],
        times: &mut StepTimes,
    ) {
        let s = self.shard_size;
        assert_eq!(
            offset,
            step.done * s,
            "runs of a batch must come in row order"
        );
        let shards = run.rows.div_ceil(s);
        assert!(
            step.done + shards <= step.mine.end,
            "a run goes past this process's shards"
        );
        assert!(
            step.done + shards == step.mine.end || run.rows.is_multiple_of(s),
            "only the batch's last run may end in a partial shard"
        );
        let t0 = Instant::now();
        if step.weights.is_none() {
            // Once per step, in parallel: every shard's products read these panels.
            // The run's first shard is as large as the step's shards get.
            step.weights = Some(self.packed_weights(params, run.rows));
            if step.shards > 1 {
                // (One shard: the whole run is timed as compute below.)
                times.compute += t0.elapsed();
            }
        }
        if step.shards == 1 {
            let weights = step.weights.as_ref();
            let loss =
                self.shard_gradient(params, weights, run, offset, 0, step.mean_over, key, grad);
            times.compute += t0.elapsed();
            step.losses.push(loss);
            step.done = 1;
            return;
        }
        self.grow_buffers(&mut step.bufs, step.mine.len());
        let mut sums = [LossSum::default(); WAVE];
        for first in (0..shards).step_by(WAVE) {
            let n = WAVE.min(shards - first);
            if step.pending > 0 {
                // The buffers are needed again: wait for the sum before this process's shards.
                self.join(step, grad, times, false);
            }
            let t = Instant::now();
            let mean_over = step.mean_over;
            let weights = step.weights.as_ref();
            let compute = |i: usize, out: &mut [f32]| {
                self.shard_gradient(params, weights, run, offset, first + i, mean_over, key, out)
            };
            // The step's first shard is computed straight into the gradient, which the sum
            // starts from (a copy fewer); the others into the shard buffers.
            let in_place = step.done == 0;
            if in_place {
                let (first_sum, rest) = sums[..n].split_first_mut().expect("a wave has shards");
                let bufs = &mut step.bufs[1..n];
                rayon::join(
                    || *first_sum = compute(0, grad),
                    || {
                        bufs.par_iter_mut()
                            .zip(rest)
                            .enumerate()
                            .for_each(|(i, (buf, sum))| *sum = compute(i + 1, buf))
                    },
                );
            } else {
                step.bufs[..n]
                    .par_iter_mut()
                    .zip(&mut sums[..n])
                    .enumerate()
                    .for_each(|(i, (buf, sum))| *sum = compute(i, buf));
            }
            times.compute += t.elapsed();
            step.losses.extend_from_slice(&sums[..n]);
            let mut rows = [0; WAVE];
            for (i, r) in rows[..n].iter_mut().enumerate() {
                *r = self.shard(run, first + i).1.rows;
            }
            let last = step.done + n == step.shards;
            if step.joined && !(last && step.defer_last) {
                let t = Instant::now();
                let start = if in_place { Start::InPlace } else { Start::Add };
                let squares = step.squares.as_deref_mut().map(|sq| (sq, last));
                reduce_range(grad, 0, &step.bufs[..n], start, squares);
                self.record_norms(step, &rows[..n], last);
                times.reduce += t.elapsed();
            } else {
                step.pending = n;
                step.pending_rows = rows;
            }
            step.done += n;
        }
    }

    /// After a pass over the gradient that summed `rows.len()` shards into it: their noise
    /// terms, in shard order, and `|G_big|²` when the pass was the batch's `last`.
    fn record_norms(&self, step: &mut StepAccumulator, rows: &[usize], last: bool) {
        let Some(sq) = step.squares.as_ref() else {
            return;
        };
        // Chunk partials combined in chunk order, shards in shard order.
        for (i, &r) in rows.iter().enumerate() {
            // A shard buffer holds its rows' gradient sum over the batch size: scale to the
            // shard's own mean.
            let scale = step.mean_over as f64 / r as f64;
            let norm: f64 = sq.iter().map(|c| c[i]).sum();
            step.small.push(norm * scale * scale);
        }
        if last {
            step.big = sq.iter().map(|c| c[WAVE]).sum();
        }
    }

    /// Receives, from the previous rank, the running sum of every shard before this process's
    /// (chunk by chunk) and what came with it, and adds the pending shards into each chunk as it
    /// arrives; with `forward`, passes each chunk on to the next rank at once.
    fn join(
        &self,
        step: &mut StepAccumulator,
        grad: &mut [f32],
        times: &mut StepTimes,
        forward: bool,
    ) {
        let t = Instant::now();
        let c = &*self.collective;
        let (prev, next) = (c.rank() - 1, c.rank() + 1);
        let k = step.pending;
        let last = step.done == step.shards;
        for start in (0..grad.len()).step_by(CHAIN_CHUNK) {
            let range = start..(start + CHAIN_CHUNK).min(grad.len());
            c.recv_f32(prev, Tag::Chunk, &mut grad[range.clone()]);
            let squares = step.squares.as_deref_mut().map(|sq| {
                let chunks = range.start / REDUCE_CHUNK..range.end.div_ceil(REDUCE_CHUNK);
                (&mut sq[chunks], last)
            });
            reduce_range(
                &mut grad[range.clone()],
                range.start,
                &step.bufs[..k],
                Start::Add,
                squares,
            );
            if forward {
                c.send_f32(next, Tag::Chunk, &grad[range]);
            }
        }
        let mut trailer = [0.0; Trailer::LEN];
        c.recv_f64(prev, Tag::Header, &mut trailer);
        step.trailer = Some(Trailer::from_array(trailer));
        let rows = step.pending_rows;
        self.record_norms(step, &rows[..k], last);
        step.pending = 0;
        step.joined = true;
        times.reduce += t.elapsed();
    }

    /// Ends a step whose every shard was added, as [`GradientEngine::finish_step`], and applies
    /// the optimizer's `update` in the same pass that sums the last wave of shards: each chunk
    /// of the gradient is summed (its noise-scale squares taken) and its parameters and moments
    /// updated while it is in cache, instead of a second pass over the whole model. Without
    /// noise-scale squares the sum is not even stored: it is added up block by block in a
    /// scratch block in L1 and applied from there, and `grad` is left holding partial sums.
    /// Returns the step's result and whether every updated parameter is finite.
    ///
    /// # Determinism
    /// The sums and the update are the same element-wise operations in the same order as
    /// [`GradientEngine::finish_step`] followed by [`crate::optim::Optimizer::step`]: the
    /// same bits, one pass fewer.
    ///
    /// # Panics
    /// Unless the step was started with [`StepAccumulator::defer_last_wave`] in one process,
    /// and every shard was added.
    pub fn finish_step_and_update(
        &self,
        mut step: StepAccumulator,
        grad: &mut [f32],
        params: &mut [f32],
        update: StepUpdate<'_>,
        stop: bool,
        times: &mut StepTimes,
    ) -> (StepResult, bool) {
        assert!(step.defer_last, "the step must keep its last wave");
        assert_eq!(self.collective.world_size(), 1, "one process only");
        assert_eq!(step.done, step.shards, "a step ended before its last shard");
        let t = Instant::now();
        let k = step.pending;
        // The last wave starts the sum when it is the batch's only one, its first shard already
        // in `grad`. (A batch of one shard was computed straight into `grad`: then there is
        // nothing to add, only the update.)
        let start = if step.done - k == 0 {
            Start::InPlace
        } else {
            Start::Add
        };
        let squares = step.squares.as_deref_mut().filter(|_| k > 0);
        // Each chunk of new weights goes into the next step's packed panels while in cache.
        let mut weights = step.weights.take();
        let writer = weights.as_mut().map(|w| w.begin_update(&self.mlp));
        let finite = reduce_and_update(
            grad,
            params,
            &step.bufs[..k],
            start,
            squares,
            update,
            writer.as_ref(),
        );
        if let Some(w) = weights.as_mut() {
            w.written_from(params);
        }
        step.weights = weights;
        if k > 0 {
            let rows = step.pending_rows;
            self.record_norms(&mut step, &rows[..k], true);
        }
        step.pending = 0;
        times.reduce += t.elapsed();
        (self.finish_step(step, grad, stop, times), finite)
    }

    /// Ends a step whose every shard was added: the batch's summed loss, the noise estimates
    /// when measured, and whether any process asked to `stop`. When the batch is shared, the
    /// chain ends here: every process then holds the batch's gradient in `grad`, the same bits
    /// as one process's.
    ///
    /// # Panics
    /// If shards of this process's share are missing.
    pub fn finish_step(
        &self,
        mut step: StepAccumulator,
        grad: &mut [f32],
        stop: bool,
        times: &mut StepTimes,
    ) -> StepResult {
        assert_eq!(
            step.done, step.mine.end,
            "a step ended before its last shard"
        );
        let c = &*self.collective;
        let (rank, world) = (c.rank(), c.world_size());
        let own = |step: &StepAccumulator, before: Trailer| {
            let mut t = before;
            for s in &step.losses {
                t.loss.add(*s);
            }
            for v in &step.small {
                t.small += v;
            }
            t.stop |= stop;
            t
        };
        let trailer = if world == 1 {
            Trailer {
                big: step.big,
                ..own(&step, Trailer::default())
            }
        } else {
            let t = Instant::now();
            let sends = rank + 1 < world && step.mine.end > 0;
            let send_all = |grad: &[f32]| {
                for start in (0..grad.len()).step_by(CHAIN_CHUNK) {
                    let end = (start + CHAIN_CHUNK).min(grad.len());
                    c.send_f32(rank + 1, Tag::Chunk, &grad[start..end]);
                }
            };
            if rank > 0 && step.trailer.is_none() {
                if step.mine.start > 0 {
                    // The sum so far arrives; the pending shards (if any) are added to it and
                    // it goes on to the next rank chunk by chunk.
                    self.join(&mut step, grad, times, sends);
                } else {
                    // Nothing came before: only the scalars.
                    let mut a = [0.0; Trailer::LEN];
                    c.recv_f64(rank - 1, Tag::Header, &mut a);
                    step.trailer = Some(Trailer::from_array(a));
                    if sends {
                        send_all(grad);
                    }
                }
            } else if sends {
                send_all(grad);
            }
            let mut trailer = own(&step, step.trailer.unwrap_or_default());
            trailer.big = step.big;
            let mut a = trailer.to_array();
            if rank + 1 < world {
                c.send_f64(rank + 1, Tag::Header, &a);
            }
            // The last rank holds the batch's sum.
            c.broadcast_f32(world - 1, grad);
            c.broadcast_f64(world - 1, &mut a);
            times.reduce += t.elapsed();
            Trailer::from_array(a)
        };
        let noise = step.squares.take().map(|sq| {
            *self.squares.lock().expect("squares") = sq;
            NoiseSample::estimate(step.shards, step.mean_over, trailer.small, trailer.big)
        });
        *self.buffers.lock().expect("buffer pool") = std::mem::take(&mut step.bufs);
        if let Some(w) = step.weights.take() {
            *self.weights.lock().expect("packed weights") = Some(w);
        }
        *self.lists.lock().expect("lists") = (
            std::mem::take(&mut step.losses),
            std::mem::take(&mut step.small),
        );
        StepResult {
            loss: trailer.loss,
            noise: noise.flatten(),
            stop: trailer.stop,
        }
    }

    /// The summed loss of `batch` in evaluation mode (no dropout, no gradient), in one
    /// process.
    pub fn eval_loss(&self, params: &[f32], batch: &BatchRef<'_>) -> LossSum {
        self.shard_losses(params, batch)
            .into_iter()
            .fold(LossSum::default(), |mut a, s| {
                a.add(s);
                a
            })
    }

    /// The summed loss in evaluation mode of a batch of `batch_rows` rows shared between the
    /// processes: `part` holds this process's rows of it ([`Share::rows`]). Every process gets
    /// the same sum, added in shard order as [`GradientEngine::eval_loss`] adds it.
    pub fn eval_loss_shared(
        &self,
        params: &[f32],
        part: &BatchRef<'_>,
        batch_rows: usize,
    ) -> LossSum {
        let c = &*self.collective;
        let (rank, world) = (c.rank(), c.world_size());
        debug_assert_eq!(
            part.rows,
            self.share().rows(batch_rows, self.shard_size).len()
        );
        let mut total = [0.0; 2];
        if rank > 0 {
            c.recv_f64(rank - 1, Tag::Header, &mut total);
        }
        let mut sum = LossSum {
            sum: total[0],
            correct: total[1] as usize,
        };
        for s in self.shard_losses(params, part) {
            sum.add(s);
        }
        let mut total = [sum.sum, sum.correct as f64];
        if rank + 1 < world {
            c.send_f64(rank + 1, Tag::Header, &total);
        }
        c.broadcast_f64(world - 1, &mut total);
        LossSum {
            sum: total[0],
            correct: total[1] as usize,
        }
    }

    /// Per-shard evaluation-mode loss sums of `batch`, in shard order.
    fn shard_losses(&self, params: &[f32], batch: &BatchRef<'_>) -> Vec<LossSum> {
        let shards = batch.rows.div_ceil(self.shard_size);
        (0..shards)
            .into_par_iter()
            .map(|k| {
                let (_, shard) = self.shard(batch, k);
                let mut ws = self.take_workspace();
                self.mlp
                    .forward(params, shard.x, shard.rows, &mut ws, Mode::Eval);
                let out = ws.output(shard.rows, self.mlp.outputs());
                let s =
                    self.loss
                        .sum_over(out, self.mlp.outputs(), shard.targets, shard.rows, None);
                self.put_workspace(ws);
                s
            })
            .collect()
    }
}

/// Adds `shards` into `out` in shard order, element by element: `out = ((s₀ + s₁) + s₂) + …`
/// with [`Accum::Replace`], `out = ((out + s₀) + s₁) + …` with [`Accum::Add`].
///
/// # Determinism
/// Threads split the *parameter vector* into chunks; every element is still summed over the
/// shards in the same order, so the result does not depend on the thread count.
///
/// # Panics
/// If a shard is shorter than `out`, or `accum` is [`Accum::Replace`] with no shards.
pub fn reduce_in_order(out: &mut [f32], shards: &[Vec<f32>], accum: Accum) {
    let start = match accum {
        Accum::Replace => Start::Replace,
        Accum::Add => Start::Add,
    };
    reduce_range(out, 0, shards, start, None);
}

/// What a reduction pass finds in its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Nothing: `out = ((s₀ + s₁) + s₂) + …`, the first shard copied.
    Replace,
    /// The sum so far: `out = ((out + s₀) + s₁) + …`.
    Add,
    /// The step's first shard, computed there: `out = (out + s₁) + …`, the same bits as
    /// [`Start::Replace`] with `s₀ = out`; `shards[0]` is not read.
    InPlace,
}

/// [`reduce_in_order`] of the elements `base..base + out.len()` of the shards into `out` (`base`
/// a multiple of `REDUCE_CHUNK`); with `squares`, also records per chunk each shard's sum of
/// squares and, when the flag says the pass is the batch's last, the output's (into the entry
/// after the shards'), `squares[0]` being `out`'s first chunk.
fn reduce_range(
    out: &mut [f32],
    base: usize,
    shards: &[Vec<f32>],
    start: Start,
    squares: Option<(&mut [[f64; WAVE + 1]], bool)>,
) {
    debug_assert!(base.is_multiple_of(REDUCE_CHUNK));
    let range = |c: usize, len: usize| base + c * REDUCE_CHUNK..base + c * REDUCE_CHUNK + len;
    match squares {
        None => out
            .par_chunks_mut(REDUCE_CHUNK)
            .enumerate()
            .for_each(|(c, out)| sum_chunk(out, shards, range(c, out.len()), start)),
        Some((squares, last)) => out
            .par_chunks_mut(REDUCE_CHUNK)
            .zip(squares.par_iter_mut())
            .enumerate()
            .for_each(|(c, (out, sq))| {
                let range = range(c, out.len());
                shard_squares(sq, out, shards, range.clone(), start);
                sum_chunk(out, shards, range, start);
                sq[WAVE] = if last { sum_of_squares(out) } else { 0.0 };
            }),
    }
}

/// The last reduction pass fused with the optimizer's update: for each chunk of the
/// gradient, [`reduce_range`]'s sum (and squares, the pass being the batch's last), then the
/// update of that chunk's parameters and moments. Returns whether every parameter is finite.
fn reduce_and_update(
    grad: &mut [f32],
    params: &mut [f32],
    shards: &[Vec<f32>],
    start_from: Start,
    squares: Option<&mut [[f64; WAVE + 1]]>,
    update: StepUpdate<'_>,
    packed: Option<&WeightWriter<'_>>,
) -> bool {
    use rayon::iter::Either;
    let StepUpdate {
        rule,
        first_moment,
        second_moment,
    } = update;
    let n = grad.len().div_ceil(REDUCE_CHUNK);
    // A buffer the rule does not have gives empty chunks.
    fn chunks(v: &mut [f32], n: usize) -> impl IndexedParallelIterator<Item = &mut [f32]> {
        if v.is_empty() {
            Either::Left((0..n).into_par_iter().map(|_| <&mut [f32]>::default()))
        } else {
            Either::Right(v.par_chunks_mut(REDUCE_CHUNK))
        }
    }
    let squares = match squares {
        Some(sq) => Either::Right(sq.par_iter_mut().map(Some)),
        None => Either::Left((0..n).into_par_iter().map(|_| None)),
    };
    grad.par_chunks_mut(REDUCE_CHUNK)
        .zip(params.par_chunks_mut(REDUCE_CHUNK))
        .zip(chunks(first_moment, n))
        .zip(chunks(second_moment, n))
        .zip(squares)
        .enumerate()
        .map(|(c, ((((g, p), m), v), mut sq))| {
            let start = c * REDUCE_CHUNK;
            let range = start..start + g.len();
            let finite = if sq.is_none() && !shards.is_empty() {
                sum_and_apply(start, g, p, m, v, shards, start_from, &rule)
            } else {
                if let Some(sq) = sq.as_mut() {
                    shard_squares(sq, g, shards, range.clone(), start_from);
                }
                if !shards.is_empty() {
                    sum_chunk(g, shards, range, start_from);
                }
                if let Some(sq) = sq {
                    sq[WAVE] = sum_of_squares(g);
                }
                rule.apply(start, p, g, m, v)
            };
            if let Some(w) = packed {
                // SAFETY: the chunks are disjoint parameter ranges, each written once.
                unsafe { w.write(start, p) };
            }
            finite
        })
        .reduce(|| true, |a, b| a & b)
}

/// Floats of a chunk summed at once into a scratch block that stays in L1 (see
/// [`sum_and_apply`]).
const SCRATCH: usize = 2048;

/// One chunk of [`reduce_and_update`] without noise squares: the chunk's gradient is summed
/// block by block into a scratch block on the stack and the update applied from there, so the
/// sum is never written back to `grad` (a pass of stores over the whole gradient fewer). The
/// same element-wise sums in the same order as [`sum_chunk`], so the same bits.
#[allow(clippy::too_many_arguments)] // one chunk of each buffer the update reads or writes
fn sum_and_apply(
    start: usize,
    g: &[f32],
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    shards: &[Vec<f32>],
    start_from: Start,
    rule: &crate::optim::Update<'_>,
) -> bool {
    let mut scratch = [0f32; SCRATCH];
    let mut finite = true;
    for lo in (0..g.len()).step_by(SCRATCH) {
        let hi = (lo + SCRATCH).min(g.len());
        let sum = &mut scratch[..hi - lo];
        let range = start + lo..start + hi;
        // The first two addends in one pass, then one pass per further shard.
        let (first, rest) = match start_from {
            Start::Replace => (&shards[0][range.clone()], &shards[1..]),
            Start::InPlace => (&g[lo..hi], &shards[1..]),
            Start::Add => (&g[lo..hi], shards),
        };
        let sum: &[f32] = match rest.split_first() {
            Some((b, rest)) => {
                for ((o, &x), &y) in sum.iter_mut().zip(first).zip(&b[range.clone()]) {
                    *o = x + y;
                }
                for b in rest {
                    sum.iter_mut()
                        .zip(&b[range.clone()])
                        .for_each(|(o, &x)| *o += x);
                }
                sum
            }
            // Nothing to add: the update reads the one addend where it is.
            None => first,
        };
        let (m, v) = (block(m, lo..hi), block(v, lo..hi));
        finite &= rule.apply(start + lo, &mut p[lo..hi], sum, m, v);
    }
    finite
}

/// `b[range]`, or `b` itself when empty (a buffer the rule does not have).
fn block(b: &mut [f32], range: Range<usize>) -> &mut [f32] {
    if b.is_empty() { b } else { &mut b[range] }
}

/// One chunk of the reduction: `out[range]` (=|+=) `s₀ + s₁ + …`, shard by shard. With
/// [`sum_and_apply`], which must add in the same order (a test compares them), the places that
/// fix the summation order.
fn sum_chunk(out: &mut [f32], shards: &[Vec<f32>], range: Range<usize>, start: Start) {
    let mut rest = shards.iter();
    match start {
        Start::Replace => {
            out.copy_from_slice(&rest.next().expect("at least one shard")[range.clone()]);
        }
        Start::InPlace => {
            rest.next();
        }
        Start::Add => {}
    }
    for b in rest {
        out.iter_mut()
            .zip(&b[range.clone()])
            .for_each(|(o, &g)| *o += g);
    }
}

/// Each shard's sum of squares over `range` into `sq[k]`, before the chunk `out` is summed
/// (with [`Start::InPlace`], the first shard's is `out`'s).
fn shard_squares(
    sq: &mut [f64; WAVE + 1],
    out: &[f32],
    shards: &[Vec<f32>],
    range: Range<usize>,
    start: Start,
) {
    for (k, b) in shards.iter().enumerate() {
        sq[k] = if k == 0 && start == Start::InPlace {
            sum_of_squares(out)
        } else {
            sum_of_squares(&b[range.clone()])
        };
    }
}

/// `Σ v²` in a fixed order: sixteen `f32` lanes (one vector register), combined in `f64`.
/// A single ordered `f64` sum would not vectorise and would cost a third of a step.
fn sum_of_squares(v: &[f32]) -> f64 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x * x;
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail.iter().map(|&x| (x * x) as f64).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    fn setup(rows: usize) -> (Mlp, Vec<f32>, Vec<f32>, Vec<f32>) {
        let mlp = Mlp::new(vec![4, 9, 2], Activation::Tanh, 0.0);
        let p = mlp.init_params(1);
        let x: Vec<f32> = (0..rows * 4)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let y: Vec<f32> = (0..rows * 2)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
            .collect();
        (mlp, p, x, y)
    }

    const KEY: DropoutKey = DropoutKey {
        seed: 0,
        epoch: 0,
        step: 0,
    };

    #[test]
    fn a_warmed_up_engine_computes_the_same_bits_and_its_first_step_allocates_nothing_more() {
        // Large enough for our kernels and packed weights, with dropout; four shards.
        let mlp = Mlp::new(vec![300, 256, 10], Activation::Relu, 0.2);
        let p = mlp.init_params(5);
        let rows = 200;
        let x: Vec<f32> = (0..rows * 300)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let labels: Vec<u32> = (0..rows as u32).map(|i| i * 7 % 10).collect();
        let batch = BatchRef {
            x: &x,
            targets: Targets::Labels(&labels),
            rows,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let grads: Vec<Vec<f32>> = [false, true]
            .into_iter()
            .map(|warm| {
                let engine = GradientEngine::new(mlp.clone(), Loss::CrossEntropy, 64);
                let mut g = vec![0.0; p.len()];
                pool.install(|| {
                    if warm {
                        engine.warm_up(&p, rows);
                        assert_eq!(engine.buffers.lock().unwrap().len(), 4, "shard buffers");
                        assert!(engine.weights.lock().unwrap().is_some(), "packed weights");
                        assert!(!engine.workspaces.lock().unwrap().is_empty(), "workspaces");
                    }
                    engine.gradient(
                        &p,
                        &batch,
                        rows,
                        KEY,
                        &mut g,
                        &mut StepTimes::default(),
                        NoiseEstimate::Skip,
                    );
                    if warm {
                        assert_eq!(engine.buffers.lock().unwrap().len(), 4, "no new buffer");
                    }
                });
                g
            })
            .collect();
        let bits = |g: &[f32]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&grads[0]), bits(&grads[1]));
        assert!(grads[0].iter().any(|&v| v != 0.0));
    }

    #[test]
    fn the_fused_pass_without_squares_gives_the_bits_of_the_pass_that_stores_the_sum() {
        use crate::optim::{OptimSettings, Optimizer, OptimizerKind, ParamGroup};
        // Several chunks, the last one not a whole number of scratch blocks.
        let len = 2 * REDUCE_CHUNK + 5000;
        let val = |seed: usize, i: usize| ((i * 7919 + seed * 104_729) % 1000) as f32 * 1e-3 - 0.5;
        let groups = || {
            vec![
                ParamGroup {
                    range: 0..len / 2,
                    weight_decay: 0.01,
                },
                ParamGroup {
                    range: len / 2..len,
                    weight_decay: 0.0,
                },
            ]
        };
        for optimizer in [OptimizerKind::Sgd, OptimizerKind::Adam] {
            let settings = OptimSettings {
                optimizer,
                weight_decay: 0.01,
                ..OptimSettings::default()
            };
            for k in 1..=4 {
                for start in [Start::Replace, Start::InPlace, Start::Add] {
                    let shards: Vec<Vec<f32>> = (0..k)
                        .map(|s| (0..len).map(|i| val(s + 1, i)).collect())
                        .collect();
                    // [stores the sum (takes squares), does not]
                    let mut params =
                        [(); 2].map(|_| (0..len).map(|i| val(9, i)).collect::<Vec<_>>());
                    let mut opts = [(); 2].map(|_| Optimizer::new(&settings, groups()));
                    for step in 0..3 {
                        for (j, (p, opt)) in params.iter_mut().zip(&mut opts).enumerate() {
                            let mut g: Vec<f32> = (0..len).map(|i| val(20 + step, i)).collect();
                            let mut sq = vec![[0.0; WAVE + 1]; len.div_ceil(REDUCE_CHUNK)];
                            let squares = (j == 0).then_some(&mut sq[..]);
                            let update = opt.begin_step(len).expect("no clipping");
                            assert!(reduce_and_update(
                                &mut g, p, &shards, start, squares, update, None
                            ));
                        }
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&params[0]),
                        bits(&params[1]),
                        "{optimizer:?}, {k} shards, {start:?}"
                    );
                    assert_ne!(
                        bits(&params[0]),
                        bits(&(0..len).map(|i| val(9, i)).collect::<Vec<_>>())
                    );
                }
            }
        }
    }

    #[test]
    fn full_batch_gradient_is_the_mean_of_per_sample_gradients() {
        let rows = 7;
        let (mlp, p, x, y) = setup(rows);
        let batch = BatchRef {
            x: &x,
            targets: Targets::Values(&y),
            rows,
        };
        let whole = GradientEngine::new(mlp.clone(), Loss::Mse, rows);
        let mut g = vec![0.0; p.len()];
        whole.gradient(
            &p,
            &batch,
            rows,
            KEY,
            &mut g,
            &mut StepTimes::default(),
            NoiseEstimate::Skip,
        );
        let mut mean = vec![0.0f64; p.len()];
        let single = GradientEngine::new(mlp.clone(), Loss::Mse, 1);
        for r in 0..rows {
            let one = BatchRef {
                x: &x[r * 4..(r + 1) * 4],
                targets: Targets::Values(&y[r * 2..(r + 1) * 2]),
                rows: 1,
            };
            let mut gi = vec![0.0; p.len()];
            single.gradient(
                &p,
                &one,
                1,
                KEY,
                &mut gi,
                &mut StepTimes::default(),
                NoiseEstimate::Skip,
            );
            for (m, v) in mean.iter_mut().zip(&gi) {
                *m += *v as f64 / rows as f64;
            }
        }
        for (a, b) in g.iter().zip(&mean) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn sharded_gradient_is_the_same_for_any_thread_count() {
        let rows = 45;
        let (mlp, p, x, y) = setup(rows);
        let batch = BatchRef {
            x: &x,
            targets: Targets::Values(&y),
            rows,
        };
        let run = |threads: usize, shard: usize| {
            let engine = GradientEngine::new(mlp.clone(), Loss::Mse, shard);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut g = vec![0.0; p.len()];
            pool.install(|| {
                engine.gradient(
                    &p,
                    &batch,
                    rows,
                    KEY,
                    &mut g,
                    &mut StepTimes::default(),
                    NoiseEstimate::Skip,
                )
            });
            g
        };
        let one = run(1, 2); // 23 shards: two waves
        assert_eq!(one, run(2, 2));
        assert_eq!(one, run(5, 2));
        let unsharded = run(1, rows);
        for (a, b) in one.iter().zip(&unsharded) {
            assert!((a - b).abs() < 1e-6, "sharding changes only the rounding");
        }
    }
}
