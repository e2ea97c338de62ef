//! Single-threaded matrix products into caller-owned buffers.
//!
//! On x86 CPUs with AVX-512 or AVX2 + FMA the products of a layer run on our own kernels (the
//! private `nest` module's loop nest around an `avx512` 8 × 48 or an `avx2` 6 × 16 register
//! tile, chosen at run time by `native`; blocking from the cache sizes read at run time; the
//! layer's bias, ReLU or ReLU-gradient applied while a tile is in registers). Elsewhere, and for
//! products too small to amortise packing (the seed's tiny layers), they run on the `gemm`
//! crate's kernels, driven by the private `packed` module with reused packing buffers (gemm's
//! own entry point, [`Backend::GemmEntry`], allocates on every blocked product).
//! `cargo bench -- peak` measures each against this machine's FMA peak.
//!
//! Each product runs on the calling thread only: data parallelism comes from shards, one product
//! per shard per core, which also keeps every shard's result independent of the thread count.
//!
//! Products allocate nothing once warm: every thread keeps its packing buffers and reuses them.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocking;
#[cfg(target_arch = "x86_64")]
mod native;
#[cfg(target_arch = "x86_64")]
mod nest;
mod packed;
mod prepacked;

use std::sync::OnceLock;

use packed::Product;

pub use blocking::Blocking;
pub use prepacked::{PackedB, PanelWriter};

/// Products with fewer multiply-adds than this go to gemm's kernels even where ours run: below
/// it, packing both operands costs more than it saves (`cargo bench -- matmul`, the seed's
/// `32 × 20 × 50`).
pub const NATIVE_MIN_FMAS: usize = 1 << 16;

/// The kernels [`matmul`] runs on this CPU, and the block depth that decides their rounding, e.g.
/// `avx512 8x48 kc256 (gemm avx512 below 65536 FMAs)`, `avx2 6x16 kc336 (gemm avx2-fma below
/// 65536 FMAs)`, or gemm's alone (`generic` on CPUs where ours do not run).
///
/// # Determinism
/// Kernels of different instruction sets or depth blocks accumulate in different orders: results
/// are bit-identical between machines (and processes) that report the same string, and agree to
/// float rounding otherwise.
pub fn kernel_isa() -> &'static str {
    static ISA: OnceLock<String> = OnceLock::new();
    ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if let Some((kernel, b)) = native::Native::detected() {
            return format!(
                "{} {}x{} kc{} (gemm {} below {NATIVE_MIN_FMAS} FMAs)",
                kernel.name(),
                kernel.mr(),
                kernel.nr(),
                b.kc,
                gemm_kernel_isa()
            );
        }
        gemm_kernel_isa().to_string()
    })
}

/// The instruction set of gemm's kernels, which compute every product where ours do not run
/// (products under [`NATIVE_MIN_FMAS`], or CPUs without AVX2 + FMA): `avx512`, `avx2-fma` or
/// `generic`.
pub fn gemm_kernel_isa() -> &'static str {
    packed::kernel_isa()
}

/// Whether an `m × k` by `k × n` product runs on our kernels on this CPU (else on gemm's).
pub fn runs_native(m: usize, k: usize, n: usize) -> bool {
    k > 0 && m.saturating_mul(n).saturating_mul(k) >= NATIVE_MIN_FMAS && native_blocking().is_some()
}

