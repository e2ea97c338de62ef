//! Our own AVX-512 f32 products, with the layer's epilogue applied to each output tile while it
//! is still in registers.
//!
//! BLIS's loop nest ([`super::blocking`]) around an `8 × 48` register tile: 24 accumulators of 16
//! lanes, three loads of the packed right operand and eight broadcasts of the packed left one per
//! step of the inner dimension, so the two FMA ports are never starved by the two load ports.
//! The output is row-major, so the tile is vectorised along its rows; edges are masked loads and
//! stores, never a scalar loop.
//!
//! Both operands are packed by the calling thread into buffers it owns (they grow to the largest
//! product the thread has seen, then nothing allocates): a row-major left operand or a
//! column-major right operand is transposed by 8 × 8 AVX blocks, the other layouts are copied.
//!
//! Each output element is summed over `p` in order within a depth block, and the blocks are
//! added to it in order (`((c + Σ₀) + Σ₁) + …`): the result depends on the depth block
//! ([`Blocking::depth_block`]), which is why [`super::kernel_isa`] names it.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::Epilogue;
use super::blocking::Blocking;
use super::packed::transpose_into_panel;

/// Rows of the register tile.
pub(super) const MR: usize = 8;
/// Columns of the register tile: three vectors of 16 lanes.
pub(super) const NR: usize = 48;
const LANES: usize = 16;

/// Packing buffers of one thread; they only grow.
#[derive(Default)]
struct Buffers {
    a: Vec<f32>,
    b: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// 64-byte aligned room for `len` floats in `buf`, growing it when too small.
fn aligned(buf: &mut Vec<f32>, len: usize) -> *mut f32 {
    const PAD: usize = 64 / size_of::<f32>();
    if buf.len() < len + PAD {
        buf.resize(len + PAD, 0.0);
    }
    let offset = buf.as_ptr().align_offset(64);
    debug_assert!(offset <= PAD);
    buf[offset..].as_mut_ptr()
}

/// `c (m × n, row stride ldc) = [c +] a (m × k) · b (k × n)`, operands given by pointer and
/// strides in elements.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: *const f32,
    pub a_rs: usize,
    pub a_cs: usize,
    pub b: *const f32,
    pub b_rs: usize,
    pub b_cs: usize,
    pub c: *mut f32,
    pub ldc: usize,
    /// Add to `c` rather than replace it.
    pub accumulate: bool,
}

/// Whether this CPU runs these kernels.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx")
}

/// Computes `g` and applies `epilogue` (its slices `m × n` at row stride `ldc`, like `c`).
/// With `prepacked`, the right operand is read from it, packed beforehand by [`pack_b`] depth
/// block by depth block (block `pc` at `pc · n.next_multiple_of(NR)`), instead of packed here.
///
/// # Safety
/// [`available`] must hold; every index `i·rs + j·cs` inside each operand's shape must be in
/// bounds, `c` writable for `m` rows of `ldc` with `n ≤ ldc`, and `c` must not alias `a` or `b`;
/// `prepacked` must hold `b` packed so, with the depth blocks of `blocking`, 64-byte aligned.
pub(super) unsafe fn multiply(
    g: Gemm,
    epilogue: Epilogue<'_>,
    blocking: &Blocking,
    prepacked: Option<*const f32>,
) {
    BUFFERS.with(|buffers| {
        let buffers = &mut *buffers.borrow_mut();
        // SAFETY: forwarded from the caller.
        unsafe { blocked(g, epilogue, blocking, buffers, prepacked) }
    });
}

