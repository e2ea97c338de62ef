//! This machine's FMA peak, measured, and each matrix kernel's share of it at the shard shapes of
//! the large MLP, so that every efficiency figure is a ratio to a number measured in the same
//! run on the same core.
//!
//! `cargo bench -- peak` runs criterion's groups (`peak/fma` and `peak/kernel`, throughput in
//! FLOP/s) and then prints the peak of one core and of every core at once, and one table:
//! GFLOP/s and % of the single-core FMA peak for the forward (`X · Wᵀ`), weight-gradient
//! (`dZᵀ · X`) and input-gradient (`dZ · W`) products at m = 64 and 128 rows, k, n ∈ {784, 1024},
//! measured interleaved on gemm's kernels (what training ran before our own), on ours packing
//! both operands per product, and on ours reading weights packed once (as a training step runs
//! the forward and input-gradient products: [`dptrain::model::matmul::PackedB`]).
//! The weight gradient is also measured into a cold output (a different buffer each call, 16 in
//! turn, more than the last-level cache holds), as a step writes each shard's gradient into a
//! buffer last touched a step ago.
//! `cargo bench -- peak/table` matches none of criterion's groups and prints the table alone;
//! each shape's shares there are of the peak measured just before and just after its rows, since
//! on a shared host the clock moves by tens of percent within seconds. `cargo bench -- peak/now`
//! prints one line, `fma_peak_gflops X`, the single-core peak of the moment (for scripts that
//! put a run beside it, as `scripts/bench_step.py` does).
//!
//! The peak loop keeps 12 independent accumulators (enough to cover the FMA latency on the two
//! FMA ports of current x86 cores) in the widest vectors the CPU has: AVX-512, else AVX2.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use dptrain::model::matmul::{
    Accum, Backend, Epilogue, Mat, PackedB, kernel_isa, matmul_prepacked, matmul_with,
};

/// Independent accumulators of the peak loop.
const ACCUMULATORS: usize = 12;
/// Iterations of one call of the peak loop.
const ITERS: usize = 1 << 16;

/// The vector width the peak loop uses on this CPU, in f32 lanes, and its name.
fn peak_isa() -> (usize, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return (16, "avx512");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return (8, "avx2-fma");
        }
    }
    (1, "scalar")
}

/// FLOPs of one call of [`fma_loop`].
fn flops_per_call() -> u64 {
    (ITERS * ACCUMULATORS * peak_isa().0 * 2) as u64
}

/// One call of the peak loop; returns a value that depends on every FMA.
fn fma_loop(seed: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            return unsafe { fma_loop_avx512(seed) };
        }
        if std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: FMA (and AVX, which it implies) was detected just above.
            return unsafe { fma_loop_avx2(seed) };
        }
    }
    let mut acc = [seed; ACCUMULATORS];
    for _ in 0..ITERS {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_avx512(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm512_set1_ps(0.999_999);
    let add = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(seed); ACCUMULATORS];
    for _ in 0..ITERS {
        for a in &mut acc {
            *a = _mm512_fmadd_ps(*a, mul, add);
        }
    }
    let mut out = [0f32; 16];
    let sum = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
    // SAFETY: `out` holds 16 f32, the width of one __m512 store.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn fma_loop_avx2(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm256_set1_ps(0.999_999);
    let add = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(seed); ACCUMULATORS];
    for _ in 0..ITERS {
        for a in &mut acc {
            *a = _mm256_fmadd_ps(*a, mul, add);
        }
    }
    let mut out = [0f32; 8];
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
    // SAFETY: `out` holds 8 f32, the width of one __m256 store.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

/// The three products of a layer, at one shape.
struct Shapes {
    m: usize,
    k: usize,
    n: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    dz: Vec<f32>,
}

impl Shapes {
    fn new(m: usize, k: usize, n: usize) -> Self {
        let fill = |len: usize, a: usize| (0..len).map(|i| ((i * a) % 13) as f32 * 0.1).collect();
        Shapes {
            m,
            k,
            n,
            x: fill(m * k, 7),
            w: fill(n * k, 3),
            dz: fill(m * n, 5),
        }
    }