/// The block sizes of our kernels on this CPU, or `None` where they do not run.
pub fn native_blocking() -> Option<&'static Blocking> {
    #[cfg(target_arch = "x86_64")]
    return native::Native::detected().map(|(_, b)| b);
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// What is applied to the product's output as it is written (an epilogue): in our kernels while
/// each tile is still in registers, elsewhere in a pass after the product, with the same result
/// up to the product's own rounding.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// The product alone.
    None,
    /// `bias[j] + (a · b)[i][j]` (the bias has one value per output column).
    Bias(&'a [f32]),
    /// `max(0, bias[j] + (a · b)[i][j])`; `max(NaN, 0)` is 0, as [`f32::max`].
    BiasRelu(&'a [f32]),
    /// `(a · b)[i][j]` where `h[i][j] > 0`, else 0: the gradient through a ReLU whose output
    /// was `h` (same shape as the product).
    ReluGrad(&'a [f32]),
}

/// Whether a product replaces the destination or is added to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accum {
    /// `dst = a · b`.
    Replace,
    /// `dst = dst + a · b`.
    Add,
}

/// A borrowed matrix: `rows × cols` elements of `data` at `row_stride`, `col_stride`.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix over the first `rows · cols` elements of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows · cols`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        // Checked: with a wrapped product a short buffer would pass and the kernels read past it.
        assert!(
            rows.checked_mul(cols).is_some_and(|len| data.len() >= len),
            "matrix buffer too short for {rows}×{cols}"
        );
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (a view: nothing is copied).
    pub fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// Which code computes a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// What [`matmul`] uses: our AVX-512 kernels where the CPU has them and the product has at
    /// least [`NATIVE_MIN_FMAS`] multiply-adds, else [`Backend::Packed`].
    Native,
    /// gemm's kernels with packing buffers reused by the calling thread.
    Packed,
    /// The `gemm` crate's own entry point, which allocates its packing buffers on every call;
    /// kept for comparison (`cargo bench -- matmul`). Bit-identical to [`Backend::Packed`].
    GemmEntry,
}

/// `dst (m × n, row-major) = [dst +] a (m × k) · b (k × n)`.
///
/// # Panics
/// If the inner dimensions differ or `dst` is shorter than `m · n`.
pub fn matmul(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accum: Accum) {
    matmul_with(Backend::Native, dst, a, b, accum, Epilogue::None);
}

/// `dst = epilogue(a · b)`: [`matmul`] with the layer's bias, activation or activation gradient
/// applied as the output is written.
///
/// # Panics
/// As for [`matmul`], and if the epilogue's bias is not `n` long or its `h` not `m · n`.
pub fn matmul_fused(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, epilogue: Epilogue<'_>) {
    matmul_with(Backend::Native, dst, a, b, Accum::Replace, epilogue);
}

/// [`matmul_fused`] reading `b` from `packed`, which must hold `b` as it is now
/// ([`PackedB::pack`]): the same bits as packing `b` here, without the packing.
///
/// # Panics
/// As for [`matmul_fused`], and if `packed` is not of `b`'s shape.
pub fn matmul_prepacked(
    dst: &mut [f32],
    a: Mat<'_>,
    b: Mat<'_>,
    packed: &PackedB,
    epilogue: Epilogue<'_>,
) {
    product(
        Backend::Native,
        dst,
        a,
        b,
        Accum::Replace,
        epilogue,
        Some(packed),
    );
}

/// [`matmul`] computed by `backend`, followed by `epilogue` (which needs [`Accum::Replace`]).
///
/// # Panics
/// As for [`matmul_fused`], and for an epilogue with [`Accum::Add`].
pub fn matmul_with(
    backend: Backend,
    dst: &mut [f32],
    a: Mat<'_>,
    b: Mat<'_>,
    accum: Accum,
    epilogue: Epilogue<'_>,
) {
    product(backend, dst, a, b, accum, epilogue, None);
}