#[target_feature(enable = "avx512f,avx512vl,avx")]
unsafe fn blocked(
    g: Gemm,
    epilogue: Epilogue<'_>,
    bl: &Blocking,
    buffers: &mut Buffers,
    prepacked: Option<*const f32>,
) {
    let kc = bl.depth_block(g.k);
    let nc = bl.nc.min(g.n.next_multiple_of(NR));
    let mc = bl.mc.min(g.m.next_multiple_of(MR));
    let n_pad = g.n.next_multiple_of(NR);
    let own = if prepacked.is_some() {
        std::ptr::null_mut()
    } else {
        aligned(&mut buffers.b, kc * nc)
    };
    let ap = aligned(&mut buffers.a, kc * mc);
    let (bias, relu_of) = match epilogue {
        Epilogue::None => (None, None),
        Epilogue::Bias(b) | Epilogue::BiasRelu(b) => (Some(b.as_ptr()), None),
        Epilogue::ReluGrad(h) => (None, Some(h.as_ptr())),
    };
    let relu = matches!(epilogue, Epilogue::BiasRelu(_));
    let mut jc = 0;
    while jc < g.n {
        let nb = nc.min(g.n - jc);
        let mut pc = 0;
        while pc < g.k {
            let kb = kc.min(g.k - pc);
            let (first, last) = (pc == 0, pc + kb == g.k);
            let bp = match prepacked {
                // SAFETY: the caller packed every depth block of b there; panel jc / NR of
                // block pc starts jc · kb after the block.
                Some(packed) => unsafe { packed.add(pc * n_pad + jc * kb) },
                None => {
                    let b = Operand {
                        ptr: g.b,
                        rs: g.b_rs,
                        cs: g.b_cs,
                    };
                    // SAFETY: reads the kb × nb block of b at (pc, jc); writes nb.div_ceil(NR)
                    // panels of kb × NR into `own`, sized kc × nc above.
                    unsafe { pack_b(b, pc, kb, jc, nb, own) };
                    own as *const f32
                }
            };
            let mut ic = 0;
            while ic < g.m {
                let mb = mc.min(g.m - ic);
                // SAFETY: as above, for the mb × kb block of a at (ic, pc) into ap.
                unsafe { pack_a(&g, ic, mb, pc, kb, ap) };
                let mut jr = 0;
                while jr < nb {
                    let cols = NR.min(nb - jr);
                    let mut ir = 0;
                    while ir < mb {
                        let rows = MR.min(mb - ir);
                        let at = (ic + ir) * g.ldc + jc + jr;
                        let init = if !first || g.accumulate {
                            Init::Load
                        } else if let Some(b) = bias {
                            // SAFETY: the bias holds n values (checked by the caller).
                            Init::Bias(unsafe { b.add(jc + jr) })
                        } else {
                            Init::Zero
                        };
                        let finish = match (last, relu, relu_of) {
                            (true, true, _) => Finish::Relu,
                            // SAFETY: h has c's shape (checked by the caller).
                            (true, _, Some(h)) => Finish::ReluGrad(unsafe { h.add(at) }),
                            _ => Finish::Store,
                        };
                        // The first three tiles of a panel bring the next panel towards L1, a
                        // third each, one cache line per step (prefetches never fault).
                        let q = ir / MR;
                        let ahead = (jr + NR < nb && q < NR / LANES)
                            .then(|| bp.wrapping_add((jr + NR) * kb + q * kb * LANES));
                        // SAFETY: the panels hold kb × MR and kb × NR values; the tile's rows
                        // × cols lie inside c (and h).
                        unsafe {
                            tile_any(
                                rows,
                                cols,
                                kb,
                                ap.add(ir * kb),
                                bp.add(jr * kb),
                                g.c.add(at),
                                g.ldc,
                                init,
                                finish,
                                ahead,
                            )
                        };
                        ir += MR;
                    }
                    jr += NR;
                }
                ic += mb;
            }
            pc += kb;
        }
        jc += nb;
    }
}

/// Packs rows `ic..ic+mb`, columns `pc..pc+kb` of `a` into panels of `MR` rows: panel `q` holds,
/// for each `p`, the `MR` values `a[ic + MR·q + r][pc + p]` (zeros past row `mb`).
///
/// # Safety
/// The block inside `a`; `out` writable for `mb.div_ceil(MR) · kb · MR` floats.
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

/// The right operand of a product: pointer and strides in elements.
#[derive(Debug, Clone, Copy)]
pub(super) struct Operand {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// Packs rows `pc..pc+kb`, columns `jc..jc+nb` of `b` into panels of `NR` columns: panel `t`
/// holds, for each `p`, the `NR` values `b[pc + p][jc + NR·t + j]` (zeros past column `nb`).
///
/// # Safety
/// AVX-512F/VL present; the block inside `b`; `out` 64-byte aligned and writable for
/// `nb.div_ceil(NR) · kb · NR` floats.
#[target_feature(enable = "avx512f,avx512vl,avx")]
pub(super) unsafe fn pack_b(b: Operand, pc: usize, kb: usize, jc: usize, nb: usize, out: *mut f32) {
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

/// How a tile's accumulators start being combined with the output.
#[derive(Clone, Copy)]
enum Init {
    /// `c = Σ`.
    Zero,
    /// `c = c + Σ`.
    Load,
    /// `c = bias + Σ` (the bias at the tile's first column).
    Bias(*const f32),
}

/// What is done to the tile before it is stored.
#[derive(Clone, Copy)]
enum Finish {
    Store,
    /// `max(c, 0)`.
    Relu,
    /// `c` where `h > 0`, else 0 (`h` at the tile's first element, row stride `ldc`).
    ReluGrad(*const f32),
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
    macro_rules! dispatch {
        ($($r:literal)*) => {
            match (rows, cols.div_ceil(LANES)) {
                $(
                    ($r, 1) => tile::<$r, 1>(kb, a, b, c, ldc, masks, init, finish, ahead),
                    ($r, 2) => tile::<$r, 2>(kb, a, b, c, ldc, masks, init, finish, ahead),
                    ($r, _) => tile::<$r, 3>(kb, a, b, c, ldc, masks, init, finish, ahead),
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
/// stored through `masks` after `finish`.
///
/// # Safety
/// AVX-512F present; the panels readable for `kb` steps; `c` (and `finish`'s `h`) readable and
/// writable at `R` rows of `ldc` for the lanes the masks select.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize, const V: usize>(
    kb: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    masks: [__mmask16; NR / LANES],
    init: Init,
    finish: Finish,
    ahead: Option<*const f32>,
) {
    // SAFETY: reads stay inside the panels (p < kb), loads and stores inside the tile's rows
    // under the masks, as the caller guarantees; prefetches read nothing.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..kb {
            if let Some(next) = ahead {
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
        }
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
