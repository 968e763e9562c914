//! Port-facing functions: output, failure, flags and identities, answered by the [`Host`].

use std::ffi::{c_char, c_int, c_uint, CStr};

use drv_queue::BinaryRef;
use drv_term::Pid;

use super::guard;
use crate::host::{host, OutputBody, PortFailure};
use crate::types::{
    ErlDrvBinary, ErlDrvPort, ErlDrvSInt, ErlDrvSizeT, ErlDrvTermData, ErlIOVec,
    ERL_DRV_BUSY_MSGQ_DISABLED, ERL_DRV_BUSY_MSGQ_READ_ONLY,
};

/// Bytes `(ptr, len)` from a driver; empty for NULL or zero length.
///
/// # Safety
/// `ptr` is NULL or valid for reading `len` bytes for the caller's chosen lifetime.
pub(crate) unsafe fn driver_bytes<'a>(ptr: *const c_char, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: by this function's contract.
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
    }
}

/// The body of `driver_output`/`driver_output2`: the bytes, or — for a NULL buffer — no body at
/// all (the runtime then sends only the header; a binary-mode port gets no empty binary).
///
/// # Safety
/// As for [`driver_bytes`].
unsafe fn body<'a>(buf: *const c_char, len: usize) -> OutputBody<'a> {
    if buf.is_null() {
        OutputBody::Vector(&[])
    } else {
        // SAFETY: forwarded contract.
        OutputBody::Bytes(unsafe { driver_bytes(buf, len) })
    }
}

/// `int driver_output(ErlDrvPort port, char *buf, ErlDrvSizeT len)`.
///
/// # Safety
/// `buf` is valid for `len` bytes.
pub unsafe extern "C" fn driver_output(
    port: ErlDrvPort,
    buf: *mut c_char,
    len: ErlDrvSizeT,
) -> c_int {
    guard("driver_output", -1, || {
        let Some(host) = host() else { return -1 };
        // SAFETY: by this function's contract `buf` is valid for `len` bytes during the call.
        host.output(port, &[], unsafe { body(buf, len) })
    })
}

/// `int driver_output2(ErlDrvPort port, char *hbuf, ErlDrvSizeT hlen, char *buf, ErlDrvSizeT len)`.
///
/// # Safety
/// `hbuf` is valid for `hlen` bytes and `buf` for `len` bytes.
pub unsafe extern "C" fn driver_output2(
    port: ErlDrvPort,
    hbuf: *mut c_char,
    hlen: ErlDrvSizeT,
    buf: *mut c_char,
    len: ErlDrvSizeT,
) -> c_int {
    guard("driver_output2", -1, || {
        let Some(host) = host() else { return -1 };
        // SAFETY: by this function's contract both buffers are valid during the call.
        let (header, data) = unsafe { (driver_bytes(hbuf, hlen), body(buf, len)) };
        host.output(port, header, data)
    })
}

/// `int driver_output_binary(ErlDrvPort port, char *hbuf, ErlDrvSizeT hlen, ErlDrvBinary *bin,
/// ErlDrvSizeT offset, ErlDrvSizeT len)`.
///
/// # Safety
/// `hbuf` is valid for `hlen` bytes; `bin` is a live binary.
pub unsafe extern "C" fn driver_output_binary(
    port: ErlDrvPort,
    hbuf: *mut c_char,
    hlen: ErlDrvSizeT,
    bin: *mut ErlDrvBinary,
    offset: ErlDrvSizeT,
    len: ErlDrvSizeT,
) -> c_int {
    guard("driver_output_binary", -1, || {
        let Some(host) = host() else { return -1 };
        if bin.is_null() {
            return -1;
        }
        // SAFETY: by this function's contract `hbuf` is valid for `hlen` bytes.
        let header = unsafe { driver_bytes(hbuf, hlen) };
        // SAFETY: `bin` is a live binary (contract); we take our own reference.
        let binary = unsafe { BinaryRef::from_raw_borrowed(bin) };
        if offset.checked_add(len).is_none_or(|end| end > binary.len()) {
            return -1;
        }
        host.output(
            port,
            header,
            OutputBody::Binary {
                binary: &binary,
                offset,
                len,
            },
        )
    })
}

