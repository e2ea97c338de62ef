//! A right operand packed once and read by many products: a layer's weights are the same for
//! every shard of a step, so the step packs them once, in parallel, and every shard's forward and
//! input-gradient products read the panels instead of packing the weights themselves.
//!
//! The packed values are the operand's own, so a product reading them gives the same bits as one
//! packing for itself.

use rayon::prelude::*;

use super::Mat;

/// Column panels packed by one parallel unit of [`PackedB::pack`].
const PANELS: usize = 4;

/// A `k × n` right operand in our kernels' panel layout (depth block by depth block). Empty,
/// and ignored, where our kernels do not run.
#[derive(Debug, Default)]
pub struct PackedB {
    data: Vec<f32>,
    offset: usize,
    k: usize,
    n: usize,
    /// Packed since it was last marked stale.
    fresh: bool,
}

impl PackedB {
    /// A `k × n` operand never packed: products given it pack for themselves.
    pub fn unused(k: usize, n: usize) -> Self {
        PackedB {
            k,
            n,
            ..PackedB::default()
        }
    }

    /// Room for a `k × n` operand (allocated here, once; nothing where our kernels do not run).
    pub fn new(k: usize, n: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some((kernel, _)) = super::native::Native::detected() {
            let len = k * n.next_multiple_of(kernel.nr()) + 16;
            let data = vec![0f32; len];
            let offset = data.as_ptr().align_offset(64);
            return PackedB {
                data,
                offset,
                k,
                n,
                fresh: false,
            };
        }
        PackedB::unused(k, n)
    }

    /// Packs `b` (which must be `k × n`) in parallel on the current rayon pool, in units of a
    /// depth block × four column panels. Allocates nothing.
    ///
    /// # Panics
    /// If `b` is not `k × n`.
    pub fn pack(&mut self, b: Mat<'_>) {
        assert_eq!((b.rows, b.cols), (self.k, self.n), "packed operand's shape");
        #[cfg(target_arch = "x86_64")]
        if let Some((kernel, blocking)) = super::native::Native::detected() {
            use super::nest::Operand;
            let (k, n) = (self.k, self.n);
            if k == 0 || n == 0 || self.data.is_empty() {
                return;
            }
            self.fresh = true;
            let nr = kernel.nr();
            let n_pad = n.next_multiple_of(nr);
            let kc = blocking.depth_block(k);
            // Units of a depth block × PANELS column panels, so that every thread gets a share
            // even when the operand has fewer depth blocks than the pool has threads.
            self.data[self.offset..self.offset + k * n_pad]
                .par_chunks_mut(kc * n_pad)
                .enumerate()
                .for_each(|(i, block)| {
                    let pc = i * kc;
                    let kb = kc.min(k - pc);
                    block
                        .par_chunks_mut(PANELS * nr * kb)
                        .enumerate()
                        .for_each(|(t, panels)| {
                            let jc = t * PANELS * nr;
                            let nb = (PANELS * nr).min(n - jc);
                            let b = Operand {
                                ptr: b.data.as_ptr(),
                                rs: b.rs,
                                cs: b.cs,
                            };
                            // SAFETY: `Native::detected` detected the instruction set; `b` is a
                            // k × n view checked by `Mat`; `panels` holds the nb.div_ceil(nr)
                            // panels of kb × nr floats from column jc of depth block pc (panel
                            // jc / nr of the block starts jc · kb into it), aligned as the
                            // kernel reads them (the offset is 64-byte aligned, and a unit
                            // starts a whole number of nr floats after it: 192 bytes for
                            // AVX-512, 64 for AVX2).
                            unsafe { kernel.pack_b(b, pc, kb, jc, nb, panels.as_mut_ptr()) };
                        });
                });
        }
    }

    /// Marks the panels out of date: products given this pack their operand themselves until
    /// the next [`PackedB::pack`].
    pub fn mark_stale(&mut self) {
        self.fresh = false;
    }

    /// Marks the panels fresh and returns a writer of their values, for the caller to write
    /// every value of the operand through it (see [`PanelWriter`]); `None` where our kernels do
    /// not run. Allocates nothing.
    pub fn writer(&mut self) -> Option<PanelWriter> {
        #[cfg(target_arch = "x86_64")]
        if let Some((kernel, blocking)) = super::native::Native::detected()
            && self.k > 0
            && self.n > 0
            && !self.data.is_empty()
        {
            self.fresh = true;
            let nr = kernel.nr();
            return Some(PanelWriter {
                base: self.data[self.offset..].as_mut_ptr(),
                k: self.k,
                n_pad: self.n.next_multiple_of(nr),
                nr,
                kc: blocking.depth_block(self.k),
            });
        }
        None
    }

