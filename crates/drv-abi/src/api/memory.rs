//! Memory and binaries: `driver_alloc` & co., driver binaries, `driver_vec_to_buf`.

use std::ffi::{c_char, c_void};

use drv_queue::BinaryRef;

use super::guard;
use crate::types::{ErlDrvBinary, ErlDrvSInt, ErlDrvSizeT, ErlIOVec};

/// `void *driver_alloc(ErlDrvSizeT size)`: NULL when out of memory.
///
/// # Safety
/// Plain C allocation; the result is freed with `driver_free` or resized with `driver_realloc`.
pub unsafe extern "C" fn driver_alloc(size: ErlDrvSizeT) -> *mut c_void {
    // SAFETY: malloc accepts any size; the runtime's allocator is the C one so that drivers
    // may mix these calls freely.
    unsafe { libc::malloc(size.max(1)) }
}

/// `void *driver_realloc(void *ptr, ErlDrvSizeT size)`.
///
/// # Safety
/// `ptr` is NULL or came from `driver_alloc`/`driver_realloc` and was not freed.
pub unsafe extern "C" fn driver_realloc(ptr: *mut c_void, size: ErlDrvSizeT) -> *mut c_void {
    // SAFETY: by this function's contract `ptr` is NULL or a live malloc block.
    unsafe { libc::realloc(ptr, size.max(1)) }
}

/// `void driver_free(void *ptr)`.
///
/// # Safety
/// `ptr` is NULL or came from `driver_alloc`/`driver_realloc` and was not freed.
pub unsafe extern "C" fn driver_free(ptr: *mut c_void) {
    // SAFETY: by this function's contract `ptr` is NULL or a live malloc block.
    unsafe { libc::free(ptr) }
}

/// `ErlDrvBinary *driver_alloc_binary(ErlDrvSizeT size)`: a binary with one reference.
///
/// # Safety
/// None beyond the C API's: the result is released with `driver_free_binary`.
pub unsafe extern "C" fn driver_alloc_binary(size: ErlDrvSizeT) -> *mut ErlDrvBinary {
    guard("driver_alloc_binary", std::ptr::null_mut(), || {
        BinaryRef::alloc(size).map_or(std::ptr::null_mut(), BinaryRef::into_raw)
    })
}

/// `ErlDrvBinary *driver_realloc_binary(ErlDrvBinary *bin, ErlDrvSizeT size)`.
///
/// # Safety
/// `bin` is a live binary from `driver_alloc_binary` whose reference the caller owns.
pub unsafe extern "C" fn driver_realloc_binary(
    bin: *mut ErlDrvBinary,
    size: ErlDrvSizeT,
) -> *mut ErlDrvBinary {
    guard("driver_realloc_binary", std::ptr::null_mut(), || {
        if bin.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: by this function's contract the caller owns one reference to `bin`, which
        // we adopt; realloc returns the (possibly moved) binary with that reference.
        let owned = unsafe { BinaryRef::from_raw(bin) };
        match owned.realloc(size) {
            Ok(grown) => grown.into_raw(),
            Err(original) => {
                // Give the caller its reference back unchanged, as realloc(3) does.
                let _ = original.into_raw();
                std::ptr::null_mut()
            }
        }
    })
}

/// `void driver_free_binary(ErlDrvBinary *bin)`: drops one reference.
///
/// # Safety
/// `bin` is NULL or a live binary on which the caller owns a reference.
pub unsafe extern "C" fn driver_free_binary(bin: *mut ErlDrvBinary) {
    if bin.is_null() {
        return;
    }
    guard("driver_free_binary", (), || {
        // SAFETY: by this function's contract the caller owns one reference; dropping the
        // adopted handle releases it.
        drop(unsafe { BinaryRef::from_raw(bin) });
    })
}

/// `ErlDrvSInt driver_binary_get_refc(ErlDrvBinary *bin)`.
///
/// # Safety
/// `bin` is a live binary.
pub unsafe extern "C" fn driver_binary_get_refc(bin: *mut ErlDrvBinary) -> ErlDrvSInt {
    // SAFETY: by this function's contract `bin` is live.
    guard("driver_binary_get_refc", -1, || unsafe {
        drv_queue::raw::binary_get_refc(bin)
    })
}

/// `ErlDrvSInt driver_binary_inc_refc(ErlDrvBinary *bin)`: returns the new count.
///
/// # Safety
/// `bin` is a live binary.
pub unsafe extern "C" fn driver_binary_inc_refc(bin: *mut ErlDrvBinary) -> ErlDrvSInt {
    // SAFETY: by this function's contract `bin` is live.
    guard("driver_binary_inc_refc", -1, || unsafe {
        drv_queue::raw::binary_inc_refc(bin)
    })
}

/// `ErlDrvSInt driver_binary_dec_refc(ErlDrvBinary *bin)`: returns the new count; the binary
/// is not freed at zero (that is `driver_free_binary`'s job, as in the runtime).
///
/// # Safety
/// `bin` is a live binary.
pub unsafe extern "C" fn driver_binary_dec_refc(bin: *mut ErlDrvBinary) -> ErlDrvSInt {
    // SAFETY: by this function's contract `bin` is live.
    guard("driver_binary_dec_refc", -1, || unsafe {
        drv_queue::raw::binary_dec_refc(bin)
    })
}

/// `ErlDrvSizeT driver_vec_to_buf(ErlIOVec *ev, char *buf, ErlDrvSizeT len)`: copies up to
/// `len` bytes of the vector into `buf` and returns how many were copied.
///
/// # Safety
/// `ev` is a valid I/O vector (its `iov` has `vsize` valid entries) and `buf` has room for
/// `len` bytes.
pub unsafe extern "C" fn driver_vec_to_buf(
    ev: *mut ErlIOVec,
    buf: *mut c_char,
    len: ErlDrvSizeT,
) -> ErlDrvSizeT {
    guard("driver_vec_to_buf", 0, || {
        if ev.is_null() || buf.is_null() {
            return 0;
        }
        // SAFETY: by this function's contract `ev` is a valid I/O vector.
        let Some(pieces) = (unsafe { crate::iovec::pieces(&*ev) }) else {
            // A malformed vector (NULL `iov` with entries): nothing copied.
            return 0;
        };
        let mut copied = 0usize;
        for piece in pieces {
            if copied == len {
                break;
            }
            let n = piece.len().min(len - copied);
            // SAFETY: `buf` has room for `len` bytes and `copied + n <= len`; the source piece
            // is valid for `n <= piece.len()` bytes and cannot overlap the caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(piece.as_ptr(), buf.add(copied).cast::<u8>(), n)
            };
            copied += n;
        }
        copied
    })
}