/// `int driver_outputv(ErlDrvPort port, char *hbuf, ErlDrvSizeT hlen, ErlIOVec *ev,
/// ErlDrvSizeT skip)`.
///
/// # Safety
/// `hbuf` is valid for `hlen` bytes; `ev` is a valid I/O vector.
pub unsafe extern "C" fn driver_outputv(
    port: ErlDrvPort,
    hbuf: *mut c_char,
    hlen: ErlDrvSizeT,
    ev: *mut ErlIOVec,
    skip: ErlDrvSizeT,
) -> c_int {
    guard("driver_outputv", -1, || {
        let Some(host) = host() else { return -1 };
        if ev.is_null() {
            return -1;
        }
        let mut pieces = crate::iovec::OutputPieces::new();
        // SAFETY: by this function's contract `hbuf` is valid and `ev` is a valid vector.
        let (header, cut) = unsafe {
            (
                driver_bytes(hbuf, hlen),
                crate::iovec::output_pieces(&*ev, skip, &mut pieces),
            )
        };
        // A malformed vector (NULL `iov` with entries) is bad input: the documented failure.
        if cut.is_none() {
            return -1;
        }
        host.output(port, header, OutputBody::Vector(&pieces))
    })
}

/// `int driver_failure(ErlDrvPort port, int error)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_failure(port: ErlDrvPort, error: c_int) -> c_int {
    fail("driver_failure", port, PortFailure::Code(error))
}

/// `int driver_failure_atom(ErlDrvPort port, char *string)`.
///
/// # Safety
/// `string` is a NUL-terminated string.
pub unsafe extern "C" fn driver_failure_atom(port: ErlDrvPort, string: *mut c_char) -> c_int {
    guard("driver_failure_atom", -1, || {
        if string.is_null() {
            return -1;
        }
        // SAFETY: by this function's contract `string` is NUL-terminated.
        let name = unsafe { CStr::from_ptr(string) }.to_bytes();
        // As BEAM (and `driver_mk_atom`): Latin-1, cut to an atom's length.
        let name: String = name[..name.len().min(drv_term::MAX_ATOM_CHARS)]
            .iter()
            .map(|&byte| char::from(byte))
            .collect();
        fail("driver_failure_atom", port, PortFailure::Atom(&name))
    })
}

/// `int driver_failure_posix(ErlDrvPort port, int error)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_failure_posix(port: ErlDrvPort, error: c_int) -> c_int {
    fail("driver_failure_posix", port, PortFailure::Posix(error))
}

/// `int driver_failure_eof(ErlDrvPort port)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_failure_eof(port: ErlDrvPort) -> c_int {
    fail("driver_failure_eof", port, PortFailure::Eof)
}

/// `int driver_exit(ErlDrvPort port, int err)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_exit(port: ErlDrvPort, err: c_int) -> c_int {
    fail("driver_exit", port, PortFailure::Exit(err))
}

fn fail(function: &'static str, port: ErlDrvPort, how: PortFailure<'_>) -> c_int {
    guard(function, -1, || host().map_or(-1, |h| h.failure(port, how)))
}

/// `void set_port_control_flags(ErlDrvPort port, int flags)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn set_port_control_flags(port: ErlDrvPort, flags: c_int) {
    guard("set_port_control_flags", (), || {
        if let Some(h) = host() {
            h.set_control_flags(port, flags)
        }
    })
}

/// `int get_port_flags(ErlDrvPort port)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn get_port_flags(port: ErlDrvPort) -> c_int {
    guard("get_port_flags", 0, || {
        host().map_or(0, |h| h.port_flags(port))
    })
}

/// `void set_busy_port(ErlDrvPort port, int on)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn set_busy_port(port: ErlDrvPort, on: c_int) {
    guard("set_busy_port", (), || {
        if let Some(h) = host() {
            h.set_busy(port, on != 0)
        }
    })
}

/// `ErlDrvTermData driver_connected(ErlDrvPort port)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_connected(port: ErlDrvPort) -> ErlDrvTermData {
    guard("driver_connected", 0, || {
        pid_term_data(host().and_then(|h| h.connected(port)))
    })
}

