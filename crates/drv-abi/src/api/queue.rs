//! The driver queue (`driver_enq` ... `driver_peekqv`) and port data locks (`driver_pdl_*`).
//!
//! The host gives exclusive access to a port's [`PortQueue`]; the work is done by `drv-queue`.
//! Failure values are the runtime's: -1 (as `ErlDrvSizeT`, `(ErlDrvSizeT)-1`) for a port that
//! is not live, `driver_peekq` NULL with `*vlen = -1`, `driver_pdl_create` NULL.
//!
//! Where BEAM does not check an argument (a binary slice outside its binary, an `ErlIOVec`
//! without `binv`, a NULL pointer) these functions refuse with -1 or copy instead of reading
//! out of bounds; a call from a thread that may not use the queue is refused with -1 and
//! reported once on stderr; PDL misuse (locking twice, unlocking a lock not held) is reported
//! and ignored instead of deadlocking or corrupting the lock.

use std::ffi::{c_char, c_int};
use std::ptr::NonNull;
use std::sync::Mutex;

use drv_queue::PortQueue;

use super::guard;
use crate::host::{granted_queue, host};
use crate::types::{
    ErlDrvBinary, ErlDrvPDL, ErlDrvPort, ErlDrvSInt, ErlDrvSizeT, ErlIOVec, SysIOVec,
};

/// `(ErlDrvSizeT)-1`.
const SIZE_ERROR: ErlDrvSizeT = ErlDrvSizeT::MAX;

/// Runs `op` on the queue of `port`; `failure` when the host refuses (or there is no host).
///
/// Fast path: a grant the host remembered for this thread (a callback of the port, no PDL).
#[inline(always)]
fn with_queue<R>(port: ErlDrvPort, failure: R, op: impl FnOnce(&mut PortQueue) -> R) -> R {
    if let Some(queue) = granted_queue(port) {
        // SAFETY: by `remember_granted_queue`'s contract the host would grant this thread the
        // live queue as held, until it returns to the driver; the `&mut` ends in this call.
        return op(unsafe { &mut *queue.as_ptr() });
    }
    let Some((queue, _locked)) = grant_from_host(port) else {
        return failure;
    };
    // The PDL, when the host asked for it, is held until `_locked` drops.
    // SAFETY: the host granted this thread exclusive use of the live queue until it returns
    // to the driver; the `&mut` ends in this call.
    op(unsafe { &mut *queue.as_ptr() })
}

/// Asks the host for the queue of `port` (out of line, so the fast path stays small), taking
/// the PDL first when the host says so.
#[inline(never)]
fn grant_from_host(port: ErlDrvPort) -> Option<(NonNull<PortQueue>, Option<PdlLocked>)> {
    let access = host()?.queue_access(port);
    let queue = access.queue()?;
    Some((queue, access.lock_first_pdl().map(PdlLocked::lock)))
}

/// A PDL locked by the API on behalf of a callback that did not lock it; unlocked on drop,
/// even if the queue operation panics.
struct PdlLocked(drv_queue::ErlDrvPDL);

impl PdlLocked {
    fn lock(pdl: drv_queue::ErlDrvPDL) -> PdlLocked {
        // SAFETY: the host hands out live locks only (the port holds a reference).
        unsafe { drv_queue::raw::pdl_lock(pdl) };
        PdlLocked(pdl)
    }
}

impl Drop for PdlLocked {
    fn drop(&mut self) {
        // SAFETY: locked by this thread in `lock`, still live (the port holds a reference).
        unsafe { drv_queue::raw::pdl_unlock(self.0) };
    }
}

/// Reports (once per function) a call the C contract does not allow.
pub(super) fn misuse(function: &'static str, what: &'static str) {
    static REPORTED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut reported = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    if !reported.contains(&function) {
        reported.push(function);
        eprintln!("ddll: error: {function}: {what}");
    }
}