    fn flops(&self) -> u64 {
        2 * (self.m * self.k * self.n) as u64
    }

    /// Runs product `which` (0 forward, 1 weight gradient, 2 input gradient) into `out` on
    /// `backend`.
    fn run(&self, backend: Backend, which: usize, out: &mut [f32]) {
        let (m, k, n) = (self.m, self.k, self.n);
        let x = Mat::row_major(&self.x, m, k);
        let w = Mat::row_major(&self.w, n, k);
        let dz = Mat::row_major(&self.dz, m, n);
        let (dst, a, b) = match which {
            0 => (&mut out[..m * n], x, w.t()),
            1 => (&mut out[..n * k], dz.t(), x),
            _ => (&mut out[..m * k], dz, w),
        };
        matmul_with(backend, dst, a, b, Accum::Replace, Epilogue::None);
    }

    /// The weights of product `which` (forward or input gradient) packed once, as a training
    /// step packs them for all its shards; `None` for the weight gradient (its right operand is
    /// the shard's input).
    fn packed_weights(&self, which: usize) -> Option<PackedB> {
        let (k, n) = (self.k, self.n);
        let w = Mat::row_major(&self.w, n, k);
        let b = match which {
            0 => w.t(),
            2 => w,
            _ => return None,
        };
        let (rows, cols) = if which == 0 { (k, n) } else { (n, k) };
        let mut packed = PackedB::new(rows, cols);
        packed.pack(b);
        Some(packed)
    }

    /// Product `which` reading its right operand from `packed`.
    fn run_prepacked(&self, which: usize, packed: &PackedB, out: &mut [f32]) {
        let (m, k, n) = (self.m, self.k, self.n);
        let x = Mat::row_major(&self.x, m, k);
        let w = Mat::row_major(&self.w, n, k);
        let dz = Mat::row_major(&self.dz, m, n);
        match which {
            0 => matmul_prepacked(&mut out[..m * n], x, w.t(), packed, Epilogue::None),
            _ => matmul_prepacked(&mut out[..m * k], dz, w, packed, Epilogue::None),
        }
    }
}

const PRODUCTS: [&str; 3] = ["forward X·Wt", "weight grad dZt·X", "input grad dZ·W"];

fn shapes() -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    for m in [64, 128] {
        for k in [784, 1024] {
            for n in [784, 1024] {
                v.push((m, k, n));
            }
        }
    }
    v
}

/// Median FLOP/s of `f` (doing `flops` per call) over 7 samples of about 40 ms each.
fn rate(flops: u64, mut f: impl FnMut()) -> f64 {
    f(); // warm: packing buffers, caches
    let mut samples: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            let mut calls = 0u64;
            while t.elapsed() < Duration::from_millis(40) {
                f();
                calls += 1;
            }
            (calls * flops) as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[3]
}