    /// The packed values and whether they are fresh (tests compare two packs).
    #[cfg(test)]
    pub(crate) fn contents(&self) -> (&[f32], bool) {
        // The panels past the alignment offset (16 floats of room for it at the end).
        let len = self.data.len().saturating_sub(16);
        (&self.data[self.offset.min(len)..][..len], self.fresh)
    }

    /// The packed panels for a product whose right operand is `b`, or `None` where our kernels
    /// do not run.
    ///
    /// # Panics
    /// If `b` is not `k × n`.
    pub(super) fn panels_for(&self, b: &Mat<'_>) -> Option<*const f32> {
        assert_eq!((b.rows, b.cols), (self.k, self.n), "packed operand's shape");
        (self.fresh && !self.data.is_empty()).then(|| self.data[self.offset..].as_ptr())
    }
}

/// Writes values of a packed operand `b` (`k × n`) where [`PackedB::pack`] puts them, from
/// any part of `b` at a time: the update pass writes each chunk of the new weights into the next
/// step's panels while the chunk is still in cache, instead of a separate pass reading the
/// weights again (see [`crate::model::PackedWeights::begin_update`]). The same values in the
/// same places as [`PackedB::pack`], so the same bits. Lanes past column `n` are never written
/// (zeros since allocation, as `pack` writes them).
///
/// Threads may write disjoint parts of `b` at once; no product may read the operand meanwhile.
/// The writer points into its [`PackedB`] without borrowing it, so its (unsafe) methods may run
/// only while that `PackedB` is alive and held by the caller ([`PackedB::writer`] takes it
/// mutably; its buffer never moves).
#[derive(Debug, Clone, Copy)]
pub struct PanelWriter {
    base: *mut f32,
    k: usize,
    n_pad: usize,
    nr: usize,
    kc: usize,
}

// SAFETY: a plain pointer into a `PackedB` that the writer's user holds mutably; the methods'
// contracts keep concurrent writes disjoint.
unsafe impl Send for PanelWriter {}
// SAFETY: as above.
unsafe impl Sync for PanelWriter {}

impl PanelWriter {
    /// Where depth block `pc` (of depth `kb`) of panel `j / nr` holds `b[p][j]`, with the
    /// block's start and depth: block `pc` at `pc · n_pad`, its panel `j / nr` at
    /// `(j / nr) · kb · nr`, then `(p - pc) · nr + j % nr` (as [`PackedB::pack`] lays it out).
    #[inline]
    fn block_of(&self, p: usize, j: usize) -> (usize, usize, usize) {
        let pc = p / self.kc * self.kc;
        let kb = self.kc.min(self.k - pc);
        let at = pc * self.n_pad + j / self.nr * kb * self.nr + (p - pc) * self.nr + j % self.nr;
        (at, pc, kb)
    }

    /// How many of the columns from `j` on (at most `want`, at most 8) lie in `j`'s panel.
    pub fn cols_in_panel(&self, j: usize, want: usize) -> usize {
        want.min(8).min(self.nr - j % self.nr)
    }

    /// `b[p][j0 + i] = src[i]`: part of a row of `b`.
    ///
    /// # Safety
    /// `p < k`, `j0 + src.len() ≤ n`; no other thread writes those values meanwhile.
    pub unsafe fn write_row(&self, p: usize, j0: usize, src: &[f32]) {
        let (mut at, _, kb) = self.block_of(p, j0);
        // The rest of the first panel's row, then whole panel rows kb · nr apart.
        let mut run = (self.nr - j0 % self.nr).min(src.len());
        let mut i = 0;
        while i < src.len() {
            // SAFETY: b[p][j0 + i..j0 + i + run] is one panel row inside the packed operand.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr().add(i), self.base.add(at), run) };
            at += kb * self.nr - (j0 + i) % self.nr;
            i += run;
            run = self.nr.min(src.len() - i);
        }
    }

