//! Mutation fuzzing of every parser of untrusted files: `.npy` headers, safetensors weights,
//! checkpoints and the TOML configuration. No input may panic; every refusal is an `Error`.
//!
//! Each target starts from valid files (a corpus made here), applies random mutations (bit
//! flips, interesting bytes, insertions, deletions, truncations, splices, numeric-token swaps
//! for text) and feeds the result to the parser under `catch_unwind`. The suite runs each target
//! for `DPTRAIN_FUZZ_SECS` seconds (default 2); the long runs reported in the closing notes used
//!
//! ```sh
//! DPTRAIN_FUZZ_SECS=600 cargo test --release --test fuzz_parsers -- --nocapture --test-threads 2
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use dptrain::checkpoint::{Checkpoint, Tensors};
use dptrain::data::npy;
use dptrain::loss::Loss;
use dptrain::model::weights::{self, ModelMeta};
use dptrain::model::{Activation, Mlp};
use dptrain::train::{Progress, RunIdentity, Snapshot, TrainConfig, TrainFlags, TrainState};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, b'(', b',', b'\'', b'9', b'-'];
const TOKENS: [&str; 9] = [
    "0",
    "-1",
    "18446744073709551616",
    "1e309",
    "nan",
    "\"full\"",
    "[]",
    "{",
    "99999999999",
];

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below(len - i);
                v.drain(i..i + n.min(64));
            }
            4 => v.truncate(rng.below(len + 1)),
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            6 => {
                // Replace a run of digits (numbers in headers, shapes, TOML values).
                if let Some(i) = (0..len)
                    .map(|_| rng.below(len))
                    .find(|&i| v[i].is_ascii_digit())
                {
                    let mut j = i;
                    while j < len && v[j].is_ascii_digit() {
                        j += 1;
                    }
                    let t = TOKENS[rng.below(TOKENS.len())].as_bytes().to_vec();
                    v.splice(i..j, t);
                }
            }
            _ if len > 1 => {
                let i = rng.below(len);
                let j = rng.below(len);
                v.swap(i, j);
            }
            _ => {}
        }
    }
    v
}

/// Runs `target` on mutations of `corpus` for the configured time; panics name the input.
fn fuzz(name: &str, corpus: Vec<Vec<u8>>, target: impl Fn(&[u8]) -> bool) {
    let secs: u64 = std::env::var("DPTRAIN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    // The valid inputs themselves must parse without panicking too.
    for c in &corpus {
        // Generated seeds may be invalid; they must not panic either.
        let _ = target(c);
    }
    let mut pool = corpus.clone();
    let mut execs = 0u64;
    let mut accepted = 0u64;
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // report below, with the input
    while Instant::now() < deadline {
        for _ in 0..64 {
            let seed = &pool[rng.below(pool.len())];
            let input = mutate(&mut rng, seed, &corpus);
            match catch_unwind(AssertUnwindSafe(|| target(&input))) {
                Ok(ok) => accepted += u64::from(ok),
                Err(_) => {
                    std::panic::set_hook(prev);
                    panic!(
                        "{name}: the parser panicked after {execs} executions on input {:02x?}",
                        input
                    );
                }
            }
            execs += 1;
            // Keep some mutants as seeds, so mutations stack (a poor man's corpus growth).
            if rng.below(64) == 0 && input.len() < 1 << 16 {
                if pool.len() < 256 {
                    pool.push(input);
                } else {
                    let i = rng.below(pool.len());
                    pool[i] = input;
                }
            }
        }
    }
    std::panic::set_hook(prev);
    println!(
        "fuzz {name}: {execs} executions in {secs} s ({accepted} accepted as valid), no panic"
    );
}

/// A valid C-order `.npy` file: the header from `ndarray-npy` (the writer dptrain uses), then
/// `data`.
fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    use ndarray_npy::npy::header::{Header, Layout};
    let mut v = Header {
        type_descriptor: py_literal::Value::String(descr.to_string()),
        layout: Layout::Standard,
        shape: shape.to_vec(),
    }
    .to_bytes()
    .expect("a plain header");
    v.extend_from_slice(data);
    v
}

