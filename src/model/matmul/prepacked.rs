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