/// Every product's route.
fn product(
    backend: Backend,
    dst: &mut [f32],
    a: Mat<'_>,
    b: Mat<'_>,
    accum: Accum,
    epilogue: Epilogue<'_>,
    packed: Option<&PackedB>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        b.rows, k,
        "inner dimensions differ: {m}×{k} · {}×{n}",
        b.rows
    );
    assert!(
        m.checked_mul(n).is_some_and(|len| dst.len() >= len),
        "destination shorter than {m}×{n}"
    );
    match epilogue {
        Epilogue::None => {}
        Epilogue::Bias(bias) | Epilogue::BiasRelu(bias) => {
            assert_eq!(bias.len(), n, "bias length");
        }
        Epilogue::ReluGrad(h) => assert!(h.len() >= m * n, "activation shorter than {m}×{n}"),
    }
    assert!(
        accum == Accum::Replace || matches!(epilogue, Epilogue::None),
        "an epilogue replaces the destination"
    );
    let dst = &mut dst[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if backend == Backend::Native
        && runs_native(m, k, n)
        && let Some((kernel, blocking)) = native::Native::detected()
    {
        let g = nest::Gemm {
            m,
            n,
            k,
            a: a.data.as_ptr(),
            a_rs: a.rs,
            a_cs: a.cs,
            b: b.data.as_ptr(),
            b_rs: b.rs,
            b_cs: b.cs,
            c: dst.as_mut_ptr(),
            ldc: n,
            accumulate: accum == Accum::Add,
        };
        let panels = packed.and_then(|p| p.panels_for(&b));
        // SAFETY: every index the product touches is (i·rs + j·cs) for i < rows, j < cols of
        // each operand; `Mat::row_major` checked that rows·cols elements exist, transposition
        // only swaps the strides; `dst` holds m·n row-major elements, the epilogue's slices
        // were checked above, and `dst` is a unique borrow, so it aliases nothing; the kernels'
        // instruction set was detected by `Native::detected`; `panels`, when given, is a k × n
        // operand packed with these very blocks (`PackedB::pack`, shape checked by
        // `panels_for`), so every read stays inside it.
        unsafe { kernel.multiply(g, epilogue, blocking, panels) };
        return;
    }
    let accum = match epilogue {
        Epilogue::Bias(bias) | Epilogue::BiasRelu(bias) => {
            for row in dst.chunks_exact_mut(n) {
                row.copy_from_slice(bias);
            }
            Accum::Add
        }
        _ => accum,
    };
    gemm_product(backend, dst, a, b, accum);
    match epilogue {
        Epilogue::None | Epilogue::Bias(_) => {}
        Epilogue::BiasRelu(_) => dst.iter_mut().for_each(|v| *v = v.max(0.0)),
        Epilogue::ReluGrad(h) => dst
            .iter_mut()
            .zip(h)
            .for_each(|(d, &h)| *d = if h > 0.0 { *d } else { 0.0 }),
    }
}