/// `int driver_enq(ErlDrvPort port, char *buf, ErlDrvSizeT len)`: appends a copy of the bytes.
///
/// # Safety
/// `buf` is valid for reading `len` bytes.
pub unsafe extern "C" fn driver_enq(port: ErlDrvPort, buf: *mut c_char, len: ErlDrvSizeT) -> c_int {
    guard("driver_enq", -1, || {
        // Past isize::MAX no buffer exists and no copy can be allocated: -1, as BEAM's
        // failing allocation gives.
        if (buf.is_null() && len != 0) || isize::try_from(len).is_err() {
            return -1;
        }
        // SAFETY: by this function's contract `buf` is valid for `len` bytes during the call.
        let data = unsafe { super::port::driver_bytes(buf, len) };
        with_queue(port, -1, move |q| match q.try_enq(data) {
            Ok(()) => 0,
            Err(_) => -1,
        })
    })
}

/// `int driver_pushq(ErlDrvPort port, char *buf, ErlDrvSizeT len)`: prepends a copy.
///
/// # Safety
/// `buf` is valid for reading `len` bytes.
pub unsafe extern "C" fn driver_pushq(
    port: ErlDrvPort,
    buf: *mut c_char,
    len: ErlDrvSizeT,
) -> c_int {
    guard("driver_pushq", -1, || {
        // Past isize::MAX no buffer exists and no copy can be allocated: -1, as BEAM's
        // failing allocation gives.
        if (buf.is_null() && len != 0) || isize::try_from(len).is_err() {
            return -1;
        }
        // SAFETY: by this function's contract `buf` is valid for `len` bytes during the call.
        let data = unsafe { super::port::driver_bytes(buf, len) };
        with_queue(port, -1, move |q| match q.try_push(data) {
            Ok(()) => 0,
            Err(_) => -1,
        })
    })
}

/// `ErlDrvSizeT driver_deq(ErlDrvPort port, ErlDrvSizeT size)`: the bytes left, or -1 when
/// the queue holds fewer than `size`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_deq(port: ErlDrvPort, size: ErlDrvSizeT) -> ErlDrvSizeT {
    guard("driver_deq", SIZE_ERROR, || {
        with_queue(port, SIZE_ERROR, move |q| q.deq(size).unwrap_or(SIZE_ERROR))
    })
}

/// `ErlDrvSizeT driver_sizeq(ErlDrvPort port)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_sizeq(port: ErlDrvPort) -> ErlDrvSizeT {
    guard("driver_sizeq", SIZE_ERROR, || {
        with_queue(port, SIZE_ERROR, move |q| q.size())
    })
}

/// `int driver_enq_bin(ErlDrvPort port, ErlDrvBinary *bin, ErlDrvSizeT offset,
/// ErlDrvSizeT len)`: appends a slice of `bin` without copying (the queue takes a reference).
/// -1 when the slice is not inside the binary.
///
/// # Safety
/// `bin` is NULL or a live driver binary.
pub unsafe extern "C" fn driver_enq_bin(
    port: ErlDrvPort,
    bin: *mut ErlDrvBinary,
    offset: ErlDrvSizeT,
    len: ErlDrvSizeT,
) -> c_int {
    guard("driver_enq_bin", -1, || {
        if bin.is_null() {
            return -1;
        }
        with_queue(port, -1, move |q| {
            // SAFETY: by this function's contract `bin` is a live driver binary.
            match unsafe { q.enq_bin_raw(bin, offset, len) } {
                Ok(()) => 0,
                Err(_) => -1,
            }
        })
    })
}

/// `int driver_pushq_bin(ErlDrvPort port, ErlDrvBinary *bin, ErlDrvSizeT offset,
/// ErlDrvSizeT len)`: prepends a slice of `bin` without copying.
///
/// # Safety
/// `bin` is NULL or a live driver binary.
pub unsafe extern "C" fn driver_pushq_bin(
    port: ErlDrvPort,
    bin: *mut ErlDrvBinary,
    offset: ErlDrvSizeT,
    len: ErlDrvSizeT,
) -> c_int {
    guard("driver_pushq_bin", -1, || {
        if bin.is_null() {
            return -1;
        }
        with_queue(port, -1, move |q| {
            // SAFETY: by this function's contract `bin` is a live driver binary.
            match unsafe { q.push_bin_raw(bin, offset, len) } {
                Ok(()) => 0,
                Err(_) => -1,
            }
        })
    })
}

