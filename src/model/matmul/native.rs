//! Which of our kernels runs on this CPU, with its block sizes: detected once, at first use.

#![cfg(target_arch = "x86_64")]

use std::sync::OnceLock;

use super::Epilogue;
use super::avx2::Avx2;
use super::avx512::Avx512;
use super::blocking::Blocking;
use super::nest::{self, Gemm, Kernel, Operand};

/// One of our kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Native {
    /// 8 × 48 tiles of AVX-512.
    Avx512,
    /// 6 × 16 tiles of AVX2 + FMA.
    Avx2,
}

impl Native {
    /// Every kernel this CPU runs, the preferred first.
    pub(super) fn available() -> impl Iterator<Item = Native> {
        [
            (Native::Avx512, Avx512::available()),
            (Native::Avx2, Avx2::available()),
        ]
        .into_iter()
        .filter_map(|(kernel, ok)| ok.then_some(kernel))
    }

    /// The kernel products run on here, and its block sizes for this CPU's caches.
    pub(super) fn detected() -> Option<&'static (Native, Blocking)> {
        static DETECTED: OnceLock<Option<(Native, Blocking)>> = OnceLock::new();
        DETECTED
            .get_or_init(|| {
                let kernel = Native::available().next()?;
                Some((kernel, Blocking::detected(kernel.mr(), kernel.nr())))
            })
            .as_ref()
    }

    /// Rows of the register tile.
    pub(super) fn mr(self) -> usize {
        match self {
            Native::Avx512 => Avx512::MR,
            Native::Avx2 => Avx2::MR,
        }
    }

    /// Columns of the register tile (and of a packed right panel).
    pub(super) fn nr(self) -> usize {
        match self {
            Native::Avx512 => Avx512::NR,
            Native::Avx2 => Avx2::NR,
        }
    }

    /// The instruction set's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Native::Avx512 => Avx512::NAME,
            Native::Avx2 => Avx2::NAME,
        }
    }

    /// [`nest::multiply`] on this kernel.
    ///
    /// # Safety
    /// As for [`nest::multiply`], with `self` among [`Native::available`].
    pub(super) unsafe fn multiply(
        self,
        g: Gemm,
        epilogue: Epilogue<'_>,
        blocking: &Blocking,
        prepacked: Option<*const f32>,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                Native::Avx512 => nest::multiply::<Avx512>(g, epilogue, blocking, prepacked),
                Native::Avx2 => nest::multiply::<Avx2>(g, epilogue, blocking, prepacked),
            }
        }
    }

    /// [`Kernel::pack_b`] on this kernel.
    ///
    /// # Safety
    /// As for [`Kernel::pack_b`], with `self` among [`Native::available`].
    pub(super) unsafe fn pack_b(
        self,
        b: Operand,
        pc: usize,
        kb: usize,
        jc: usize,
        nb: usize,
        out: *mut f32,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                Native::Avx512 => Avx512::pack_b(b, pc, kb, jc, nb, out),
                Native::Avx2 => Avx2::pack_b(b, pc, kb, jc, nb, out),
            }
        }
    }
}
