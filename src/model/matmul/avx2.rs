//! Our AVX2 + FMA register tile and packing routines ([`Kernel`], driven by [`super::nest`]),
//! for x86 CPUs without AVX-512.
//!
//! BLIS's `6 × 16` register tile for these cores: 12 accumulators of 8 lanes, two loads of the
//! packed right operand and six broadcasts of the packed left one per step of the inner
//! dimension, in 15 of the 16 vector registers (a `4 × 24` tile needs all 16, and the compiler
//! then spills an accumulator in the inner loop). On a core with one 256-bit FMA per cycle
//! (Zen 1) the 12 FMAs of a step take 12 cycles and the 8 loads fewer; on two FMA ports (Zen 2
//! and later, Intel) 6 cycles against 4.
//!
//! The output is row-major, so the tile is vectorised along its rows; a tile's full vectors are
//! plain loads and stores, its partial ones (the last columns) masked, never a scalar loop.
//! A row-major left operand is transposed into its 6-row panels by 8 × 8 AVX blocks in
//! registers, a column-major right operand by 8 × 8 blocks in memory; the other layouts are
//! copied.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::nest::{Finish, Gemm, Init, Kernel, Operand, steps_unrolled};
use super::packed::{transpose_8x8_registers, transpose_into_panel};

/// Rows of the register tile.
const MR: usize = 6;
/// Columns of the register tile: two vectors of 8 lanes.
const NR: usize = 16;
const LANES: usize = 8;
/// Vectors in a tile's row.
const V: usize = NR / LANES;

/// The AVX2 + FMA kernel.
pub(super) struct Avx2;

// SAFETY: each function below reads and writes only what its contract allows (see each one).
unsafe impl Kernel for Avx2 {
    const MR: usize = MR;
    const NR: usize = NR;
    const NAME: &'static str = "avx2";

    fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    unsafe fn pack_a(g: &Gemm, ic: usize, mb: usize, pc: usize, kb: usize, out: *mut f32) {
        // SAFETY: forwarded from the caller.
        unsafe { pack_a(g, ic, mb, pc, kb, out) }
    }

    unsafe fn pack_b(b: Operand, pc: usize, kb: usize, jc: usize, nb: usize, out: *mut f32) {
        // SAFETY: forwarded from the caller.
        unsafe { pack_b(b, pc, kb, jc, nb, out) }
    }

    unsafe fn tile(
        rows: usize,
        cols: usize,
        kb: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        init: Init,
        finish: Finish,
        ahead: Option<*const f32>,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe { tile_any(rows, cols, kb, a, b, c, ldc, init, finish, ahead) }
    }
}