/// Shared body of `driver_enqv` and `driver_pushqv`.
///
/// # Safety
/// `ev` is NULL or a valid I/O vector whose `binv` entries are NULL or live driver binaries.
unsafe fn vector(port: ErlDrvPort, ev: *mut ErlIOVec, skip: ErlDrvSizeT, push: bool) -> c_int {
    if ev.is_null() {
        return -1;
    }
    // SAFETY: by the caller's contract `ev` is a valid I/O vector.
    let ev = unsafe { &*ev };
    with_queue(port, -1, move |q| {
        // BEAM queues nothing, successfully, when the skip covers the whole vector.
        if skip >= ev.size {
            return 0;
        }
        // SAFETY: by the caller's contract the vector and its binaries are valid.
        let done = unsafe {
            if push {
                q.pushqv(ev, skip)
            } else {
                q.enqv(ev, skip)
            }
        };
        match done {
            Ok(()) => 0,
            Err(_) => -1,
        }
    })
}

/// `int driver_enqv(ErlDrvPort port, ErlIOVec *ev, ErlDrvSizeT skip)`: appends the vector's
/// bytes after `skip`, referencing its binaries (entries without one are copied).
///
/// # Safety
/// `ev` is NULL or a valid I/O vector whose `binv` is NULL or has `vsize` entries, each NULL
/// or a live driver binary.
pub unsafe extern "C" fn driver_enqv(
    port: ErlDrvPort,
    ev: *mut ErlIOVec,
    skip: ErlDrvSizeT,
) -> c_int {
    // SAFETY: forwarded contract.
    guard("driver_enqv", -1, || unsafe {
        vector(port, ev, skip, false)
    })
}

/// `int driver_pushqv(ErlDrvPort port, ErlIOVec *ev, ErlDrvSizeT skip)`: prepends the
/// vector's bytes after `skip`, keeping their order.
///
/// # Safety
/// As for [`driver_enqv`].
pub unsafe extern "C" fn driver_pushqv(
    port: ErlDrvPort,
    ev: *mut ErlIOVec,
    skip: ErlDrvSizeT,
) -> c_int {
    // SAFETY: forwarded contract.
    guard("driver_pushqv", -1, || unsafe {
        vector(port, ev, skip, true)
    })
}

/// `SysIOVec *driver_peekq(ErlDrvPort port, int *vlen)`: the queue as a contiguous array of
/// `*vlen` elements, valid until the queue next changes; NULL with `*vlen = -1` for a port
/// that is not live.
///
/// # Safety
/// `vlen` is NULL or valid for writing.
pub unsafe extern "C" fn driver_peekq(port: ErlDrvPort, vlen: *mut c_int) -> *mut SysIOVec {
    let (array, len) = guard("driver_peekq", (std::ptr::null_mut(), -1), || {
        with_queue(port, (std::ptr::null_mut(), -1), move |q| {
            let entries = q.peekq();
            // An empty queue gives NULL (and vlen 0), as BEAM's.
            let array = if entries.is_empty() {
                std::ptr::null_mut()
            } else {
                entries.as_ptr().cast_mut()
            };
            (array, c_int::try_from(entries.len()).unwrap_or(c_int::MAX))
        })
    });
    if !vlen.is_null() {
        // SAFETY: non-null and valid for writing (contract).
        unsafe { *vlen = len };
    }
    array
}

/// `ErlDrvSizeT driver_peekqv(ErlDrvPort port, ErlIOVec *ev)`: points `ev` at the queue's own
/// arrays (valid until the queue next changes) and returns the bytes queued; -1 for a port
/// that is not live. An empty queue gives NULL arrays, as in the runtime.
///
/// # Safety
/// `ev` is NULL or valid for writing.
pub unsafe extern "C" fn driver_peekqv(port: ErlDrvPort, ev: *mut ErlIOVec) -> ErlDrvSizeT {
    guard("driver_peekqv", SIZE_ERROR, || {
        if ev.is_null() {
            return SIZE_ERROR;
        }
        // SAFETY: by this function's contract `ev` is valid for writing.
        let ev = unsafe { &mut *ev };
        with_queue(port, SIZE_ERROR, move |q| {
            let size = q.peekqv(ev);
            if ev.vsize == 0 {
                ev.iov = std::ptr::null_mut();
                ev.binv = std::ptr::null_mut();
            }
            size
        })
    })
}

