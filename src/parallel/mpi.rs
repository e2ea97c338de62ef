//! The [`Collective`] over MPI (the `mpi` feature): `MPI_COMM_WORLD`'s ranks, point-to-point
//! messages along the chain and broadcasts from its last rank. Nothing here adds numbers, so
//! the MPI library's own reduction orders never enter the result.

use mpi::Threading;
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::point_to_point::{Destination, Source};
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::error::{Error, Result};
use crate::parallel::collective::{Collective, Tag};

/// `MPI_COMM_WORLD`, for a run shared between its ranks.
pub struct MpiWorld {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
}

impl std::fmt::Debug for MpiWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiWorld {{ rank: {}, size: {} }}", self.rank, self.size)
    }
}

// SAFETY: MPI is initialised with `MPI_THREAD_MULTIPLE` or `MPI_THREAD_SERIALIZED` (checked in
// `init`). The training loop makes its calls from one thread at a time (the loop's), and the
// only other caller is the panic hook's `MPI_Abort`, which ends the process. The communicator
// handle itself is an immutable value.
unsafe impl Send for MpiWorld {}
// SAFETY: as for `Send`: no two threads use the communicator for messages at once.
unsafe impl Sync for MpiWorld {}

impl MpiWorld {
    /// Initialises MPI (threads may call it one at a time: the loop runs on a pool thread).
    ///
    /// # Errors
    /// [`Error::World`] when MPI was initialised already or grants too little thread support.
    pub fn init() -> Result<(Universe, MpiWorld)> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Multiple)
            .ok_or_else(|| Error::World {
                message: "MPI was initialised already in this process".into(),
            })?;
        if !matches!(threading, Threading::Multiple | Threading::Serialized) {
            return Err(Error::World {
                message: format!(
                    "the MPI library grants only {threading:?} thread support; dptrain's loop \
                     runs on a worker thread and needs MPI_THREAD_SERIALIZED or more"
                ),
            });
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok((universe, MpiWorld { world, rank, size }))
    }
}

fn tag(t: Tag) -> i32 {
    t as i32
}

impl Collective for MpiWorld {
    fn world_size(&self) -> usize {
        self.size
    }

    fn rank(&self) -> usize {
        self.rank
    }

    fn send_f32(&self, to: usize, t: Tag, buf: &[f32]) {
        self.world
            .process_at_rank(to as i32)
            .send_with_tag(buf, tag(t));
    }

    fn recv_f32(&self, from: usize, t: Tag, buf: &mut [f32]) {
        // A longer message would be an MPI truncation error, which aborts the job.
        self.world
            .process_at_rank(from as i32)
            .receive_into_with_tag(buf, tag(t));
    }

    fn send_f64(&self, to: usize, t: Tag, buf: &[f64]) {
        self.world
            .process_at_rank(to as i32)
            .send_with_tag(buf, tag(t));
    }

    fn recv_f64(&self, from: usize, t: Tag, buf: &mut [f64]) {
        self.world
            .process_at_rank(from as i32)
            .receive_into_with_tag(buf, tag(t));
    }

    fn broadcast_f32(&self, root: usize, buf: &mut [f32]) {
        self.world.process_at_rank(root as i32).broadcast_into(buf);
    }

    fn broadcast_f64(&self, root: usize, buf: &mut [f64]) {
        self.world.process_at_rank(root as i32).broadcast_into(buf);
    }

    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>) {
        let root = self.world.process_at_rank(root as i32);
        let mut len = buf.len() as u64;
        root.broadcast_into(&mut len);
        buf.resize(len as usize, 0);
        if len > 0 {
            // OpenMPI refuses an empty buffer's dangling pointer (MPI_ERR_ARG).
            root.broadcast_into(&mut buf[..]);
        }
    }

    fn any(&self, flag: bool) -> bool {
        let mine = i32::from(flag);
        let mut any = 0i32;
        // The maximum of 0s and 1s: exact in any order.
        self.world
            .all_reduce_into(&mine, &mut any, SystemOperation::max());
        any != 0
    }

    fn barrier(&self) {
        self.world.barrier();
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