    /// `b[p0 + i][j] = src[i]`: part of a column of `b` (a row of `bᵀ`).
    ///
    /// # Safety
    /// `j < n`, `p0 + src.len() ≤ k`; no other thread writes those values meanwhile.
    pub unsafe fn write_col(&self, j: usize, p0: usize, src: &[f32]) {
        let mut i = 0;
        while i < src.len() {
            let (at, pc, kb) = self.block_of(p0 + i, j);
            // The rest of this depth block: one value every nr floats.
            let run = (pc + kb - (p0 + i)).min(src.len() - i);
            for t in 0..run {
                // SAFETY: b[p0 + i + t][j] lies inside the packed operand.
                unsafe { *self.base.add(at + t * self.nr) = src[i + t] };
            }
            i += run;
        }
    }

    /// Columns `j..j + 8` of `b` (in one panel), whole: column `j + r` read from
    /// `src + r · src_rs` (rows of `bᵀ`), transposed 8 × 8 at a time. (Fewer columns with
    /// masked stores measured slower on a Zen 3 than writing them one value at a time.)
    ///
    /// # Safety
    /// [`PanelWriter::cols_in_panel`]`(j, 8) == 8`, `j + 8 ≤ n`; `src` readable for 8 rows of
    /// `k` at `src_rs`; no other thread writes those columns meanwhile. (AVX is present: a
    /// writer exists only where our kernels run.)
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    pub unsafe fn write_cols8(&self, j: usize, src: *const f32, src_rs: usize) {
        debug_assert_eq!(self.cols_in_panel(j, 8), 8);
        let mut pc = 0;
        while pc < self.k {
            let (at, _, kb) = self.block_of(pc, j);
            // Depth blocks start at multiples of 8 (`Blocking::depth_block`): whole 8 × 8
            // blocks, then the block's last kb mod 8 rows of b.
            let kb8 = kb / 8 * 8;
            for p in (0..kb8).step_by(8) {
                // SAFETY: the reads stay in the caller's 8 rows; rows pc + p.. + 8 of b, lanes
                // j % nr.. + 8 of their panel, are inside the operand.
                unsafe {
                    super::packed::transpose_8x8(
                        src.add(pc + p),
                        src_rs as isize,
                        self.base.add(at + p * self.nr),
                        self.nr,
                    )
                };
            }
            for r in 0..8 {
                for p in kb8..kb {
                    // SAFETY: as above, one value.
                    unsafe { *self.base.add(at + p * self.nr + r) = *src.add(r * src_rs + pc + p) };
                }
            }
            pc += kb;
        }
    }

    /// [`PanelWriter::write_cols8`] where no AVX is (never called: no writer exists there).
    ///
    /// # Safety
    /// As for the x86-64 version.
    #[cfg(not(target_arch = "x86_64"))]
    pub unsafe fn write_cols8(&self, j: usize, src: *const f32, src_rs: usize) {
        for r in 0..8 {
            // SAFETY: as the caller guarantees.
            unsafe {
                let row = std::slice::from_raw_parts(src.add(r * src_rs), self.k);
                self.write_col(j + r, 0, row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::matmul::{Accum, Epilogue, matmul, matmul_prepacked, runs_native};

    #[test]
    fn products_reading_an_operand_packed_in_many_units_give_the_bits_of_packing_it_there() {
        // Several depth blocks and column units, the last of each partial.
        let (m, k, n) = (9, 1000, 4 * 48 * 2 + 37);
        if !runs_native(m, k, n) {
            eprintln!("SKIPPED: our kernels do not run on this CPU, so nothing is prepacked");
            return;
        }
        let val = |i: usize| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5;
        let a: Vec<f32> = (0..m * k).map(val).collect();
        let b: Vec<f32> = (0..k * n).map(|i| val(i + 17)).collect();
        let am = Mat::row_major(&a, m, k);
        // Both layouts of the right operand: row-major (copied into panels) and transposed.
        for bm in [Mat::row_major(&b, k, n), Mat::row_major(&b, n, k).t()] {
            let mut packed = PackedB::new(k, n);
            packed.pack(bm);
            let mut want = vec![0f32; m * n];
            matmul(&mut want, am, bm, Accum::Replace);
            let mut got = vec![f32::NAN; m * n];
            matmul_prepacked(&mut got, am, bm, &packed, Epilogue::None);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "b with row stride {}", bm.rs);
            assert!(want.iter().any(|&x| x != 0.0));
        }
    }
}