/// A structure-aware `.npy` file: a header dict built from plausible and hostile pieces, and a
/// data length near what the shape asks for. Reaches the validation that random bytes rarely do.
/// Its headers are assembled by hand on purpose: they are meant to be malformed (no padding,
/// version 2.0 with a 1.0 length, shapes that overflow), which no header writer produces.
fn generated_npy(rng: &mut Rng) -> Vec<u8> {
    const DESCR: [&str; 9] = [
        "<f4", "<f8", "<i8", "|u1", ">f4", "<U3", "|b1", "<f2", "<c8",
    ];
    const DIMS: [&str; 8] = [
        "0",
        "1",
        "3",
        "4",
        "12",
        "65536",
        "4294967296",
        "18446744073709551615",
    ];
    let ndim = rng.below(4);
    let dims: Vec<&str> = (0..ndim).map(|_| DIMS[rng.below(DIMS.len())]).collect();
    let shape = match ndim {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let fortran = if rng.below(2) == 0 { "False" } else { "True" };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': {fortran}, 'shape': {shape}, }}",
        DESCR[rng.below(DESCR.len())]
    );
    while (10 + dict.len() + 1) % 64 != 0 && rng.below(8) != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut v = b"\x93NUMPY".to_vec();
    v.extend_from_slice(if rng.below(4) == 0 { &[2, 0] } else { &[1, 0] });
    v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    if v[6] == 2 {
        v.extend_from_slice(&[0, 0]);
    }
    v.extend_from_slice(dict.as_bytes());
    let data = [0usize, 1, 4, 12, 47, 48, 49, 96][rng.below(8)];
    v.extend((0..data).map(|_| rng.next() as u8));
    v
}

#[test]
fn npy_headers_never_panic() {
    let f32s: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let i64s: Vec<u8> = (0..4i64).flat_map(|i| i.to_le_bytes()).collect();
    let mut corpus = vec![
        npy_bytes("<f4", &[3, 4], &f32s),
        npy_bytes("<f4", &[12], &f32s),
        npy_bytes("<i8", &[4], &i64s),
        npy_bytes("|u1", &[4], &[0, 1, 2, 3]),
    ];
    let mut rng = Rng(7);
    corpus.extend((0..500).map(|_| generated_npy(&mut rng)));
    fuzz("npy", corpus, |b| {
        let Ok((offset, dtype, shape)) = npy::parse(Path::new("x.npy"), b) else {
            return false;
        };
        // What the dataset then relies on must hold for anything accepted.
        let n: usize = shape.iter().product();
        assert!(offset <= b.len());
        if dtype == npy::Dtype::F32 {
            assert_eq!(b.len() - offset, n * 4);
        }
        true
    });
}

#[test]
fn weights_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Vec::new();
    for (sizes, labels) in [
        (vec![3, 4, 2], Some(vec!["a".into(), "b".into()])),
        (vec![2, 1], None),
    ] {
        let mlp = Mlp::new(sizes, Activation::Tanh, 0.0);
        let meta = ModelMeta {
            activation: Activation::Tanh,
            loss: if labels.is_some() {
                Loss::CrossEntropy
            } else {
                Loss::Mse
            },
            standardize: None,
            labels,
        };
        let path = dir.path().join("w.safetensors");
        weights::save(&mlp, &mlp.init_params(1), Some(&meta), &path).unwrap();
        corpus.push(std::fs::read(&path).unwrap());
    }
    fuzz("safetensors weights", corpus, |b| {
        weights::model_from_bytes(Path::new("w.safetensors"), b, Loss::Mse).is_ok()
    });
}

#[test]
fn checkpoints_never_panic() {
    let config = TrainConfig::default();
    let mut progress = Progress::start(&config);
    progress.global_step = 12;
    let identity = RunIdentity {
        config,
        data: Vec::new(),
        params: 6,
    };
    let params = [0.5f32, -1.0, 2.0, 0.0, 1.5, -0.25];
    let snap = Snapshot {
        progress: &progress,
        tensors: Tensors {
            params: &params,
            first_moment: &params,
            second_moment: &params,
            best_params: Some(&params),
        },
    };
    let corpus = vec![snap.to_bytes(&identity)];
    fuzz("checkpoint", corpus, |b| {
        Checkpoint::<TrainState>::from_bytes(Path::new("ckpt"), b).is_ok()
    });
}

#[test]
fn toml_configs_never_panic() {
    // What `dptrain train --config FILE` parses: the file's keys into the flags, then the
    // resolved and validated configuration.
    let corpus = vec![
        TrainConfig::default().to_toml().unwrap().into_bytes(),
        b"hidden = [512, 256]\nbatch-size = \"full\"\nlr = 0.1\npatience = 3\nval-fraction = 0.2\n"
            .to_vec(),
        b"data = \"d\"\ninit = \"w.safetensors\"\nhidden = \"8,4\"\nshuffle = false\nkeep = 2\n\
          threads = 2\nshard-size = 16\nschedule = \"cosine\"\nwarmup-steps = 5\n"
            .to_vec(),
    ];
    fuzz("toml config", corpus, |b| {
        let Ok(text) = std::str::from_utf8(b) else {
            return false;
        };
        TrainFlags::from_toml(text, Path::new("c.toml"), &mut [])
            .and_then(TrainFlags::resolve)
            .is_ok()
    });
}
