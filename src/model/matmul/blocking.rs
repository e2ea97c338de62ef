//! Block sizes of the AVX-512 products, chosen from the cache sizes this CPU reports at run time
//! (Linux's `/sys/devices/system/cpu/cpu0/cache`, read by `gemm-common`; CPUID elsewhere), not
//! fixed for one CPU.
//!
//! The loop nest is BLIS's (Van Zee & van de Geijn 2015): a `kc × nc` block of the right operand
//! is packed to live in L2 while the packed `mc × kc` left block streams past it, and each
//! `kc × NR` micro-panel of the right block is used by every `MR`-row panel of the left. So:
//! - `kc`: a left micro-panel (`MR · kc` floats) takes at most a quarter of L1d. The right
//!   micro-panel streams from L2: our tiles are wide (a step reads `NR` floats of it for
//!   `MR · NR` FMAs), so L2 keeps up, and deep blocks mean fewer passes over the output, whose
//!   loads and stores cost the most when it is cold (a shard's weight gradient). On a Zen 4
//!   (32 KiB L1d) that is kc = 256: the large MLP's step ran 4% faster than with the right
//!   micro-panel held in half of L1d (kc = 80; medians of 5 interleaved runs);
//! - `nc`: the packed right block (`kc · nc` floats) takes at most half of L2;
//! - `mc`: the packed left block (`mc · kc` floats) takes at most a quarter of L2.
//!
//! Only `kc` changes results (it decides where partial sums are rounded into the output), so it
//! is part of [`super::kernel_isa`], which multi-process runs compare.

use gemm_common::cache::CACHE_INFO;

/// Block sizes for tiles of `mr × nr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    /// Depth of one block (the inner dimension), at most.
    pub kc: usize,
    /// Rows of the left operand packed at once, a multiple of `mr`.
    pub mc: usize,
    /// Columns of the right operand packed at once, a multiple of `nr`.
    pub nc: usize,
}

/// Cache sizes assumed when the CPU reports none (a 32 KiB L1d, 1 MiB L2).
const FALLBACK: (usize, usize) = (32 << 10, 1 << 20);

impl Blocking {
    /// The block sizes for caches of `l1d` and `l2` bytes.
    pub fn for_caches(l1d: usize, l2: usize, mr: usize, nr: usize) -> Self {
        let floats = |bytes: usize| bytes / size_of::<f32>();
        // At least 32 deep (the output tile's loads and stores amortised), at most 1024.
        let kc = (floats(l1d) / 4 / mr).clamp(32, 1024) / 8 * 8;
        let nc = (floats(l2) / 2 / kc / nr).max(1) * nr;
        let mc = (floats(l2) / 4 / kc / mr).max(1) * mr;
        Blocking { kc, mc, nc }
    }

    /// The block sizes for this CPU's caches.
    pub fn detected(mr: usize, nr: usize) -> Self {
        let (l1d, l2) = match (CACHE_INFO[0].cache_bytes, CACHE_INFO[1].cache_bytes) {
            (l1d, l2) if l1d > 0 && l2 > 0 => (l1d, l2),
            _ => FALLBACK,
        };
        Self::for_caches(l1d, l2, mr, nr)
    }

    /// The depth blocks of an inner dimension `k`: as few as `kc` allows, of equal depth (the
    /// last one shorter by less than 8), so no block is a thin remainder.
    pub fn depth_block(&self, k: usize) -> usize {
        balanced(k, self.kc, 8)
    }

    /// The row blocks of a left operand of `m` rows, for tiles of `mr` rows: as few as `mc`
    /// allows, of equal size up to a tile (128 rows in blocks of at most 126 are 66 + 62, not
    /// 126 + 2). Results do not depend on it.
    pub fn row_block(&self, m: usize, mr: usize) -> usize {
        balanced(m, self.mc, mr)
    }

    /// The column blocks of a right operand of `n` columns, for tiles of `nr` columns, as
    /// [`Blocking::row_block`]. Results do not depend on it.
    pub fn col_block(&self, n: usize, nr: usize) -> usize {
        balanced(n, self.nc, nr)
    }
}

/// The size of the fewest blocks of at most `limit` (a multiple of `unit`) covering `len`, made
/// as equal as multiples of `unit` allow.
fn balanced(len: usize, limit: usize, unit: usize) -> usize {
    let blocks = len.div_ceil(limit).max(1);
    len.div_ceil(blocks).next_multiple_of(unit).min(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_the_cache_sizes() {
        // Sapphire Rapids: 48 KiB L1d, 2 MiB L2; tiles of 8 × 48.
        let spr = Blocking::for_caches(48 << 10, 2 << 20, 8, 48);
        assert_eq!((spr.kc, spr.mc, spr.nc), (384, 336, 672));
        assert!(
            spr.kc * 8 * 4 <= 12 << 10,
            "a left micro-panel in a quarter of L1d"
        );
        assert!(spr.kc * spr.nc * 4 <= 1 << 20 && spr.nc.is_multiple_of(48));
        assert!(spr.mc * spr.kc * 4 <= 512 << 10 && spr.mc.is_multiple_of(8));
        // Zen 4: 32 KiB L1d, 1 MiB L2: shallower blocks.
        let zen4 = Blocking::for_caches(32 << 10, 1 << 20, 8, 48);
        assert_eq!((zen4.kc, zen4.mc, zen4.nc), (256, 256, 480));
        // Zen 1 (32 KiB L1d, 512 KiB L2) with the AVX2 tiles of 6 × 16.
        let zen1 = Blocking::for_caches(32 << 10, 512 << 10, 6, 16);
        assert_eq!((zen1.kc, zen1.mc, zen1.nc), (336, 96, 192));
        // A tiny or absurd report stays within bounds.
        assert_eq!(Blocking::for_caches(1024, 4096, 8, 48).kc, 32);
        assert_eq!(Blocking::for_caches(1 << 30, 1 << 30, 8, 48).kc, 1024);
    }

    #[test]
    fn row_and_column_blocks_are_even_and_never_exceed_their_limit() {
        let b = Blocking {
            kc: 256,
            mc: 126,
            nc: 256,
        };
        assert_eq!(b.row_block(128, 6), 66, "66 + 62, not 126 + 2");
        assert_eq!(b.row_block(64, 6), 66, "one block");
        for m in 1..3000 {
            let block = b.row_block(m, 6);
            assert!(block <= b.mc && block.is_multiple_of(6), "{m}: {block}");
            assert_eq!(m.div_ceil(block), m.div_ceil(b.mc), "{m}: no extra block");
        }
        for n in 1..3000 {
            let block = b.col_block(n, 16);
            assert!(block <= b.nc && block.is_multiple_of(16), "{n}: {block}");
            assert_eq!(n.div_ceil(block), n.div_ceil(b.nc), "{n}: no extra block");
        }
    }

    #[test]
    fn depth_blocks_are_even_and_never_exceed_kc() {
        let b = Blocking {
            kc: 128,
            mc: 336,
            nc: 672,
        };
        assert_eq!(b.depth_block(784), 112, "784 = 7 × 112, not 6 × 128 + 16");
        assert_eq!(b.depth_block(1024), 128);
        assert_eq!(b.depth_block(100), 104, "one block");
        assert_eq!(b.depth_block(129), 72, "two blocks of 72 and 57");
        for k in 1..2000 {
            let kc = b.depth_block(k);
            assert!(kc <= b.kc && kc > 0 && kc.is_multiple_of(8), "k {k}: {kc}");
            assert!(k.div_ceil(kc) == k.div_ceil(b.kc), "k {k}: no extra block");
        }
    }
}
