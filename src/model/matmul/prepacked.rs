//! A right operand packed once and read by many products: a layer's weights are the same for
//! every shard of a step, so the step packs them once, in parallel, and every shard's forward and
//! input-gradient products read the panels instead of packing the weights themselves.
//!
//! The packed values are the operand's own, so a product reading them gives the same bits as one
//! packing for itself.

use rayon::prelude::*;

use super::Mat;

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

    /// Packs `b` (which must be `k × n`), its depth blocks in parallel on the current rayon pool.
    /// Allocates nothing.
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
            let n_pad = n.next_multiple_of(kernel.nr());
            let kc = blocking.depth_block(k);
            self.data[self.offset..self.offset + k * n_pad]
                .par_chunks_mut(kc * n_pad)
                .enumerate()
                .for_each(|(i, block)| {
                    let pc = i * kc;
                    let kb = kc.min(k - pc);
                    let b = Operand {
                        ptr: b.data.as_ptr(),
                        rs: b.rs,
                        cs: b.cs,
                    };
                    // SAFETY: `Native::detected` detected the instruction set; `b` is a k × n
                    // view checked by `Mat`, and the block holds kb × n_pad floats, aligned as
                    // the kernel reads them (the offset is 64-byte aligned, and kc · n_pad · 4
                    // bytes is a multiple of 8 · NR · 4: 1536 for AVX-512, 768 for AVX2).
                    unsafe { kernel.pack_b(b, pc, kb, 0, n, block.as_mut_ptr()) };
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
