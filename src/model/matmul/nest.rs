//! The loop nest around our register tiles, shared by every instruction set ([`Kernel`]), with
//! the layer's epilogue applied to each output tile while it is still in registers.
//!
//! BLIS's loop nest ([`super::blocking`]): a `kc × nc` block of the right operand packed into
//! `NR`-column panels, the `mc × kc` block of the left one into `MR`-row panels, and one register
//! tile per pair of panels. Both operands are packed by the calling thread into buffers it owns
//! (they grow to the largest product the thread has seen, then nothing allocates), unless the
//! right one was packed beforehand ([`super::PackedB`]).
//!
//! Each output element is summed over `p` in order within a depth block, and the blocks are
//! added to it in order (`((c + Σ₀) + Σ₁) + …`): the result depends on the kernel and on the
//! depth block ([`super::Blocking::depth_block`]), which is why [`super::kernel_isa`] names both.

#![cfg(target_arch = "x86_64")]

use std::cell::RefCell;

use super::Epilogue;
use super::blocking::Blocking;

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

/// The right operand of a product: pointer and strides in elements.
#[derive(Debug, Clone, Copy)]
pub(super) struct Operand {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// How a tile's accumulators start being combined with the output.
#[derive(Clone, Copy)]
pub(super) enum Init {
    /// `c = Σ`.
    Zero,
    /// `c = c + Σ`.
    Load,
    /// `c = bias + Σ` (the bias at the tile's first column).
    Bias(*const f32),
}

/// What is done to the tile before it is stored.
#[derive(Clone, Copy)]
pub(super) enum Finish {
    Store,
    /// `max(c, 0)`; `max(NaN, 0)` is 0, as Rust's `f32::max`.
    Relu,
    /// `c` where `h > 0`, else 0 (`h` at the tile's first element, row stride `ldc`).
    ReluGrad(*const f32),
}

/// One instruction set's register tile and packing routines.
///
/// # Safety
/// Implementations read and write only where their functions' contracts say, given that
/// [`Kernel::available`] held.
pub(super) unsafe trait Kernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// The name in [`super::kernel_isa`], e.g. `avx512`.
    const NAME: &'static str;

    /// Whether this CPU runs the kernel.
    fn available() -> bool;

    /// Packs rows `ic..ic+mb`, columns `pc..pc+kb` of `g`'s left operand into panels of `MR`
    /// rows: panel `q` holds, for each `p`, the `MR` values `a[ic + MR·q + r][pc + p]` (zeros
    /// past row `mb`).
    ///
    /// # Safety
    /// [`Kernel::available`]; the block inside `a`; `out` 64-byte aligned and writable for
    /// `mb.div_ceil(MR) · kb · MR` floats.
    unsafe fn pack_a(g: &Gemm, ic: usize, mb: usize, pc: usize, kb: usize, out: *mut f32);

    /// Packs rows `pc..pc+kb`, columns `jc..jc+nb` of `b` into panels of `NR` columns: panel
    /// `t` holds, for each `p`, the `NR` values `b[pc + p][jc + NR·t + j]` (zeros past column
    /// `nb`).
    ///
    /// # Safety
    /// [`Kernel::available`]; the block inside `b`; `out` 64-byte aligned and writable for
    /// `nb.div_ceil(NR) · kb · NR` floats.
    unsafe fn pack_b(b: Operand, pc: usize, kb: usize, jc: usize, nb: usize, out: *mut f32);

    /// One output tile of `rows ≤ MR` × `cols ≤ NR` at `c` (row stride `ldc`) from a packed
    /// `kb × MR` left panel `a` and `kb × NR` right panel `b`, combined with `c` as `init` says
    /// and stored after `finish`. While it runs, it brings `kb` cache lines from `ahead` on
    /// towards L1, one per step.
    ///
    /// # Safety
    /// [`Kernel::available`]; the panels readable for `kb` steps (64-byte aligned as packed);
    /// `c` (and `finish`'s `h`) readable and writable at `rows` rows of `ldc` for `cols`
    /// columns.
    #[allow(clippy::too_many_arguments)]
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
    );
}

/// Floats in a cache line.
const LINE: usize = 64 / size_of::<f32>();

/// The most floats of a left operand packed whole rather than block by block (4 MiB). A
/// shard's left operands on the large MLP take at most 512 KiB (128 × 1024); larger ones are
/// packed block by block into the `mc × kc` buffer.
const WHOLE_A_MAX: usize = 1 << 20;

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

/// Computes `g` on kernel `K` and applies `epilogue` (its slices `m × n` at row stride `ldc`,
/// like `c`). With `prepacked`, the right operand is read from it, packed beforehand by
/// [`Kernel::pack_b`] depth block by depth block (block `pc` at `pc · n.next_multiple_of(NR)`),
/// instead of packed here.
///
/// # Safety
/// [`Kernel::available`] must hold; every index `i·rs + j·cs` inside each operand's shape must
/// be in bounds, `c` writable for `m` rows of `ldc` with `n ≤ ldc`, and `c` must not alias `a`
/// or `b`; `prepacked` must hold `b` packed so, with the depth blocks of `blocking`, 64-byte
/// aligned.
pub(super) unsafe fn multiply<K: Kernel>(
    g: Gemm,
    epilogue: Epilogue<'_>,
    blocking: &Blocking,
    prepacked: Option<*const f32>,
) {
    BUFFERS.with(|buffers| {
        let buffers = &mut *buffers.borrow_mut();
        // SAFETY: forwarded from the caller.
        unsafe { blocked::<K>(g, epilogue, blocking, buffers, prepacked) }
    });
}