/// [`Kernel::pack_a`].
///
/// # Safety
/// As for [`Kernel::pack_a`].
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn pack_a(g: &Gemm, ic: usize, mb: usize, pc: usize, kb: usize, out: *mut f32) {
    let full = mb / MR;
    if g.a_rs == 1 && g.a_cs != 1 {
        // A column-major block: each of its kb columns is read once, in order, and its MR-value
        // pieces go to every full panel (down the panels, a column at a time, would read the
        // columns' lines once per panel, and lines a power of two apart share an L1 set).
        for p in 0..kb {
            // SAFETY: reads a[ic + i][pc + p] for i < full · MR ≤ mb; writes panel q's step p.
            unsafe {
                let src = g.a.add(ic + (pc + p) * g.a_cs);
                for q in 0..full {
                    std::ptr::copy_nonoverlapping(
                        src.add(q * MR),
                        out.add(q * kb * MR + p * MR),
                        MR,
                    );
                }
            }
        }
    }
    for q in 0..mb.div_ceil(MR) {
        let rows = MR.min(mb - q * MR);
        // SAFETY: every read is a[i][p] for i < ic + mb, p < pc + kb; writes stay in panel q.
        unsafe {
            let src = g.a.add((ic + q * MR) * g.a_rs + pc * g.a_cs);
            let dst = out.add(q * kb * MR);
            if g.a_cs == 1 {
                transpose_rows(src, g.a_rs, rows, kb, dst);
            } else if rows == MR && g.a_rs == 1 {
                // Packed above.
            } else {
                for p in 0..kb {
                    for r in 0..MR {
                        *dst.add(p * MR + r) = if r < rows {
                            *src.add(r * g.a_rs + p * g.a_cs)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// Writes `out[c·MR + r] = src[r·src_rs + c]` for r < rows ≤ MR, c < k, and zeros for the rows
/// from `rows` to `MR`: the rows (and zero rows up to 8) are transposed 8 columns at a time in
/// registers and each column's `MR` values stored; a scalar loop for the last `k mod 8` columns.
///
/// # Safety
/// AVX present; `src` readable at those indices, `out` writable for `MR · k` floats.
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn transpose_rows(src: *const f32, src_rs: usize, rows: usize, k: usize, out: *mut f32) {
    let k8 = k / 8 * 8;
    // SAFETY: reads are at r · src_rs + c for r < rows, c < k; writes at c · MR + r, r < MR.
    unsafe {
        let mut c = 0;
        while c < k8 {
            let x: [__m256; 8] = std::array::from_fn(|r| {
                if r < rows {
                    _mm256_loadu_ps(src.add(r * src_rs + c))
                } else {
                    _mm256_setzero_ps()
                }
            });
            for (j, col) in transpose_8x8_registers(x).into_iter().enumerate() {
                // Rows 0..4, then 4..6, of column c + j.
                let dst = out.add((c + j) * MR);
                _mm_storeu_ps(dst, _mm256_castps256_ps128(col));
                _mm_storel_epi64(
                    dst.add(4).cast(),
                    _mm_castps_si128(_mm256_extractf128_ps::<1>(col)),
                );
            }
            c += 8;
        }
        for c in k8..k {
            for r in 0..MR {
                *out.add(c * MR + r) = if r < rows {
                    *src.add(r * src_rs + c)
                } else {
                    0.0
                };
            }
        }
    }
}

/// [`Kernel::pack_b`].
///
/// # Safety
/// As for [`Kernel::pack_b`].
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn pack_b(b: Operand, pc: usize, kb: usize, jc: usize, nb: usize, out: *mut f32) {
    for t in 0..nb.div_ceil(NR) {
        let cols = NR.min(nb - t * NR);
        // SAFETY: every read is b[p][j] for p < pc + kb, j < jc + nb; writes stay in panel t.
        unsafe {
            let src = b.ptr.add(pc * b.rs + (jc + t * NR) * b.cs);
            let dst = out.add(t * kb * NR);
            if b.cs == 1 {
                let lanes = vector_lanes(cols);
                let masks = lanes.map(|l| lane_mask(l));
                for p in 0..kb {
                    let row = src.add(p * b.rs);
                    for v in 0..V {
                        let x = match lanes[v] {
                            LANES => _mm256_loadu_ps(row.add(v * LANES)),
                            0 => _mm256_setzero_ps(),
                            _ => _mm256_maskload_ps(row.add(v * LANES), masks[v]),
                        };
                        _mm256_store_ps(dst.add(p * NR + v * LANES), x);
                    }
                }
            } else if b.rs == 1 {
                transpose_into_panel::<NR>(src, b.cs as isize, cols, kb, dst);
            } else {
                for p in 0..kb {
                    for j in 0..NR {
                        *dst.add(p * NR + j) = if j < cols {
                            *src.add(p * b.rs + j * b.cs)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// The lanes in use of each vector of a tile `cols` wide.
fn vector_lanes(cols: usize) -> [usize; V] {
    std::array::from_fn(|v| cols.saturating_sub(v * LANES).min(LANES))
}

/// The mask of the first `lanes` lanes, for `_mm256_mask{load,store}_ps`.
#[target_feature(enable = "avx,avx2,fma")]
fn lane_mask(lanes: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(lanes as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// [`tile`] for a tile of `rows ≤ MR` × `cols ≤ NR`.
///
/// # Safety
/// As for [`tile`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn tile_any(
    rows: usize,
    cols: usize,
    kb: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    init: Init,
    finish: Finish,
    ahead: Option<*const f32>,
) {
    let lanes = vector_lanes(cols);
    // The prefetching loop apart: a test of `ahead` in every step costs more than it brings.
    let next = ahead.unwrap_or(b);
    macro_rules! dispatch {
        ($($r:literal)*) => {
            match (rows, cols > LANES, ahead.is_some()) {
                $(
                    ($r, false, false) => tile::<$r, 1, false>(kb, a, b, c, ldc, lanes, init, finish, next),
                    ($r, true, false) => tile::<$r, 2, false>(kb, a, b, c, ldc, lanes, init, finish, next),
                    ($r, false, true) => tile::<$r, 1, true>(kb, a, b, c, ldc, lanes, init, finish, next),
                    ($r, true, true) => tile::<$r, 2, true>(kb, a, b, c, ldc, lanes, init, finish, next),
                )*
                _ => unreachable!("tile of {rows} rows"),
            }
        };
    }
    // SAFETY: forwarded from the caller.
    unsafe { dispatch!(1 2 3 4 5 6) }
}

/// The register tile: `R` rows × `W` vectors of the output from a packed `kb × MR` left panel
/// and a packed `kb × NR` right panel (32-byte aligned), combined with `c` as `init` says and
/// stored, `lanes[v]` lanes of vector `v`, after `finish`; with `PREFETCH`, one cache line from
/// `next` on is brought towards L1 per step.
///
/// # Safety
/// AVX2 and FMA present; the panels readable for `kb` steps; `c` (and `finish`'s `h`) readable
/// and writable at `R` rows of `ldc` for the lanes in use.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx,avx2,fma")]
#[inline]
unsafe fn tile<const R: usize, const W: usize, const PREFETCH: bool>(
    kb: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    lanes: [usize; V],
    init: Init,
    finish: Finish,
    next: *const f32,
) {
    // SAFETY: reads stay inside the panels (p < kb), loads and stores inside the tile's rows
    // for the lanes in use, as the caller guarantees; prefetches read nothing.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); W]; R];
        // One step of the inner dimension: W loads of b, R broadcasts of a, R · W FMAs.
        let step = |acc: &mut [[__m256; W]; R], p: usize| {
            if PREFETCH {
                _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(p * 16) as *const i8);
            }
            let bp = b.add(p * NR);
            let bv: [__m256; W] = std::array::from_fn(|v| _mm256_load_ps(bp.add(v * LANES)));
            let ap = a.add(p * MR);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(r));
                for (x, &bv) in row.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_ps(av, bv, *x);
                }
            }
        };
        steps_unrolled(kb, |p| step(&mut acc, p));
        let zero = _mm256_setzero_ps();
        let masks = lanes.map(|l| lane_mask(l));
        // A full vector is a plain load or store; only the last, partial one is masked.
        let load = |ptr: *const f32, v: usize| {
            if lanes[v] == LANES {
                _mm256_loadu_ps(ptr)
            } else {
                _mm256_maskload_ps(ptr, masks[v])
            }
        };
        for (r, row) in acc.iter().enumerate() {
            for (v, &sum) in row.iter().enumerate() {
                let at = r * ldc + v * LANES;
                let ptr = c.add(at);
                let mut x = match init {
                    Init::Zero => sum,
                    Init::Load => _mm256_add_ps(load(ptr, v), sum),
                    Init::Bias(bias) => _mm256_add_ps(load(bias.add(v * LANES), v), sum),
                };
                match finish {
                    Finish::Store => {}
                    // max_ps returns its second operand where either is NaN: max(NaN, 0) = 0.
                    Finish::Relu => x = _mm256_max_ps(x, zero),
                    Finish::ReluGrad(h) => {
                        let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(load(h.add(at), v), zero);
                        x = _mm256_and_ps(positive, x);
                    }
                }
                if lanes[v] == LANES {
                    _mm256_storeu_ps(ptr, x);
                } else {
                    _mm256_maskstore_ps(ptr, masks[v], x);
                }
            }
        }
    }
}