pub fn bench(c: &mut Criterion) {
    let (_, isa) = peak_isa();
    let mut g = c.benchmark_group("peak/fma");
    g.throughput(Throughput::Elements(flops_per_call()));
    g.bench_function(format!("{isa}_{ACCUMULATORS}_accumulators"), |b| {
        b.iter(|| fma_loop(black_box(1.0)))
    });
    g.finish();

    let mut g = c.benchmark_group("peak/kernel");
    g.sample_size(20);
    let mut out = vec![0f32; 1024 * 1024];
    for (m, k, n) in shapes() {
        let s = Shapes::new(m, k, n);
        g.throughput(Throughput::Elements(s.flops()));
        for (which, name) in PRODUCTS.iter().enumerate() {
            let id = format!("{}/{m}x{k}x{n}", name.split(' ').next().unwrap_or(name));
            g.bench_function(format!("{id}_{which}"), |b| {
                b.iter(|| s.run(Backend::Native, which, &mut out))
            });
        }
    }
    g.finish();

    // The table (with `cargo bench -- peak` only: it takes a few seconds): every share against a
    // peak measured here, now, on this core.
    let filter: Vec<String> = std::env::args().skip(1).collect();
    if !filter.iter().any(|a| a.contains("peak")) {
        return;
    }
    let one_core = || {
        rate(flops_per_call(), || {
            black_box(fma_loop(black_box(1.0)));
        })
    };
    if filter.iter().any(|a| a == "peak/now") {
        // One line for scripts that put a run beside the peak of the moment (bench_step.py).
        println!("fma_peak_gflops {:.1}", one_core() / 1e9);
        return;
    }
    let peak = one_core();
    // Every core at once: what a whole training step on all threads can reach (turbo clocks
    // often fall when every core is busy).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores).map(|_| s.spawn(one_core)).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    eprintln!(
        "\nFMA peak, one core ({isa}, {ACCUMULATORS} accumulators): {:.1} GFLOP/s; all {cores} \
         cores at once: {:.1} GFLOP/s ({:.1} per core); matrix kernels: {}",
        peak / 1e9,
        all / 1e9,
        all / 1e9 / cores as f64,
        kernel_isa()
    );
    eprintln!(
        "Each shape's shares are of the peak measured just before and just after its rows (the \
         column `peak`): on a shared host the clock moves by tens of percent within seconds."
    );
    eprintln!(
        "{:>16} {:>6} {:>20} {:>14} {:>8} {:>14} {:>8} {:>18} {:>8}",
        "m x k x n",
        "peak",
        "product",
        "gemm GFLOP/s",
        "of peak",
        "ours GFLOP/s",
        "of peak",
        "ours, W prepacked",
        "of peak"
    );
    // Outputs in turn for the cold weight gradient: 16 × 4 MiB, more than a last-level cache.
    let mut cold: Vec<Vec<f32>> = (0..16).map(|_| vec![0f32; 1024 * 1024]).collect();
    let mut cold_rows = Vec::new();
    for (m, k, n) in shapes() {
        let s = Shapes::new(m, k, n);
        let before_rows = one_core();
        let mut rows = Vec::new();
        for which in 0..PRODUCTS.len() {
            // Interleaved: gemm's kernels (what training ran before our own), then ours.
            let before = rate(s.flops(), || s.run(Backend::Packed, which, &mut out));
            let after = rate(s.flops(), || s.run(Backend::Native, which, &mut out));
            // As a step runs them: the weights packed once for every shard (see PackedB), or
            // for the weight gradient, into a cold output as in a step.
            let third = match s.packed_weights(which) {
                Some(p) => rate(s.flops(), || s.run_prepacked(which, &p, &mut out)),
                None => {
                    let mut turn = 0;
                    rate(s.flops(), || {
                        turn = (turn + 1) % cold.len();
                        s.run(Backend::Native, which, &mut cold[turn]);
                    })
                }
            };
            rows.push((before, after, third));
        }
        let peak = (before_rows + one_core()) / 2.0;
        let share = |r: f64| format!("{:>7.0}%", 100.0 * r / peak);
        let shape = format!("{m}x{k}x{n}");
        for (which, &(before, after, third)) in rows.iter().enumerate() {
            let prepacked = if which == 1 {
                cold_rows.push((shape.clone(), peak, after, third));
                String::from("-")
            } else {
                format!("{:>18.1} {}", third / 1e9, share(third))
            };
            eprintln!(
                "{shape:>16} {:>6.1} {:>20} {:>14.1} {} {:>14.1} {} {prepacked:>27}",
                peak / 1e9,
                PRODUCTS[which],
                before / 1e9,
                share(before),
                after / 1e9,
                share(after),
            );
        }
    }
    eprintln!(
        "\n{:>16} {:>6} {:>26} {:>8} {:>26} {:>8}",
        "weight grad",
        "peak",
        "ours, hot output GFLOP/s",
        "of peak",
        "ours, cold output GFLOP/s",
        "of peak"
    );
    for (shape, peak, hot, cold) in cold_rows {
        eprintln!(
            "{shape:>16} {:>6.1} {:>26.1} {:>7.0}% {:>26.1} {:>7.0}%",
            peak / 1e9,
            hot / 1e9,
            100.0 * hot / peak,
            cold / 1e9,
            100.0 * cold / peak
        );
    }
}