/// `ErlDrvTermData driver_caller(ErlDrvPort port)`: the process making the current call;
/// `[]` (`driver_mk_term_nil()`) where no process made it (a timeout, an async completion, a
/// select event) or for a dead port, as BEAM returns its `NIL` there (a spec using it as a
/// pid is then refused).
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_caller(port: ErlDrvPort) -> ErlDrvTermData {
    guard("driver_caller", drv_term::tags::ERL_DRV_NIL, || {
        host()
            .and_then(|h| h.caller(port))
            .and_then(|p| p.to_local_term_data())
            .unwrap_or(drv_term::tags::ERL_DRV_NIL)
    })
}

/// `ErlDrvTermData driver_mk_port(ErlDrvPort port)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_mk_port(port: ErlDrvPort) -> ErlDrvTermData {
    guard("driver_mk_port", 0, || {
        host()
            .and_then(|h| h.port_id(port))
            .and_then(|p| p.to_local_term_data())
            .unwrap_or(0)
    })
}

/// A pid as `driver_connected`/`driver_caller` return it; 0 (which no spec accepts as a pid)
/// when there is none.
fn pid_term_data(pid: Option<Pid>) -> ErlDrvTermData {
    pid.and_then(|p| p.to_local_term_data()).unwrap_or(0)
}

/// `int driver_lock_driver(ErlDrvPort port)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_lock_driver(port: ErlDrvPort) -> c_int {
    guard("driver_lock_driver", -1, || {
        host().map_or(-1, |h| h.lock_driver(port))
    })
}

/// `unsigned int driver_async_port_key(ErlDrvPort port)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_async_port_key(port: ErlDrvPort) -> c_uint {
    guard("driver_async_port_key", 0, || {
        host().map_or(0, |h| h.async_port_key(port))
    })
}

/// `void erl_drv_set_os_pid(ErlDrvPort port, ErlDrvSInt pid)`.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn erl_drv_set_os_pid(port: ErlDrvPort, pid: ErlDrvSInt) {
    guard("erl_drv_set_os_pid", (), || {
        if let Some(h) = host() {
            h.set_os_pid(port, pid)
        }
    })
}

/// `void erl_drv_busy_msgq_limits(ErlDrvPort port, ErlDrvSizeT *low, ErlDrvSizeT *high)`:
/// reads, sets or disables the port's busy message queue limits (the host keeps them); a bad
/// port writes back "disabled" for both, as BEAM does.
///
/// # Safety
/// `low` and `high` are NULL or valid for reading and writing.
pub unsafe extern "C" fn erl_drv_busy_msgq_limits(
    port: ErlDrvPort,
    low: *mut ErlDrvSizeT,
    high: *mut ErlDrvSizeT,
) {
    guard("erl_drv_busy_msgq_limits", (), || {
        let read = |limit: *mut ErlDrvSizeT| {
            if limit.is_null() {
                ERL_DRV_BUSY_MSGQ_READ_ONLY
            } else {
                // SAFETY: non-null and valid for reading by this function's contract.
                unsafe { *limit }
            }
        };
        let (new_low, new_high) = host()
            .and_then(|h| h.busy_msgq_limits(port, read(low), read(high)))
            .unwrap_or((ERL_DRV_BUSY_MSGQ_DISABLED, ERL_DRV_BUSY_MSGQ_DISABLED));
        for (limit, value) in [(low, new_low), (high, new_high)] {
            if !limit.is_null() {
                // SAFETY: non-null and valid for writing by this function's contract.
                unsafe { *limit = value };
            }
        }
    })
}

/// `int erl_drv_consume_timeslice(ErlDrvPort port, int percent)`: charges `percent` of a
/// time slice to the running callback (clamped to 1..=100, as BEAM clamps it); 1 once the
/// slice is used up (and from then on in that callback), else 0; -1 for a dead port.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn erl_drv_consume_timeslice(port: ErlDrvPort, percent: c_int) -> c_int {
    guard("erl_drv_consume_timeslice", -1, || {
        host().map_or(-1, |h| h.consume_timeslice(port, percent.clamp(1, 100)))
    })
}
