//! Single-threaded matrix products into caller-owned buffers, on the `gemm` crate's kernels.
//!
//! Chosen by measurement on the reference machine (AVX-512, 2 cores; `cargo bench -- matmul`):
//! for the shard shapes of the large MLP (m = 64…256, k, n = 784…1024) `gemm` with its `x86-v4`
//! kernels reaches 125–200 GFLOP/s against matrixmultiply's 75–100, and for the seed's tiny
//! layers both cost about a microsecond of call overhead.
//!
//! Each product runs on the calling thread only: data parallelism comes from shards, one product
//! per shard per core, which also keeps every shard's result independent of the thread count.
//!
//! Products allocate nothing once warm: the private `packed` module drives gemm's kernels with
//! packing buffers owned by the calling thread (gemm's own entry point, [`Backend::GemmEntry`],
//! allocates a packing buffer and a flag vector on every blocked product), and packs row-major
//! weights faster in the forward pass.

mod packed;

use packed::Product;

/// The instruction set of the matrix kernels this CPU runs (`avx512`, `avx2-fma`, `generic`).
///
/// # Determinism
/// Kernels of different instruction sets accumulate in different orders: results are
/// bit-identical between machines (and processes) that run the same kernels, and agree to float
/// rounding otherwise.
pub fn kernel_isa() -> &'static str {
    packed::kernel_isa()
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

/// Which code computes a product. Both give bit-identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// gemm's kernels with packing buffers reused by the calling thread: what [`matmul`] uses.
    Packed,
    /// The `gemm` crate's own entry point, which allocates its packing buffers on every call;
    /// kept for comparison (`cargo bench -- matmul`).
    GemmEntry,
}

/// `dst (m × n, row-major) = [dst +] a (m × k) · b (k × n)`.
///
/// # Panics
/// If the inner dimensions differ or `dst` is shorter than `m · n`.
pub fn matmul(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accum: Accum) {
    matmul_with(Backend::Packed, dst, a, b, accum);
}

/// [`matmul`] computed by `backend`.
///
/// # Panics
/// As for [`matmul`].
pub fn matmul_with(backend: Backend, dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accum: Accum) {
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
    if m == 0 || n == 0 {
        return;
    }
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
    // SAFETY: every index the product touches is (i·rs + j·cs) for i < rows, j < cols of each
    // operand; `Mat::row_major` checked that rows·cols elements exist, transposition only swaps
    // the roles of the two strides, and `dst` holds m·n row-major elements (checked above). `dst`
    // is a unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        match backend {
            Backend::Packed => packed::multiply(product),
            Backend::GemmEntry => product.with_gemm(),
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

    #[test]
    #[should_panic(expected = "matrix buffer too short")]
    fn a_shape_whose_size_overflows_is_refused_not_wrapped() {
        // 2^63 · 2 wraps to 0 in unchecked release arithmetic, which would accept the buffer.
        let _ = Mat::row_major(&[0.0; 4], 1 << 63, 2);
    }
}
