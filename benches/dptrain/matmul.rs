//! The measurement behind the matrix-product backend, single-threaded, on the three products of
//! a layer's forward and backward pass (weights stored `[out, in]` like PyTorch), for the large
//! MLP's shard shapes and the seed's tiny layer:
//! - `dptrain`: what training uses, `model::matmul` (our AVX-512 kernels where they run);
//! - `gemm_packed`: gemm's kernels driven with reused packing buffers (what training used before);
//! - `gemm_entry`: the `gemm` crate's own entry point, which allocates its packing buffers on
//!   every call (same kernels, bit-identical results);
//! - `ndarray`: ndarray's `general_mat_mul` (matrixmultiply).

use criterion::{Criterion, Throughput};
use dptrain::model::matmul::{Accum, Backend, Epilogue, Mat, matmul_with};
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
        for (name, backend) in [
            ("dptrain", Backend::Native),
            ("gemm_packed", Backend::Packed),
            ("gemm_entry", Backend::GemmEntry),
        ] {
            let mul = |dst: &mut Array2<f32>, lhs: Mat<'_>, rhs: Mat<'_>| {
                matmul_with(
                    backend,
                    dst.as_slice_mut().unwrap(),
                    lhs,
                    rhs,
                    Accum::Replace,
                    Epilogue::None,
                )
            };
            g.bench_function(format!("{name}/forward_A_Wt/{shape}"), |b| {
                b.iter(|| {
                    let (lhs, rhs) = (Mat::row_major(a_s, m, k), Mat::row_major(w_s, n, k));
                    mul(&mut z, lhs, rhs.t())
                })
            });
            g.bench_function(format!("{name}/weight_grad_dZt_A/{shape}"), |b| {
                b.iter(|| {
                    let (lhs, rhs) = (Mat::row_major(dz_s, m, n), Mat::row_major(a_s, m, k));
                    mul(&mut dw, lhs.t(), rhs)
                })
            });
            g.bench_function(format!("{name}/input_grad_dZ_W/{shape}"), |b| {
                b.iter(|| {
                    let (lhs, rhs) = (Mat::row_major(dz_s, m, n), Mat::row_major(w_s, n, k));
                    mul(&mut da, lhs, rhs)
                })
            });
        }
        g.bench_function(format!("ndarray/forward_A_Wt/{shape}"), |b| {
            b.iter(|| general_mat_mul(1.0, &a, &w.t(), 0.0, &mut z))
        });
        g.bench_function(format!("ndarray/weight_grad_dZt_A/{shape}"), |b| {
            b.iter(|| general_mat_mul(1.0, &dz.t(), &a, 0.0, &mut dw))
        });
        g.bench_function(format!("ndarray/input_grad_dZ_W/{shape}"), |b| {
            b.iter(|| general_mat_mul(1.0, &dz, &w, 0.0, &mut da))
        });
    }
    g.finish();
}