/// `ErlDrvPDL driver_pdl_create(ErlDrvPort port)`: NULL when the port is not live, already
/// has a lock, or the caller is not in one of its callbacks.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_pdl_create(port: ErlDrvPort) -> ErlDrvPDL {
    guard("driver_pdl_create", std::ptr::null_mut(), || {
        host()
            .and_then(|host| host.pdl_create(port))
            .map_or(std::ptr::null_mut(), |pdl| pdl.cast())
    })
}

fn pdl_handle(pdl: ErlDrvPDL) -> drv_queue::ErlDrvPDL {
    pdl.cast()
}

/// `void driver_pdl_lock(ErlDrvPDL pdl)`. Not reentrant: a thread locking a lock it holds is
/// reported and the call ignored (in the runtime it deadlocks).
///
/// # Safety
/// `pdl` is NULL or a live port data lock.
pub unsafe extern "C" fn driver_pdl_lock(pdl: ErlDrvPDL) {
    guard("driver_pdl_lock", (), || {
        if pdl.is_null() {
            return misuse("driver_pdl_lock", "NULL lock; ignored");
        }
        // SAFETY: by this function's contract `pdl` is live.
        unsafe {
            if drv_queue::raw::pdl_held_by_current_thread(pdl_handle(pdl)) {
                return misuse(
                    "driver_pdl_lock",
                    "the calling thread already holds this lock; ignored (it would deadlock)",
                );
            }
            drv_queue::raw::pdl_lock(pdl_handle(pdl));
        }
    })
}

/// `void driver_pdl_unlock(ErlDrvPDL pdl)`. Unlocking a lock the thread does not hold is
/// reported and ignored.
///
/// # Safety
/// `pdl` is NULL or a live port data lock.
pub unsafe extern "C" fn driver_pdl_unlock(pdl: ErlDrvPDL) {
    guard("driver_pdl_unlock", (), || {
        if pdl.is_null() {
            return misuse("driver_pdl_unlock", "NULL lock; ignored");
        }
        // SAFETY: by this function's contract `pdl` is live; it is unlocked only by its holder.
        unsafe {
            if !drv_queue::raw::pdl_held_by_current_thread(pdl_handle(pdl)) {
                return misuse(
                    "driver_pdl_unlock",
                    "the calling thread does not hold this lock; ignored",
                );
            }
            drv_queue::raw::pdl_unlock(pdl_handle(pdl));
        }
    })
}

/// `ErlDrvSInt driver_pdl_get_refc(ErlDrvPDL pdl)`; -1 for NULL.
///
/// # Safety
/// `pdl` is NULL or a live port data lock.
pub unsafe extern "C" fn driver_pdl_get_refc(pdl: ErlDrvPDL) -> ErlDrvSInt {
    guard("driver_pdl_get_refc", -1, || {
        if pdl.is_null() {
            return -1;
        }
        // SAFETY: by this function's contract `pdl` is live.
        unsafe { drv_queue::raw::pdl_get_refc(pdl_handle(pdl)) }
    })
}

/// `ErlDrvSInt driver_pdl_inc_refc(ErlDrvPDL pdl)`: the new count; -1 for NULL.
///
/// # Safety
/// `pdl` is NULL or a live port data lock.
pub unsafe extern "C" fn driver_pdl_inc_refc(pdl: ErlDrvPDL) -> ErlDrvSInt {
    guard("driver_pdl_inc_refc", -1, || {
        if pdl.is_null() {
            return -1;
        }
        // SAFETY: by this function's contract `pdl` is live.
        unsafe { drv_queue::raw::pdl_inc_refc(pdl_handle(pdl)) }
    })
}

/// `ErlDrvSInt driver_pdl_dec_refc(ErlDrvPDL pdl)`: the new count; the lock is destroyed at
/// zero. -1 for NULL.
///
/// # Safety
/// `pdl` is NULL or a live port data lock on which the caller owns the reference it drops.
pub unsafe extern "C" fn driver_pdl_dec_refc(pdl: ErlDrvPDL) -> ErlDrvSInt {
    guard("driver_pdl_dec_refc", -1, || {
        if pdl.is_null() {
            return -1;
        }
        // SAFETY: by this function's contract `pdl` is live and the reference is the caller's.
        unsafe { drv_queue::raw::pdl_dec_refc(pdl_handle(pdl)) }
    })
}
