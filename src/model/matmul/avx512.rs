//! Our AVX-512 register tile and packing routines ([`Kernel`], driven by [`super::nest`]).
//!
//! An `8 × 48` register tile: 24 accumulators of 16 lanes, three loads of the packed right
//! operand and eight broadcasts of the packed left one per step of the inner dimension, so the
//! two FMA ports are never starved by the two load ports. The output is row-major, so the tile is
//! vectorised along its rows; edges are masked loads and stores, never a scalar loop.
//!
//! A row-major left operand or a column-major right operand is transposed into its panels by
//! 8 × 8 AVX blocks; the other layouts are copied.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::nest::{Finish, Gemm, Init, Kernel, Operand, steps_unrolled};
use super::packed::transpose_into_panel;

/// Rows of the register tile.
const MR: usize = 8;
/// Columns of the register tile: three vectors of 16 lanes.
const NR: usize = 48;
const LANES: usize = 16;

/// The AVX-512 kernel.
pub(super) struct Avx512;

// SAFETY: each function below reads and writes only what its contract allows (see each one).
unsafe impl Kernel for Avx512 {
    const MR: usize = MR;
    const NR: usize = NR;
    const NAME: &'static str = "avx512";

    fn available() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx")
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
#[target_feature(enable = "avx512f,avx512vl,avx")]
unsafe fn pack_a(g: &Gemm, ic: usize, mb: usize, pc: usize, kb: usize, out: *mut f32) {
    for q in 0..mb.div_ceil(MR) {
        let rows = MR.min(mb - q * MR);
        // SAFETY: every read is a[i][p] for i < ic + mb, p < pc + kb; writes stay in panel q.
        unsafe {
            let src = g.a.add((ic + q * MR) * g.a_rs + pc * g.a_cs);
            let dst = out.add(q * kb * MR);
            if g.a_cs == 1 {
                transpose_into_panel::<MR>(src, g.a_rs as isize, rows, kb, dst);
            } else if g.a_rs == 1 {
                let mask = ((1u16 << rows) - 1) as u8;
                for p in 0..kb {
                    let v = _mm256_maskz_loadu_ps(mask, src.add(p * g.a_cs));
                    _mm256_store_ps(dst.add(p * MR), v);
                }
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

/// Packs rows `pc..pc+kb`, columns `jc..jc+nb` of `b` into panels of `NR` columns: panel `t`
/// holds, for each `p`, the `NR` values `b[pc + p][jc + NR·t + j]` (zeros past column `nb`).
///
/// # Safety
/// AVX-512F/VL present; the block inside `b`; `out` 64-byte aligned and writable for
/// `nb.div_ceil(NR) · kb · NR` floats.
#[target_feature(enable = "avx512f,avx512vl,avx")]
unsafe fn pack_b(b: Operand, pc: usize, kb: usize, jc: usize, nb: usize, out: *mut f32) {
    for t in 0..nb.div_ceil(NR) {
        let cols = NR.min(nb - t * NR);
        // SAFETY: every read is b[p][j] for p < pc + kb, j < jc + nb; writes stay in panel t.
        unsafe {
            let src = b.ptr.add(pc * b.rs + (jc + t * NR) * b.cs);
            let dst = out.add(t * kb * NR);
            if b.cs == 1 {
                let masks = vector_masks(cols);
                for p in 0..kb {
                    let row = src.add(p * b.rs);
                    for (v, &mask) in masks.iter().enumerate() {
                        let x = _mm512_maskz_loadu_ps(mask, row.add(v * LANES));
                        _mm512_store_ps(dst.add(p * NR + v * LANES), x);
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

/// The lane masks of the three vectors of a tile `cols` wide.
fn vector_masks(cols: usize) -> [__mmask16; NR / LANES] {
    std::array::from_fn(|v| {
        let lanes = cols.saturating_sub(v * LANES).min(LANES);
        ((1u32 << lanes) - 1) as __mmask16
    })
}

/// [`tile`] for a tile of `rows ≤ MR` × `cols ≤ NR`.
///
/// # Safety
/// As for [`tile`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    let masks = vector_masks(cols);
    // The prefetching loop apart, as in the AVX2 kernel: no test of `ahead` in every step.
    let next = ahead.unwrap_or(b);
    macro_rules! dispatch {
        ($($r:literal)*) => {
            match (rows, cols.div_ceil(LANES), ahead.is_some()) {
                $(
                    ($r, 1, false) => tile::<$r, 1, false>(kb, a, b, c, ldc, masks, init, finish, next),
                    ($r, 2, false) => tile::<$r, 2, false>(kb, a, b, c, ldc, masks, init, finish, next),
                    ($r, _, false) => tile::<$r, 3, false>(kb, a, b, c, ldc, masks, init, finish, next),
                    ($r, 1, true) => tile::<$r, 1, true>(kb, a, b, c, ldc, masks, init, finish, next),
                    ($r, 2, true) => tile::<$r, 2, true>(kb, a, b, c, ldc, masks, init, finish, next),
                    ($r, _, true) => tile::<$r, 3, true>(kb, a, b, c, ldc, masks, init, finish, next),
                )*
                _ => unreachable!("tile of {rows} rows"),
            }
        };
    }
    // SAFETY: forwarded from the caller.
    unsafe { dispatch!(1 2 3 4 5 6 7 8) }
}

/// The register tile: `R` rows × `V` vectors of the output from a packed `kb × MR` left panel
/// and a packed `kb × NR` right panel (64-byte aligned), combined with `c` as `init` says and
/// stored through `masks` after `finish`; with `PREFETCH`, one cache line from `next` on is
/// brought towards L1 per step.
///
/// # Safety
/// AVX-512F present; the panels readable for `kb` steps; `c` (and `finish`'s `h`) readable and
/// writable at `R` rows of `ldc` for the lanes the masks select.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize, const V: usize, const PREFETCH: bool>(
    kb: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    masks: [__mmask16; NR / LANES],
    init: Init,
    finish: Finish,
    next: *const f32,
) {
    // SAFETY: reads stay inside the panels (p < kb), loads and stores inside the tile's rows
    // under the masks, as the caller guarantees; prefetches read nothing.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        // One step of the inner dimension: V loads of b, R broadcasts of a, R · V FMAs.
        let step = |acc: &mut [[__m512; V]; R], p: usize| {
            if PREFETCH {
                _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(p * LANES) as *const i8);
            }
            let bp = b.add(p * NR);
            let bv: [__m512; V] = std::array::from_fn(|v| _mm512_load_ps(bp.add(v * LANES)));
            let ap = a.add(p * MR);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r));
                for (x, &bv) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(av, bv, *x);
                }
            }
        };
        steps_unrolled(kb, |p| step(&mut acc, p));
        let zero = _mm512_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            for (v, &sum) in row.iter().enumerate() {
                let mask = masks[v];
                let at = r * ldc + v * LANES;
                let ptr = c.add(at);
                let mut x = match init {
                    Init::Zero => sum,
                    Init::Load => _mm512_add_ps(_mm512_maskz_loadu_ps(mask, ptr), sum),
                    Init::Bias(bias) => {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias.add(v * LANES)), sum)
                    }
                };
                match finish {
                    Finish::Store => {}
                    // max(NaN, 0) = 0, as Rust's f32::max.
                    Finish::Relu => x = _mm512_max_ps(x, zero),
                    Finish::ReluGrad(h) => {
                        let hv = _mm512_maskz_loadu_ps(mask, h.add(at));
                        let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(hv, zero);
                        x = _mm512_maskz_mov_ps(positive, x);
                    }
                }
                _mm512_mask_storeu_ps(ptr, mask, x);
            }
        }
    }
}
