//! An allocation-free driver for the `gemm` crate's f32 kernels.
//!
//! `gemm::gemm` allocates a packing buffer (the packed right operand and/or the whole packed
//! left operand) and a small flag vector inside every blocked product, and has no API to pass
//! them in (only its per-row-block buffer is a reused thread-local); a training step makes
//! dozens of products. This module replays
//! gemm 0.19.0's single-threaded blocked algorithm (`gemm_common::gemm::gemm_basic_generic` with
//! `Parallelism::None`) step for step — the same block sizes, packing decisions, packed layout
//! and micro-kernels, called in the same order — but packs into buffers owned by the calling
//! thread, which grow to the largest product the thread has seen and are then reused. The
//! results are bit-identical to `gemm::gemm` (tested below), so nothing downstream changes.
//!
//! One packing routine is our own: a left operand stored row by row (the weight matrix in the
//! forward pass, `A · Wᵀ`) is transposed into gemm's panel layout by 8 × 8 AVX blocks instead of
//! gathered a column at a time, which thrashes L1 when the row stride is a power of two (1024).
//! The packed values are the same; the forward product of a 1024-wide layer gets about 1.2×
//! faster (`cargo bench -- matmul`, `dptrain` against `gemm_entry`).
//!
//! Shapes that gemm routes to its special paths (tiny outputs, k ≤ 2, matrix–vector products),
//! which allocate nothing, still go to `gemm::gemm`, as do CPUs without FMA and non-x86 targets.

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::cell::RefCell;

use gemm_common::Ptr;
use gemm_common::cache::{CACHE_INFO, KernelParams, kernel_params};
use gemm_common::gemm::{
    CACHELINE_ALIGN, get_lhs_packing_threshold_single_thread, get_rhs_packing_threshold,
};
use gemm_common::microkernel::MicroKernelFn;
use gemm_common::pack_operands::{pack_lhs, pack_rhs};
use gemm_common::simd::{MixedSimd, Simd};

/// One product `dst = [dst +] lhs · rhs` in gemm's raw form: `m × n` destination, inner
/// dimension `k`, every operand given by a pointer and its column and row strides (in elements).
#[derive(Debug, Clone, Copy)]
pub(super) struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub dst: *mut f32,
    pub dst_cs: isize,
    pub dst_rs: isize,
    pub read_dst: bool,
    pub lhs: *const f32,
    pub lhs_cs: isize,
    pub lhs_rs: isize,
    pub rhs: *const f32,
    pub rhs_cs: isize,
    pub rhs_rs: isize,
}

impl Product {
    /// gemm's first step: work on the transpose when the destination is row-oriented, because
    /// its micro-kernels write column-major tiles.
    fn oriented(self) -> Self {
        if self.dst_cs.abs() < self.dst_rs.abs() {
            Product {
                m: self.n,
                n: self.m,
                dst_cs: self.dst_rs,
                dst_rs: self.dst_cs,
                lhs: self.rhs,
                lhs_cs: self.rhs_rs,
                lhs_rs: self.rhs_cs,
                rhs: self.lhs,
                rhs_cs: self.lhs_rs,
                rhs_rs: self.lhs_cs,
                ..self
            }
        } else {
            self
        }
    }

    /// Whether gemm 0.19.0 would leave its blocked algorithm for a special path (in the order it
    /// checks them): horizontal kernels for tiny outputs, outer products for k ≤ 2, and
    /// matrix–vector products.
    fn takes_special_path(&self, has_horizontal_kernels: bool) -> bool {
        let p = self;
        (has_horizontal_kernels && p.lhs_cs == 1 && p.rhs_rs == 1 && p.m * p.n <= 16 * 16)
            || p.k <= 2
            || (p.n <= 1 && p.lhs_rs == 1 && p.dst_rs == 1)
            || (p.n <= 1 && p.lhs_cs == 1 && p.rhs_rs == 1)
            || (p.m <= 1 && p.rhs_cs == 1 && p.dst_cs == 1)
            || (p.m <= 1 && p.rhs_rs == 1 && p.lhs_cs == 1)
    }

