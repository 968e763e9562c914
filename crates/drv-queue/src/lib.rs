//! Driver binaries, the per-port driver queue and port data locks of the `erl_driver` API
//! (OTP 25, `ERL_DRV_EXTENDED` 3.3), in safe Rust with the C layouts.
//!
//! - [`BinaryRef`]: an owned reference to a reference-counted [`ErlDrvBinary`]
//!   (`driver_alloc_binary` and friends; raw versions in [`raw`]).
//!   Converts to [`bytes::Bytes`] without copying.
//! - [`PortQueue`]: a port's driver queue, a zero-copy queue of binary slices
//!   (`driver_enq`, `driver_enq_bin`, `driver_enqv`, `driver_deq`, `driver_peekq`, ...).
//! - [`PdlRef`]: a port data lock (`ErlDrvPDL`), a reference-counted raw mutex
//!   (raw versions in [`raw`]).
//!
//! The crate stands alone: the C ABI layer exports the `driver_*` functions as thin wrappers,
//! but Rust code can use the types directly.
//!
//! ```
//! use drv_queue::{BinaryRef, PdlRef, PortQueue};
//!
//! let pdl = PdlRef::new();
//! let mut queue = PortQueue::new();
//! let packet = BinaryRef::from_slice(b"header+payload").unwrap();
//! {
//!     let _locked = pdl.guard();
//!     queue.enq(b">");                  // copied
//!     queue.enq_bin(&packet, 7, 7).unwrap(); // referenced, not copied
//!     assert_eq!(packet.refc(), 2);
//! }
//! assert_eq!(queue.to_vec(), b">payload");
//! let left = queue.deq(queue.size()).unwrap();
//! assert_eq!((left, packet.refc()), (0, 1));
//!
//! // A binary shared as `Bytes` without copying.
//! let shared: bytes::Bytes = packet.clone().into();
//! assert_eq!(shared.as_ptr(), packet.data_ptr().cast_const());
//! ```

use std::ffi::{c_char, c_int};

mod binary;
mod pdl;
mod queue;
mod slots;
mod sync;

pub use binary::BinaryRef;
pub use pdl::{ErlDrvPDL, ErlDrvPdlData, PdlGuard, PdlRef};

/// The C entry points on raw handles, as `erl_driver.h` declares them (`driver_alloc_binary`,
/// `driver_binary_get_refc`, `erl_drv_pdl_lock`, ...): what a C ABI layer exports to drivers.
/// Rust code has the safe [`BinaryRef`] and [`PdlRef`] instead.
pub mod raw {
    pub use crate::binary::{
        alloc_binary, binary_dec_refc, binary_get_refc, binary_inc_refc, free_binary,
        realloc_binary,
    };
    pub use crate::pdl::{
        pdl_dec_refc, pdl_get_refc, pdl_held_by_current_thread, pdl_inc_refc, pdl_lock, pdl_unlock,
    };
    pub use crate::queue::io_vec_parts;
}

pub use queue::{IoVecParts, PortQueue, QueueError};

/// A binary as seen by a driver (`ErlDrvBinary` in `erl_driver.h`).
///
/// The reference count lives in a header before this struct; the C struct has none.
#[repr(C)]
#[derive(Debug)]
pub struct ErlDrvBinary {
    /// Total length of the binary in bytes (`ErlDrvSInt`).
    pub orig_size: isize,
    /// First byte of the data; the allocation continues past this one-element array.
    pub orig_bytes: [c_char; 1],
}

/// One I/O vector element (`SysIOVec`, i.e. `struct iovec` on Unix).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SysIOVec {
    /// Start of the bytes.
    pub iov_base: *mut c_char,
    /// Number of bytes.
    pub iov_len: usize,
}

/// An I/O vector with its binaries (`ErlIOVec` in `erl_driver.h`).
#[repr(C)]
#[derive(Debug)]
pub struct ErlIOVec {
    /// Number of elements in `iov` and `binv`.
    pub vsize: c_int,
    /// Total size in bytes of all elements.
    pub size: usize,
    /// The elements.
    pub iov: *mut SysIOVec,
    /// For each element, the binary holding its bytes, or null.
    pub binv: *mut *mut ErlDrvBinary,
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    /// Layouts as compiled from erl_driver.h on 64-bit Linux.
    #[test]
    fn c_layouts_match_the_header() {
        assert_eq!(size_of::<ErlDrvBinary>(), 16);
        assert_eq!(offset_of!(ErlDrvBinary, orig_bytes), 8);
        assert_eq!(size_of::<SysIOVec>(), 16);
        assert_eq!(offset_of!(SysIOVec, iov_len), 8);
        assert_eq!(size_of::<ErlIOVec>(), 32);
        assert_eq!(offset_of!(ErlIOVec, size), 8);
        assert_eq!(offset_of!(ErlIOVec, iov), 16);
        assert_eq!(offset_of!(ErlIOVec, binv), 24);
        assert_eq!(align_of::<ErlIOVec>(), 8);
        assert_eq!(
            size_of::<Option<BinaryRef>>(),
            size_of::<*mut ErlDrvBinary>()
        );
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
