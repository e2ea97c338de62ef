//! Steady-state training steps make no heap allocation, on any thread.
//!
//! This test binary installs a counting global allocator; an observer reads the count after a
//! warm-up and again many steps later. Buffers (batches, shard gradients, workspaces, the
//! matrix products' packing buffers) are pooled, so the count must not move in between. Every
//! allocation counts, the matrix-product backend's included. Kept to one test: the counter is
//! process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dptrain::data::{SyntheticSpec, Task};
use dptrain::train::{BatchSize, Observer, TrainConfig, Trainer};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Reads the allocation counter at the first step of epochs 3 and 5 and at the last step of
/// epoch 6. Two epochs of warm-up fill every pool; the first window (epochs 3–4) still allows
/// for the one-time, lazy set-up of a dependency (crossbeam registers a thread's first wait
/// on a channel by growing a list once); the second window (epochs 5–6) is the steady state
/// and must allocate nothing.
#[derive(Default)]
struct Probe {
    marks: Vec<usize>,
    steps: usize,
}

fn counts() -> usize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

impl Observer for Probe {
    fn on_step(&mut self, epoch: usize, step: usize, steps: usize) {
        if epoch == 1 && step == 1 {
            // crossbeam allocates a wait context once per thread, lazily, at the thread's first
            // blocking wait: a one-time cost, not a per-step one, but it could fall into the
            // measured window. Force it here, on the training thread, during warm-up.
            let (_tx, rx) = crossbeam_channel::bounded::<()>(0);
            let _ = rx.recv_timeout(std::time::Duration::from_millis(20));
        }
        if (epoch == 3 || epoch == 5) && step == 1 {
            self.marks.push(counts());
        }
        if epoch >= 5 {
            self.steps += 1;
        }
        if epoch == 6 && step == steps {
            self.marks.push(counts());
        }
    }
}

#[test]
fn steady_state_training_steps_make_no_heap_allocation() {
    struct Case {
        what: &'static str,
        task: Task,
        rows: usize,
        features: usize,
        hidden: Vec<usize>,
        batch: usize,
        shard_size: usize,
        dropout: f32,
    }
    let cases = [
        Case {
            what: "4 shards per batch (pooled shard gradients), small layers",
            task: Task::Classification,
            rows: 1000,
            features: 12,
            hidden: vec![32, 16],
            batch: 64,
            shard_size: 16,
            dropout: 0.2,
        },
        Case {
            what: "one shard per batch (the direct path)",
            task: Task::Regression,
            rows: 1000,
            features: 12,
            hidden: vec![32, 16],
            batch: 64,
            shard_size: 64,
            dropout: 0.0,
        },
        Case {
            what: "layers large enough for our kernels and the step's prepacked weights",
            task: Task::Classification,
            rows: 2560,
            features: 200,
            hidden: vec![256, 256],
            batch: 128,
            shard_size: 64,
            dropout: 0.1,
        },
    ];
    for case in cases {
        let data = Arc::new(
            SyntheticSpec {
                task: case.task,
                rows: case.rows,
                features: case.features,
                outputs: 3,
                noise: 0.1,
                seed: 1,
            }
            .dataset(),
        );
        let config = {
            let mut c = TrainConfig::default();
            c.model.hidden = case.hidden.into();
            c.model.dropout = case.dropout;
            c.batch.batch_size = BatchSize::Rows(case.batch);
            c.parallel.shard_size = case.shard_size;
            c.run.epochs = 6;
            c
        };
        let mut probe = Probe::default();
        Trainer::new(data, config, 2)
            .unwrap()
            .run(None, &mut probe)
            .unwrap();
        let [first, start, end] = probe.marks[..] else {
            panic!("probe marks {:?}", probe.marks);
        };
        let steps = probe.steps - 1;
        let what = case.what;
        println!(
            "{what}: {} one-time allocations in epochs 3–4",
            start - first
        );
        assert!(steps > 25, "{what}: measured {steps} steps");
        assert_eq!(
            end - start,
            0,
            "{what}: {} allocations in {steps} steady-state steps",
            end - start
        );
    }
}