    /// Hands the product to `gemm::gemm` itself.
    ///
    /// # Safety
    /// As for [`multiply`].
    pub(super) unsafe fn with_gemm(self) {
        // SAFETY: the caller vouches for the pointers and strides.
        unsafe {
            gemm::gemm(
                self.m,
                self.n,
                self.k,
                self.dst,
                self.dst_cs,
                self.dst_rs,
                self.read_dst,
                self.lhs,
                self.lhs_cs,
                self.lhs_rs,
                self.rhs,
                self.rhs_cs,
                self.rhs_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// Packing buffers of one thread. They only grow, so after the first step of a training run
/// (the largest products come every step) no product allocates.
#[derive(Default)]
struct PackBuffers {
    rhs: Vec<f32>,
    lhs: Vec<f32>,
    did_pack_lhs: Vec<bool>,
}

thread_local! {
    static BUFFERS: RefCell<PackBuffers> = RefCell::new(PackBuffers::default());
}

/// A pointer to `len` elements of `buf` aligned to gemm's cache-line alignment, growing `buf`
/// if it is too small.
fn aligned(buf: &mut Vec<f32>, len: usize) -> *mut f32 {
    let pad = CACHELINE_ALIGN / size_of::<f32>();
    if buf.len() < len + pad {
        buf.resize(len + pad, 0.0);
    }
    let offset = buf.as_ptr().align_offset(CACHELINE_ALIGN);
    debug_assert!(offset <= pad);
    buf[offset..].as_mut_ptr()
}

/// The instruction set of the kernels [`multiply`] runs on this CPU (the same choice, made the
/// same way): `avx512`, `avx2-fma` or `generic`.
pub(super) fn kernel_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && <gemm_common::simd::V4 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
        {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("fma")
            && <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
        {
            return "avx2-fma";
        }
    }
    "generic"
}

/// Computes `p` with gemm's kernels for this CPU, bit-identical to `gemm::gemm`.
///
/// # Safety
/// Every index `i·rs + j·cs` inside each operand's shape must be in bounds of its allocation,
/// all strides must be non-negative, and `dst` must not alias `lhs` or `rhs`.
pub(super) unsafe fn multiply(p: Product) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            use gemm_f32::microkernel::avx512f::f32 as k;
            if let Some(simd) = <gemm_common::simd::V4 as MixedSimd<f32, f32, f32, f32>>::try_new()
            {
                // N = 16 lanes; gemm-f32 instantiates its AVX-512 kernels with MR = MR_DIV_N · 16.
                // (gemm itself unwraps `V4::try_new()` after detecting avx512f; a CPU with
                // avx512f but without the rest of V4 would fall through to FMA here instead.)
                // SAFETY: forwarded from the caller; the ISA was detected above.
                unsafe {
                    return blocked::<_, 16, { k::MR_DIV_N * 16 }, { k::NR }, { k::MR_DIV_N }>(
                        simd,
                        &k::UKR,
                        k::H_M > 0 && k::H_N > 0,
                        p,
                    );
                }
            }
        }
        if std::arch::is_x86_feature_detected!("fma") {
            use gemm_f32::microkernel::fma::f32 as k;
            if let Some(simd) = <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new()
            {
                // SAFETY: as above, with N = 8 lanes.
                unsafe {
                    return blocked::<_, 8, { k::MR_DIV_N * 8 }, { k::NR }, { k::MR_DIV_N }>(
                        simd,
                        &k::UKR,
                        k::H_M > 0 && k::H_N > 0,
                        p,
                    );
                }
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { p.with_gemm() }
}

/// Packs `m` rows × `k` columns of the lhs into gemm's micro-panel layout: panels of `MR` rows,
/// `dst_stride` elements apart, each holding `k` groups of `MR` values (one per column). The
/// same values as gemm's `pack_lhs` in every lane the kernels read (past row `m` we write zeros,
/// where gemm sometimes leaves the lanes unwritten); rows stored contiguously (column stride 1, a
/// row-major weight matrix in the forward pass) are transposed tile by tile instead of gathered
/// one column at a time: with a power-of-two row stride such as 1024 floats, gemm's gather maps
/// every row of a panel to the same L1 cache set and reloads each line once per column.
///
/// # Safety
/// As for `pack_lhs`: the source rows and columns in bounds, `dst` holding the panels.
#[allow(clippy::too_many_arguments)] // gemm's packing signature
unsafe fn pack_lhs_panels<S: Simd, const N: usize, const MR: usize>(
    simd: S,
    m: usize,
    k: usize,
    dst: Ptr<f32>,
    src: Ptr<f32>,
    src_cs: isize,
    src_rs: isize,
    dst_stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if src_cs == 1 && src_rs != 1 {
        for panel in 0..m.div_ceil(MR) {
            let rows = MR.min(m - panel * MR);
            let src = src.0.wrapping_offset((panel * MR) as isize * src_rs) as *const f32;
            let out = dst.0.wrapping_add(panel * dst_stride);
            // SAFETY: `blocked` runs only where V3 or V4 was detected, both of which include
            // AVX; the indices stay inside the panel's rows × k source and k × MR destination.
            unsafe { transpose_into_panel::<MR>(src, src_rs, rows, k, out) };
        }
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe { pack_lhs::<f32, N, MR, _>(simd, m, k, dst, src, src_cs, src_rs, dst_stride) }
}

/// Writes `out[c·MR + r] = src[r·src_rs + c]` for r < rows ≤ MR, c < k, and zeros for the rows
/// from `rows` to `MR`: 8 × 8 blocks with AVX shuffles, a scalar loop for the edges. Blocks go
/// down the rows 16 columns at a time (one cache line when the rows are 64-byte aligned), so a
/// source line is used whole while it is in cache rather than once per column.
///
/// # Safety
/// AVX present; `src` readable at those indices, `out` writable for `k · MR` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
pub(super) unsafe fn transpose_into_panel<const MR: usize>(
    src: *const f32,
    src_rs: isize,
    rows: usize,
    k: usize,
    out: *mut f32,
) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let at = |r: usize, c: usize| src.wrapping_offset(r as isize * src_rs + c as isize);
    let (rows8, k8) = (rows / 8 * 8, k / 8 * 8);
    // SAFETY: every access is at `at(r, c)` with r < rows, c < k, or inside `out`'s panels of
    // MR × k, which the caller guarantees are in bounds (see `# Safety`).
    unsafe {
        let mut c = 0;
        while c < k8 {
            let width = if c + 16 <= k8 { 16 } else { 8 };
            for r in (0..rows8).step_by(8) {
                // The rows' lines two steps on (prefetches never fault): source rows far apart
                // are so many streams that the hardware's prefetchers lose some of them.
                for i in 0..8 {
                    _mm_prefetch::<_MM_HINT_T0>(at(r + i, c + 32) as *const i8);
                }
                for half in (0..width).step_by(8) {
                    transpose_8x8(at(r, c + half), src_rs, out.add((c + half) * MR + r), MR);
                }
            }
            c += width;
        }
        for r in rows8..rows {
            for c in 0..k {
                *out.add(c * MR + r) = *at(r, c);
            }
        }
        for c in k8..k {
            for r in 0..rows8 {
                *out.add(c * MR + r) = *at(r, c);
            }
        }
        for c in 0..k {
            for r in rows..MR {
                *out.add(c * MR + r) = 0.0;
            }
        }
    }
}

/// The 8 × 8 block at `src` (rows `src_rs` apart) transposed into `dst` (rows `dst_rs` apart).
///
/// # Safety
/// AVX present; 8 floats readable at each source row, 8 writable at each destination row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
pub(super) unsafe fn transpose_8x8(src: *const f32, src_rs: isize, dst: *mut f32, dst_rs: usize) {
    use std::arch::x86_64::*;
    // SAFETY: as the caller guarantees.
    unsafe {
        let row = |i: isize| _mm256_loadu_ps(src.offset(i * src_rs));
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        let (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7));
        let cols = transpose_8x8_registers([r0, r1, r2, r3, r4, r5, r6, r7]);
        for (i, col) in cols.into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(i * dst_rs), col);
        }
    }
}