/// [`multiply`] with the thread's buffers.
///
/// # Safety
/// As for [`multiply`].
unsafe fn blocked<K: Kernel>(
    g: Gemm,
    epilogue: Epilogue<'_>,
    bl: &Blocking,
    buffers: &mut Buffers,
    prepacked: Option<*const f32>,
) {
    let (mr, nr) = (K::MR, K::NR);
    let kc = bl.depth_block(g.k);
    let nc = bl.col_block(g.n, nr);
    let mc = bl.row_block(g.m, mr);
    let n_pad = g.n.next_multiple_of(nr);
    let own = if prepacked.is_some() {
        std::ptr::null_mut()
    } else {
        aligned(&mut buffers.b, kc * nc)
    };
    // With more than one column block, the left operand would be packed again for each:
    // packed whole once instead (when that buffer stays small), depth block `pc` at
    // `pc · m_pad`, its row block `ic` at `ic · kb` after that (the panels a per-block pack
    // writes, in the same places relative to each other).
    let m_pad = g.m.next_multiple_of(mr);
    let whole_a = nc < g.n && m_pad * g.k <= WHOLE_A_MAX;
    let ap = aligned(&mut buffers.a, if whole_a { m_pad * g.k } else { kc * mc });
    if whole_a {
        let mut pc = 0;
        while pc < g.k {
            let kb = kc.min(g.k - pc);
            // SAFETY: reads the m × kb block of a at (0, pc); writes m_pad · kb floats at
            // pc · m_pad, inside the m_pad · k above.
            unsafe { K::pack_a(&g, 0, g.m, pc, kb, ap.add(pc * m_pad)) };
            pc += kb;
        }
    }
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
                    unsafe { K::pack_b(b, pc, kb, jc, nb, own) };
                    own as *const f32
                }
            };
            let mut ic = 0;
            while ic < g.m {
                let mb = mc.min(g.m - ic);
                let ap = if whole_a {
                    // SAFETY: packed above; ic is a multiple of MR (mc is), so its panels
                    // start ic · kb into depth block pc.
                    unsafe { ap.add(pc * m_pad + ic * kb) }
                } else {
                    // SAFETY: as above, for the mb × kb block of a at (ic, pc) into ap.
                    unsafe { K::pack_a(&g, ic, mb, pc, kb, ap) };
                    ap
                };
                let mut jr = 0;
                while jr < nb {
                    let cols = nr.min(nb - jr);
                    let mut ir = 0;
                    while ir < mb {
                        let rows = mr.min(mb - ir);
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
                        // The first tiles of a panel bring the next panel (kb · NR floats)
                        // towards L1, kb lines each, one per step (prefetches never fault).
                        let q = ir / mr;
                        let ahead = (jr + nr < nb && q * LINE < nr)
                            .then(|| bp.wrapping_add((jr + nr) * kb + q * kb * LINE));
                        // The next tile's output lines, towards L1 for writing while this
                        // tile computes: a cold output (a shard's weight gradient) otherwise
                        // costs a read for ownership per line at the store.
                        let next = if ir + mr < mb {
                            Some((ic + ir + mr) * g.ldc + jc + jr)
                        } else if jr + nr < nb {
                            Some(ic * g.ldc + jc + jr + nr)
                        } else {
                            None
                        };
                        if let Some(next) = next {
                            let base = g.c.wrapping_add(next);
                            for r in 0..mr {
                                // Every line of the row's nr floats, wherever they start.
                                let row = base.wrapping_add(r * g.ldc);
                                for j in (0..nr + LINE).step_by(LINE) {
                                    prefetch_write(row.wrapping_add(j.min(nr - 1)));
                                }
                            }
                        }
                        // SAFETY: the panels hold kb × MR and kb × NR values; the tile's rows
                        // × cols lie inside c (and h).
                        unsafe {
                            K::tile(
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
                        ir += mr;
                    }
                    jr += nr;
                }
                ic += mb;
            }
            pc += kb;
        }
        jc += nb;
    }
}

/// Steps of the inner dimension per iteration of a register tile's loop.
const UNROLL: usize = 4;

/// `step(p)` for every `p < kb`, in order, [`UNROLL`] per loop iteration: the register tiles'
/// inner loop (the steps, and so the sums, keep their order). On a Zen 3 (AVX2), 12 interleaved
/// rounds with both panels in L1: one step per iteration 77-100% of the FMA peak, four 89-117%
/// (median ratio 1.12); on a Xeon (AVX-512, 48 KiB L1d), against an FMA loop: 95% -> 96% with
/// both panels in L1 (kb = 64), 72% -> 79% with the right panel streaming from L2 (kb = 384).
#[inline(always)]
pub(super) fn steps_unrolled(kb: usize, mut step: impl FnMut(usize)) {
    let unrolled = kb / UNROLL * UNROLL;
    let mut p = 0;
    while p < unrolled {
        for u in 0..UNROLL {
            step(p + u);
        }
        p += UNROLL;
    }
    for p in unrolled..kb {
        step(p);
    }
}

/// Brings the line at `p` towards L1 for writing (prefetches never fault).
#[inline(always)]
fn prefetch_write(p: *const f32) {
    // SAFETY: a prefetch reads nothing and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_ET0 }>(p as *const i8)
    };
}
