//! The measurement behind the matrix-product backend, single-threaded, on the three products of
//! a layer's forward and backward pass (weights stored `[out, in]` like PyTorch), for the large
//! MLP's shard shapes and the seed's tiny layer:
//! - `dptrain`: what training uses, `model::matmul` (gemm's kernels, driven with reused packing
//!   buffers);
//! - `gemm_entry`: the `gemm` crate's own entry point, which allocates its packing buffers on
//!   every call (same kernels, bit-identical results);
//! - `ndarray`: ndarray's `general_mat_mul` (matrixmultiply).

use criterion::{Criterion, Throughput};
use dptrain::model::matmul::{Accum, Mat, matmul};
use ndarray::Array2;
use ndarray::linalg::general_mat_mul;

pub fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    g.sample_size(20);
    for &(m, k, n) in &[
        (128, 784, 1024),
        (128, 1024, 1024),
        (64, 1024, 1024),
        (32, 20, 50),
    ] {
        let a = Array2::<f32>::from_shape_fn((m, k), |(i, j)| ((i * 7 + j) % 13) as f32 * 0.1);
        let w = Array2::<f32>::from_shape_fn((n, k), |(i, j)| ((i * 3 + j) % 11) as f32 * 0.1);
        let dz = Array2::<f32>::from_shape_fn((m, n), |(i, j)| ((i + j) % 5) as f32 * 0.1);
        let mut z = Array2::<f32>::zeros((m, n));
        let mut dw = Array2::<f32>::zeros((n, k));
        let mut da = Array2::<f32>::zeros((m, k));
        g.throughput(Throughput::Elements(2 * (m * k * n) as u64)); // FLOPs
        let shape = format!("{m}x{k}x{n}");
        let (a_s, w_s, dz_s) = (
            a.as_slice().unwrap(),
            w.as_slice().unwrap(),
            dz.as_slice().unwrap(),
        );
        g.bench_function(format!("dptrain/forward_A_Wt/{shape}"), |b| {
            b.iter(|| {
                let out = z.as_slice_mut().unwrap();
                matmul(
                    out,
                    Mat::row_major(a_s, m, k),
                    Mat::row_major(w_s, n, k).t(),
                    Accum::Replace,
                )
            })
        });
        g.bench_function(format!("gemm_entry/forward_A_Wt/{shape}"), |b| {
            b.iter(|| gemm_entry(z.as_slice_mut().unwrap(), m, n, k, (a_s, 1, k), (w_s, k, 1)))
        });
        g.bench_function(format!("ndarray/forward_A_Wt/{shape}"), |b| {
            b.iter(|| general_mat_mul(1.0, &a, &w.t(), 0.0, &mut z))
        });
        g.bench_function(format!("dptrain/weight_grad_dZt_A/{shape}"), |b| {
            b.iter(|| {
                let out = dw.as_slice_mut().unwrap();
                matmul(
                    out,
                    Mat::row_major(dz_s, m, n).t(),
                    Mat::row_major(a_s, m, k),
                    Accum::Replace,
                )
            })
        });
        g.bench_function(format!("gemm_entry/weight_grad_dZt_A/{shape}"), |b| {
            b.iter(|| {
                gemm_entry(
                    dw.as_slice_mut().unwrap(),
                    n,
                    k,
                    m,
                    (dz_s, n, 1),
                    (a_s, 1, k),
                )
            })
        });
        g.bench_function(format!("ndarray/weight_grad_dZt_A/{shape}"), |b| {
            b.iter(|| general_mat_mul(1.0, &dz.t(), &a, 0.0, &mut dw))
        });
        g.bench_function(format!("dptrain/input_grad_dZ_W/{shape}"), |b| {
            b.iter(|| {
                let out = da.as_slice_mut().unwrap();
                matmul(
                    out,
                    Mat::row_major(dz_s, m, n),
                    Mat::row_major(w_s, n, k),
                    Accum::Replace,
                )
            })
        });
        g.bench_function(format!("gemm_entry/input_grad_dZ_W/{shape}"), |b| {
            b.iter(|| {
                gemm_entry(
                    da.as_slice_mut().unwrap(),
                    m,
                    k,
                    n,
                    (dz_s, 1, n),
                    (w_s, 1, k),
                )
            })
        });
        g.bench_function(format!("ndarray/input_grad_dZ_W/{shape}"), |b| {
            b.iter(|| general_mat_mul(1.0, &dz, &w, 0.0, &mut da))
        });
    }
    g.finish();
}

/// `dst (rows × cols, row-major) = lhs · rhs` through `gemm::gemm`, operands given as
/// (data, column stride, row stride) with inner dimension `inner`.
fn gemm_entry(
    dst: &mut [f32],
    rows: usize,
    cols: usize,
    inner: usize,
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    assert!(dst.len() >= rows * cols);
    assert!(lhs.0.len() >= rows * inner && rhs.0.len() >= inner * cols);
    // SAFETY: the strides describe row-major or transposed row-major buffers of the asserted
    // sizes; `dst` is a unique borrow.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            inner,
            dst.as_mut_ptr(),
            1,
            cols as isize,
            false,
            lhs.0.as_ptr(),
            lhs.1 as isize,
            lhs.2 as isize,
            rhs.0.as_ptr(),
            rhs.1 as isize,
            rhs.2 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}
