//! A world of threads standing in for processes: the chain all-reduce, the trainer's agreement
//! and its stop protocol tested without an MPI library (tests, benches).

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::parallel::collective::{Collective, Tag};

#[derive(Debug)]
enum Payload {
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<u8>),
}

#[derive(Debug)]
struct Message {
    tag: u8,
    payload: Payload,
}

/// One rank of a [`LocalWorld`]: give each to its own thread.
#[derive(Debug)]
pub struct LocalRank {
    rank: usize,
    world: usize,
    /// `to[r]` sends to rank `r`.
    to: Vec<Sender<Message>>,
    /// `from[r]` receives from rank `r`.
    from: Vec<Receiver<Message>>,
}

/// Builds the ranks of a world of `world` threads.
#[derive(Debug)]
pub struct LocalWorld;

/// Tags of the messages that are not point-to-point ones.
const BROADCAST: u8 = 100;
const ANY: u8 = 101;

impl LocalWorld {
    /// The `world` ranks, connected pairwise by channels.
    ///
    /// # Panics
    /// If `world` is zero.
    pub fn ranks(world: usize) -> Vec<Arc<LocalRank>> {
        assert!(world > 0, "a world has at least one rank");
        // channels[a][b]: from a to b.
        let channels: Vec<Vec<(Sender<Message>, Receiver<Message>)>> = (0..world)
            .map(|_| (0..world).map(|_| unbounded()).collect())
            .collect();
        (0..world)
            .map(|rank| {
                Arc::new(LocalRank {
                    rank,
                    world,
                    to: (0..world).map(|b| channels[rank][b].0.clone()).collect(),
                    from: (0..world).map(|a| channels[a][rank].1.clone()).collect(),
                })
            })
            .collect()
    }
}

impl LocalRank {
    fn send(&self, to: usize, tag: u8, payload: Payload) {
        assert_ne!(to, self.rank, "rank {} sends to itself", self.rank);
        self.to[to]
            .send(Message { tag, payload })
            .expect("the receiving rank's thread is alive");
    }

    fn recv(&self, from: usize, tag: u8) -> Payload {
        let m = self.from[from]
            .recv()
            .expect("the sending rank's thread is alive");
        assert_eq!(
            m.tag, tag,
            "rank {} expected tag {tag} from rank {from}, got {}",
            self.rank, m.tag
        );
        m.payload
    }
}

impl Collective for LocalRank {
    fn world_size(&self) -> usize {
        self.world
    }

    fn rank(&self) -> usize {
        self.rank
    }

    fn send_f32(&self, to: usize, tag: Tag, buf: &[f32]) {
        self.send(to, tag as u8, Payload::F32(buf.to_vec()));
    }

    fn recv_f32(&self, from: usize, tag: Tag, buf: &mut [f32]) {
        match self.recv(from, tag as u8) {
            Payload::F32(v) => buf.copy_from_slice(&v),
            other => panic!("expected f32 values, got {other:?}"),
        }
    }

    fn send_f64(&self, to: usize, tag: Tag, buf: &[f64]) {
        self.send(to, tag as u8, Payload::F64(buf.to_vec()));
    }

    fn recv_f64(&self, from: usize, tag: Tag, buf: &mut [f64]) {
        match self.recv(from, tag as u8) {
            Payload::F64(v) => buf.copy_from_slice(&v),
            other => panic!("expected f64 values, got {other:?}"),
        }
    }

    fn broadcast_f32(&self, root: usize, buf: &mut [f32]) {
        if self.rank == root {
            for r in (0..self.world).filter(|&r| r != root) {
                self.send(r, BROADCAST, Payload::F32(buf.to_vec()));
            }
        } else {
            match self.recv(root, BROADCAST) {
                Payload::F32(v) => buf.copy_from_slice(&v),
                other => panic!("expected f32 values, got {other:?}"),
            }
        }
    }

    fn broadcast_f64(&self, root: usize, buf: &mut [f64]) {
        if self.rank == root {
            for r in (0..self.world).filter(|&r| r != root) {
                self.send(r, BROADCAST, Payload::F64(buf.to_vec()));
            }
        } else {
            match self.recv(root, BROADCAST) {
                Payload::F64(v) => buf.copy_from_slice(&v),
                other => panic!("expected f64 values, got {other:?}"),
            }
        }
    }

    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>) {
        if self.rank == root {
            for r in (0..self.world).filter(|&r| r != root) {
                self.send(r, BROADCAST, Payload::Bytes(buf.clone()));
            }
        } else {
            match self.recv(root, BROADCAST) {
                Payload::Bytes(v) => *buf = v,
                other => panic!("expected bytes, got {other:?}"),
            }
        }
    }

    fn any(&self, flag: bool) -> bool {
        let mut v = [f64::from(u8::from(flag))];
        if self.rank == 0 {
            for r in 1..self.world {
                match self.recv(r, ANY) {
                    Payload::F64(f) => v[0] = v[0].max(f[0]),
                    other => panic!("expected a flag, got {other:?}"),
                }
            }
        } else {
            self.send(0, ANY, Payload::F64(v.to_vec()));
        }
        self.broadcast_f64(0, &mut v);
        v[0] != 0.0
    }

    fn barrier(&self) {
        self.any(false);
    }

    fn abort(&self, code: i32) -> ! {
        panic!("rank {} aborted the world with code {code}", self.rank)
    }
}
