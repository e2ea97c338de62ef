//! The price of determinism across processes: the chain all-reduce (rank to rank in shard
//! order, then a broadcast from the last rank) against `MPI_Allreduce(SUM)`, on gradients of
//! about 1 M and 10 M floats. Run under mpirun (`scripts/bench_mpi.sh` builds and launches it):
//!
//! ```sh
//! cargo bench --features mpi --bench mpi_chain --no-run
//! mpirun --allow-run-as-root --oversubscribe -np 2 target/release/deps/mpi_chain-<hash>
//! ```
//!
//! Rank 0 prints one line per size: medians of 30 repetitions (after 5 warm-up ones), and the
//! ratio chain / all-reduce. The chain's time is the engine's own `reduce` time of a step whose
//! batch has one single-row shard per rank (its compute is timed apart and excluded).

use std::sync::Arc;
use std::time::Instant;

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::topology::SimpleCommunicator;

use dptrain::loss::{Loss, Targets};
use dptrain::model::{Activation, DropoutKey, Mlp};
use dptrain::parallel::mpi::MpiWorld;
use dptrain::parallel::{BatchRef, Collective, GradientEngine, NoiseEstimate, StepTimes};

const WARM: usize = 5;
const REPEATS: usize = 30;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (_universe, world) = MpiWorld::init().expect("MPI");
    let comm = SimpleCommunicator::world();
    let collective: Arc<dyn Collective> = Arc::new(world);
    let (rank, size) = (collective.rank(), collective.world_size());
    let pool = dptrain::parallel::pool(1).expect("pool");
    if rank == 0 {
        println!("processes: {size}");
    }
    // One linear layer n → n: n² + n parameters.
    for n in [1000usize, 3162] {
        let mlp = Mlp::new(vec![n, n], Activation::Relu, 0.0);
        let params = mlp.init_params(1);
        let floats = params.len();
        let engine = GradientEngine::new(mlp, Loss::Mse, 1).with_collective(collective.clone());
        let x = vec![0.5f32; n];
        let y = vec![0.25f32; n];
        let part = BatchRef {
            x: &x,
            targets: Targets::Values(&y),
            rows: 1,
        };
        let key = DropoutKey {
            seed: 0,
            epoch: 0,
            step: 0,
        };
        let mut grad = vec![0.0f32; floats];
        let chain: Vec<f64> = pool.install(|| {
            (0..WARM + REPEATS)
                .map(|_| {
                    let mut times = StepTimes::default();
                    let mut step = engine.begin_step(size, size, NoiseEstimate::Skip);
                    engine.add_shards(&mut step, &params, &part, rank, key, &mut grad, &mut times);
                    engine.finish_step(step, &mut grad, false, &mut times);
                    times.reduce.as_secs_f64()
                })
                .collect()
        });
        let mine = vec![1.0f32; floats];
        let mut sum = vec![0.0f32; floats];
        let allreduce: Vec<f64> = (0..WARM + REPEATS)
            .map(|_| {
                comm.barrier();
                let t = Instant::now();
                comm.all_reduce_into(&mine[..], &mut sum[..], SystemOperation::sum());
                t.elapsed().as_secs_f64()
            })
            .collect();
        let (c, a) = (
            median(chain[WARM..].to_vec()),
            median(allreduce[WARM..].to_vec()),
        );
        if rank == 0 {
            println!(
                "{floats} floats, {size} processes: chain {:.2} ms, MPI_Allreduce {:.2} ms, \
                 chain/allreduce {:.2}",
                c * 1e3,
                a * 1e3,
                c / a
            );
        }
    }
}