/// The product on gemm's kernels.
fn gemm_product(backend: Backend, dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accum: Accum) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k == 0 {
        if accum == Accum::Replace {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let product = Product {
        m,
        n,
        k,
        dst: dst.as_mut_ptr(),
        dst_cs: 1,
        dst_rs: n as isize,
        read_dst: accum == Accum::Add,
        lhs: a.data.as_ptr(),
        lhs_cs: a.cs as isize,
        lhs_rs: a.rs as isize,
        rhs: b.data.as_ptr(),
        rhs_cs: b.cs as isize,
        rhs_rs: b.rs as isize,
    };
    // SAFETY: as in `matmul_with`: the operands' shapes were checked, `dst` holds m·n elements
    // and is a unique borrow.
    unsafe {
        match backend {
            Backend::GemmEntry => product.with_gemm(),
            Backend::Native | Backend::Packed => packed::multiply(product),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn naive(a: &[f32], at: bool, b: &[f32], bt: bool, m: usize, k: usize, n: usize) -> Vec<f64> {
        let get_a = |i: usize, p: usize| if at { a[p * m + i] } else { a[i * k + p] } as f64;
        let get_b = |p: usize, j: usize| if bt { b[j * k + p] } else { b[p * n + j] } as f64;
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| get_a(i, p) * get_b(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn every_transpose_combination_matches_the_naive_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 2), (17, 33, 9), (64, 70, 1), (5, 1, 40)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
                let am = if at {
                    Mat::row_major(&a, k, m).t()
                } else {
                    Mat::row_major(&a, m, k)
                };
                let bm = if bt {
                    Mat::row_major(&b, n, k).t()
                } else {
                    Mat::row_major(&b, k, n)
                };
                let want = naive(&a, at, &b, bt, m, k, n);
                let mut got = vec![f32::NAN; m * n];
                matmul(&mut got, am, bm, Accum::Replace);
                let mut acc = vec![1.0f32; m * n];
                matmul(&mut acc, am, bm, Accum::Add);
                for i in 0..m * n {
                    assert!(
                        (got[i] as f64 - want[i]).abs() < 1e-4,
                        "{m}×{k}×{n} {at} {bt}"
                    );
                    assert!((acc[i] as f64 - want[i] - 1.0).abs() < 1e-4);
                }
            }
        }
    }

    /// `a` (m × k) and `b` (k × n) stored as `at`/`bt` say, as views.
    fn views<'a>(
        a: &'a [f32],
        at: bool,
        b: &'a [f32],
        bt: bool,
        (m, k, n): (usize, usize, usize),
    ) -> (Mat<'a>, Mat<'a>) {
        let am = if at {
            Mat::row_major(a, k, m).t()
        } else {
            Mat::row_major(a, m, k)
        };
        let bm = if bt {
            Mat::row_major(b, n, k).t()
        } else {
            Mat::row_major(b, k, n)
        };
        (am, bm)
    }

    /// The naive oracle's result with an epilogue applied (in f64).
    fn naive_with(want: &[f64], n: usize, epilogue: Epilogue<'_>, start: &[f32]) -> Vec<f64> {
        want.iter()
            .enumerate()
            .map(|(i, &v)| match epilogue {
                Epilogue::None => v + start[i] as f64,
                Epilogue::Bias(b) => v + b[i % n] as f64,
                Epilogue::BiasRelu(b) => (v + b[i % n] as f64).max(0.0),
                Epilogue::ReluGrad(h) => {
                    if h[i] > 0.0 {
                        v
                    } else {
                        0.0
                    }
                }
            })
            .collect()
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn our_kernels_match_the_naive_product_on_odd_shapes_layouts_and_epilogues() {
        let kernels: Vec<native::Native> = native::Native::available().collect();
        if kernels.is_empty() {
            eprintln!(
                "SKIPPED: this CPU has neither AVX-512 nor AVX2 + FMA; our kernels do not run"
            );
            return;
        }
        // Small blocks too, so that every loop of the nest has several iterations and edges.
        let small = Blocking {
            kc: 16,
            mc: 24,
            nc: 96,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let shapes = [
            (1, 1, 1),
            (1, 300, 17),
            (7, 5, 49),
            (8, 16, 48),
            (9, 33, 97),
            (67, 131, 53),
            (17, 784, 100),
            (130, 9, 70),
            // Several row, column and depth blocks at once (the left operand packed whole).
            (50, 70, 130),
        ];
        let runs = kernels.iter().flat_map(|&kernel| {
            let detected = Blocking::detected(kernel.mr(), kernel.nr());
            [(kernel, detected), (kernel, small)]
        });
        for (kernel, blocking) in runs {
            for &(m, k, n) in &shapes {
                let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
                let h: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                let start: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
                    let (am, bm) = views(&a, at, &b, bt, (m, k, n));
                    let want = naive(&a, at, &b, bt, m, k, n);
                    let cases = [
                        (Epilogue::None, true),
                        (Epilogue::None, false),
                        (Epilogue::Bias(&bias), false),
                        (Epilogue::BiasRelu(&bias), false),
                        (Epilogue::ReluGrad(&h), false),
                    ];
                    for (epilogue, add) in cases {
                        // A row stride wider than n: the tile must not write past its columns.
                        let ldc = n + 3;
                        let mut got = vec![f32::NAN; m * ldc];
                        for i in 0..m {
                            got[i * ldc..i * ldc + n].copy_from_slice(&start[i * n..(i + 1) * n]);
                        }
                        let g = nest::Gemm {
                            m,
                            n,
                            k,
                            a: am.data.as_ptr(),
                            a_rs: am.rs,
                            a_cs: am.cs,
                            b: bm.data.as_ptr(),
                            b_rs: bm.rs,
                            b_cs: bm.cs,
                            c: got.as_mut_ptr(),
                            ldc,
                            accumulate: add,
                        };
                        // ReluGrad's h at the destination's stride.
                        let mut h_wide = vec![0f32; m * ldc];
                        for i in 0..m {
                            h_wide[i * ldc..i * ldc + n].copy_from_slice(&h[i * n..(i + 1) * n]);
                        }
                        let epi = match epilogue {
                            Epilogue::ReluGrad(_) => Epilogue::ReluGrad(&h_wide),
                            e => e,
                        };
                        // SAFETY: the views are in bounds, `got` holds m rows of ldc; the kernel
                        // is one this CPU runs.
                        unsafe { kernel.multiply(g, epi, &blocking, None) };
                        let zeros = vec![0f32; m * n];
                        let expect =
                            naive_with(&want, n, epilogue, if add { &start } else { &zeros });
                        for i in 0..m {
                            for j in 0..n {
                                let (g, w) = (got[i * ldc + j] as f64, expect[i * n + j]);
                                assert!(
                                    (g - w).abs() < 1e-4 * (1.0 + k as f64).sqrt(),
                                    "{kernel:?} {m}×{k}×{n} at {at} bt {bt} {epilogue:?} \
                                     add {add} {blocking:?}: [{i}][{j}] {g} against {w}"
                                );
                            }
                            for j in n..ldc {
                                assert!(got[i * ldc + j].is_nan(), "wrote past column {n}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_backend_and_epilogue_agrees_with_the_naive_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // Above and below NATIVE_MIN_FMAS, so both routes of `Backend::Native` are taken.
        for &(m, k, n) in &[(64, 70, 33), (128, 784, 10), (3, 20, 50), (1, 2, 3)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let h: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let (am, bm) = views(&a, false, &b, true, (m, k, n));
            let want = naive(&a, false, &b, true, m, k, n);
            let zeros = vec![0f32; m * n];
            for backend in [Backend::Native, Backend::Packed, Backend::GemmEntry] {
                for epilogue in [
                    Epilogue::None,
                    Epilogue::Bias(&bias),
                    Epilogue::BiasRelu(&bias),
                    Epilogue::ReluGrad(&h),
                ] {
                    let mut got = vec![f32::NAN; m * n];
                    matmul_with(backend, &mut got, am, bm, Accum::Replace, epilogue);
                    let expect = naive_with(&want, n, epilogue, &zeros);
                    for (g, w) in got.iter().zip(&expect) {
                        assert!((*g as f64 - w).abs() < 1e-3, "{backend:?} {epilogue:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_kernel_string_names_the_depth_block_where_our_kernels_run() {
        let isa = kernel_isa();
        #[cfg(target_arch = "x86_64")]
        if let Some((kernel, b)) = native::Native::detected() {
            let tile = format!(
                "{} {}x{} kc{} ",
                kernel.name(),
                kernel.mr(),
                kernel.nr(),
                b.kc
            );
            assert!(isa.starts_with(&tile), "{isa} against {tile}");
            return;
        }
        assert!(!isa.contains("kc"), "{isa}");
    }

    #[test]
    #[should_panic(expected = "matrix buffer too short")]
    fn a_shape_whose_size_overflows_is_refused_not_wrapped() {
        // 2^63 · 2 wraps to 0 in unchecked release arithmetic, which would accept the buffer.
        let _ = Mat::row_major(&[0.0; 4], 1 << 63, 2);
    }
}