/// The transpose of 8 rows of 8 lanes: lane `r` of vector `j` is lane `j` of row `r`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
pub(super) fn transpose_8x8_registers(
    r: [std::arch::x86_64::__m256; 8],
) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
    let (t0, t1) = (
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
    );
    let (t2, t3) = (
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
    );
    let (t4, t5) = (
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
    );
    let (t6, t7) = (
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    );
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// gemm-common 0.19.0 `gemm_basic_generic`, single-threaded, real f32, no conjugation, with
/// the packing buffers taken from the thread's [`PackBuffers`].
///
/// # Safety
/// As for [`multiply`]; `ukr` must be the kernels of the ISA `simd` proves present, and that
/// ISA must include AVX (V3 or V4: the row-major lhs packing uses AVX shuffles).
unsafe fn blocked<
    S: Simd,
    const N: usize,
    const MR: usize,
    const NR: usize,
    const MR_DIV_N: usize,
>(
    simd: S,
    ukr: &[[MicroKernelFn<f32>; NR]; MR_DIV_N],
    has_horizontal_kernels: bool,
    p: Product,
) {
    let q = p.oriented();
    if q.m == 0 || q.n == 0 || q.k == 0 || q.takes_special_path(has_horizontal_kernels) {
        // SAFETY: forwarded from the caller.
        return unsafe { p.with_gemm() };
    }
    let Product {
        m,
        n,
        k,
        dst,
        dst_cs,
        dst_rs,
        read_dst,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
    } = q;

    let KernelParams { kc, mc, nc } = if m <= 64 && n <= 64 {
        let kc = k.min(512);
        let alloc = CACHE_INFO[1].cache_bytes / size_of::<f32>();
        KernelParams {
            kc,
            mc: (alloc / kc) / MR * MR,
            nc: n.next_multiple_of(NR),
        }
    } else {
        kernel_params(m, n, k, MR, NR, size_of::<f32>())
    };
    let nc = if nc > 0 { nc } else { 128 * NR };
    let packed_rhs_stride = kc * NR;
    let packed_lhs_stride = kc * MR;

    let do_pack_rhs = (rhs_rs.unsigned_abs() != 1 && m > 2 * MR)
        || (rhs_rs.unsigned_abs() == 1 && m > get_rhs_packing_threshold() * MR);
    let do_prepack_lhs = m <= 2 * mc && ((m % N != 0) || lhs_rs != 1);
    let packing_threshold = get_lhs_packing_threshold_single_thread();
    let (packed_rhs_rs, packed_rhs_cs) = if do_pack_rhs {
        (NR as isize, 1)
    } else {
        (rhs_rs, rhs_cs)
    };
    let alpha_first = if read_dst { 1.0f32 } else { 0.0 };

    BUFFERS.with(|buffers| {
        let buffers = &mut *buffers.borrow_mut();
        let packed_rhs = if do_pack_rhs {
            aligned(&mut buffers.rhs, packed_rhs_stride * (nc / NR))
        } else {
            std::ptr::null_mut()
        };
        // Either all of the lhs packed once per depth block, or one row block at a time.
        let packed_lhs = if do_prepack_lhs {
            aligned(&mut buffers.lhs, packed_lhs_stride * m.div_ceil(MR))
        } else {
            aligned(&mut buffers.lhs, packed_lhs_stride * (mc / MR))
        };
        if buffers.did_pack_lhs.len() < mc / MR {
            buffers.did_pack_lhs.resize(mc / MR, false);
        }
        let did_pack_lhs = &mut buffers.did_pack_lhs[..mc / MR];

        // SAFETY (whole loop): offsets stay inside the operands' shapes (the caller's contract)
        // or inside the packing buffers sized above exactly as gemm sizes its own.
        let mut col_outer = 0;
        while col_outer != n {
            let n_chunk = nc.min(n - col_outer);
            let mut alpha = alpha_first;
            let mut depth_outer = 0;
            while depth_outer != k {
                let k_chunk = kc.min(k - depth_outer);
                let alpha_status = if alpha == 0.0 {
                    0
                } else if alpha == 1.0 {
                    1
                } else {
                    2
                };
                if do_pack_rhs {
                    // SAFETY: reads the k_chunk × n_chunk block of rhs at (depth_outer, col_outer),
                    // inside rhs by the caller's contract; writes packed_rhs, sized above for nc /
                    // NR panels of kc × NR.
                    unsafe {
                        pack_rhs::<f32, 1, NR, _>(
                            simd,
                            n_chunk,
                            k_chunk,
                            Ptr(packed_rhs),
                            Ptr(rhs.wrapping_offset(
                                depth_outer as isize * rhs_rs + col_outer as isize * rhs_cs,
                            ) as *mut f32),
                            rhs_cs,
                            rhs_rs,
                            packed_rhs_stride,
                        );
                    }
                }
                if do_prepack_lhs {
                    // SAFETY: reads the m × k_chunk block of lhs at depth_outer, inside lhs by the
                    // caller's contract; writes packed_lhs, sized above for m.div_ceil(MR) panels
                    // of kc × MR.
                    unsafe {
                        pack_lhs_panels::<_, N, MR>(
                            simd,
                            m,
                            k_chunk,
                            Ptr(packed_lhs),
                            Ptr(lhs.wrapping_offset(depth_outer as isize * lhs_cs) as *mut f32),
                            lhs_cs,
                            lhs_rs,
                            packed_lhs_stride,
                        );
                    }
                }
                let n_col_mini_chunks = n_chunk.div_ceil(NR);

                let mut row_outer = 0;
                while row_outer != m {
                    let mut m_chunk = mc.min(m - row_outer);
                    if m_chunk > N && !do_prepack_lhs {
                        m_chunk = m_chunk / N * N;
                    }
                    let n_row_mini_chunks = m_chunk.div_ceil(MR);
                    let do_pack_lhs = !do_prepack_lhs
                        && ((m_chunk % N != 0) || lhs_rs != 1 || n_chunk > packing_threshold * NR);
                    let packed_lhs_cs = if do_prepack_lhs || do_pack_lhs {
                        MR as isize
                    } else {
                        lhs_cs
                    };
                    did_pack_lhs.fill(false);
                    for j in 0..n_col_mini_chunks {
                        let col_inner = NR * j;
                        let n_chunk_inner = NR.min(n_chunk - col_inner);
                        let flags = did_pack_lhs[..n_row_mini_chunks].iter_mut();
                        for (i, did_pack) in flags.enumerate() {
                            let row_inner = MR * i;
                            let m_chunk_inner = MR.min(m_chunk - row_inner);
                            let dst_tile = dst.wrapping_offset(
                                (row_outer + row_inner) as isize * dst_rs
                                    + (col_outer + col_inner) as isize * dst_cs,
                            );
                            let lhs_tile = lhs.wrapping_offset(
                                (row_outer + row_inner) as isize * lhs_rs
                                    + depth_outer as isize * lhs_cs,
                            );
                            if do_pack_lhs && !*did_pack {
                                // SAFETY: as the pre-packing above, for the MR-row block at
                                // row_outer + row_inner, into its own panel of packed_lhs (sized
                                // for mc / MR panels).
                                unsafe {
                                    pack_lhs_panels::<_, N, MR>(
                                        simd,
                                        m_chunk_inner,
                                        k_chunk,
                                        Ptr(packed_lhs.wrapping_add(i * packed_lhs_stride)),
                                        Ptr(lhs_tile as *mut f32),
                                        lhs_cs,
                                        lhs_rs,
                                        packed_lhs_stride,
                                    );
                                }
                                *did_pack = true;
                            }
                            let lhs_ptr = if do_pack_lhs {
                                packed_lhs.wrapping_add(i * packed_lhs_stride) as *const f32
                            } else if do_prepack_lhs {
                                packed_lhs.wrapping_add((i + row_outer / MR) * packed_lhs_stride)
                                    as *const f32
                            } else {
                                lhs_tile
                            };
                            let rhs_ptr = if do_pack_rhs {
                                packed_rhs.wrapping_add(j * packed_rhs_stride) as *const f32
                            } else {
                                rhs.wrapping_offset(
                                    depth_outer as isize * rhs_rs
                                        + (col_outer + col_inner) as isize * rhs_cs,
                                )
                            };
                            let kernel = ukr[m_chunk_inner.div_ceil(N) - 1][n_chunk_inner - 1];
                            // SAFETY: dst_tile, lhs_ptr and rhs_ptr address an m_chunk_inner ×
                            // n_chunk_inner tile and its k_chunk-deep operands, inside their
                            // matrices or packed panels; `simd` is the instruction set the caller
                            // detected.
                            unsafe {
                                kernel(
                                    m_chunk_inner,
                                    n_chunk_inner,
                                    k_chunk,
                                    dst_tile,
                                    lhs_ptr,
                                    rhs_ptr,
                                    dst_cs,
                                    dst_rs,
                                    packed_lhs_cs,
                                    packed_rhs_rs,
                                    packed_rhs_cs,
                                    alpha,
                                    1.0,
                                    alpha_status,
                                    false,
                                    false,
                                    false,
                                    std::ptr::null(),
                                );
                            }
                        }
                    }
                    row_outer += m_chunk;
                }
                alpha = 1.0;
                depth_outer += k_chunk;
            }
            col_outer += n_chunk;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Shapes (m, k, n) that reach each of gemm's decisions: small blocks, lhs packed per row
    /// block or all at once, rhs packed or read in place, several depth and column blocks,
    /// ragged edges, and the special paths.
    const SHAPES: [(usize, usize, usize); 14] = [
        (1, 1, 1),
        (3, 2, 5),
        (16, 16, 16),
        (17, 33, 9),
        (64, 64, 64),
        (65, 70, 63),
        (128, 784, 1024),
        (128, 1024, 10),
        (10, 128, 1024),
        (1024, 128, 784),
        (200, 1500, 130),
        (7, 3000, 300),
        (300, 5, 700),
        (129, 129, 8200),
    ];

    /// Runs `ours` and `theirs` on every shape, every layout the model uses (row-major
    /// destination; each operand plain or transposed) and both accumulation modes, each on its
    /// own copy of the same destination, and asserts the results bit-identical. Returns how many
    /// cases took the blocked algorithm rather than a special path.
    fn assert_bit_identical(
        has_horizontal_kernels: bool,
        ours: impl Fn(Product),
        theirs: impl Fn(Product),
    ) -> usize {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut blocked_cases = 0;
        for (m, k, n) in SHAPES {
            let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let init: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
                // Strides (column, row) of a row-major matrix, or of the transpose of one.
                let (a_cs, a_rs) = if at { (m, 1) } else { (1, k) };
                let (b_cs, b_rs) = if bt { (k, 1) } else { (1, n) };
                for read_dst in [false, true] {
                    let product = |dst: &mut Vec<f32>| Product {
                        m,
                        n,
                        k,
                        dst: dst.as_mut_ptr(),
                        dst_cs: 1,
                        dst_rs: n as isize,
                        read_dst,
                        lhs: a.as_ptr(),
                        lhs_cs: a_cs as isize,
                        lhs_rs: a_rs as isize,
                        rhs: b.as_ptr(),
                        rhs_cs: b_cs as isize,
                        rhs_rs: b_rs as isize,
                    };
                    let mut got = init.clone();
                    let mut want = init.clone();
                    let p = product(&mut got);
                    if !p.oriented().takes_special_path(has_horizontal_kernels) {
                        blocked_cases += 1;
                    }
                    ours(p);
                    theirs(product(&mut want));
                    let differing = got
                        .iter()
                        .zip(&want)
                        .filter(|(x, y)| x.to_bits() != y.to_bits())
                        .count();
                    assert_eq!(
                        differing,
                        0,
                        "{m}×{k}·{k}×{n} at={at} bt={bt} read_dst={read_dst}: \
                         {differing} of {} elements differ",
                        m * n
                    );
                }
            }
        }
        blocked_cases
    }

    /// What training calls, against `gemm::gemm`, with the kernels of this CPU.
    #[test]
    fn bit_identical_to_gemm_for_every_layout_and_shape() {
        let blocked_cases = assert_bit_identical(
            true,
            // SAFETY: the products describe the test's own buffers exactly.
            |p| unsafe { multiply(p) },
            // SAFETY: as above.
            |p| unsafe { p.with_gemm() },
        );
        assert!(blocked_cases > 60, "only {blocked_cases} blocked cases");
    }

    /// The AVX2+FMA kernels, which CPUs without AVX-512 get, checked on any CPU with FMA
    /// against gemm-common's own driver (`gemm_basic_generic`, which `gemm::gemm` calls after
    /// orienting the product) run with the same kernels. Special paths are out of scope here:
    /// `blocked` hands them to `gemm::gemm`, which would pick this CPU's best kernels.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fma_kernels_bit_identical_to_gemms_driver() {
        use gemm_f32::microkernel::fma::f32 as k;
        let Some(simd) = <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new() else {
            // Past libtest's capture of `eprintln!`: a skip is shown in the test output.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"test fma_kernels_bit_identical_to_gemms_driver SKIPPED: this CPU has no AVX2/FMA\n",
            );
            return;
        };
        let has_h = k::H_M > 0 && k::H_N > 0;
        let blocked_cases = assert_bit_identical(
            has_h,
            // SAFETY: as above; the FMA kernels run only where V3 was detected.
            |p| unsafe {
                blocked::<_, 8, { k::MR_DIV_N * 8 }, { k::NR }, { k::MR_DIV_N }>(
                    simd,
                    &k::UKR,
                    has_h,
                    p,
                )
            },
            |p| {
                let q = p.oriented();
                if q.takes_special_path(has_h) {
                    // Same as `blocked` does: compare like with like.
                    // SAFETY: as above.
                    return unsafe { p.with_gemm() };
                }
                // SAFETY: as above.
                unsafe {
                    gemm_common::gemm::gemm_basic_generic::<
                        _,
                        f32,
                        8,
                        { k::MR_DIV_N * 8 },
                        { k::NR },
                        { k::MR_DIV_N },
                        { k::H_M },
                        { k::H_N },
                    >(
                        simd,
                        q.m,
                        q.n,
                        q.k,
                        q.dst,
                        q.dst_cs,
                        q.dst_rs,
                        q.read_dst,
                        q.lhs,
                        q.lhs_cs,
                        q.lhs_rs,
                        q.rhs,
                        q.rhs_cs,
                        q.rhs_rs,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        |a, b, c| a * b + c,
                        &k::UKR,
                        &k::H_UKR,
                        false,
                        gemm_common::Parallelism::None,
                    )
                }
            },
        );
        assert!(blocked_cases > 60, "only {blocked_cases} blocked cases");
    }
}
