//! Term output: `erl_drv_output_term`, `erl_drv_send_term` and the old `driver_output_term`,
//! `driver_send_term`.
//!
//! The spec is interpreted by `drv_term::build_term` over [`DriverMemory`], which reads the
//! strings, binaries and numbers the spec points at. The return values are OTP 25's (checked
//! by `scenarios/term_*.scen` against BEAM): 1 when the term was delivered, -1 for a bad spec
//! or a port that does not exist, 0 when the receiver is dead or is no pid. The spec is checked
//! before the receiver, except that duplicate map keys are found only once the receiver is
//! known to exist (BEAM builds maps in a second pass), so they give 0 for a dead receiver.

use std::ffi::c_int;

use bytes::Bytes;
use drv_queue::BinaryRef;
use drv_term::{build_term, Pid, Port, SpecEnv, TermData};

use super::guard;
use crate::host::{host, Receiver, TermPort, Undeliverable};
use crate::types::{ErlDrvBinary, ErlDrvPort, ErlDrvTermData};

/// Binaries up to this size are copied into the term, larger ones shared (BEAM's
/// `ERL_ONHEAP_BIN_LIMIT`: a copy is cheaper than a reference for small data).
const COPY_BINARY_LIMIT: usize = 64;

/// The memory a driver's term spec points into, read through the raw pointers in the spec.
struct DriverMemory(());

impl DriverMemory {
    /// # Safety
    /// The env must only be used to interpret one spec whose pointer arguments are NULL or
    /// valid as the erl_driver documentation requires, for as long as the env lives: strings
    /// and buffers readable for their length, `ERL_DRV_BINARY` a live driver binary, `FLOAT`,
    /// `INT64` and `UINT64` pointers readable for 8 bytes.
    unsafe fn new() -> DriverMemory {
        DriverMemory(())
    }

    /// The 8 bytes at `ptr`, or `None` for NULL.
    fn word<T: Copy>(ptr: TermData) -> Option<T> {
        const { assert!(std::mem::size_of::<T>() == 8) };
        let ptr = ptr as usize as *const T;
        // SAFETY: a non-NULL pointer argument is readable for 8 bytes (contract of `new`); C
        // does not promise alignment for a pointer cast to a word, so read unaligned.
        (!ptr.is_null()).then(|| unsafe { ptr.read_unaligned() })
    }
}

impl SpecEnv for DriverMemory {
    fn bytes(&self, ptr: TermData, len: usize) -> Option<Bytes> {
        let ptr = ptr as usize as *const u8;
        if ptr.is_null() {
            return None;
        }
        // SAFETY: a non-NULL buffer argument is readable for its length (contract of `new`).
        Some(Bytes::copy_from_slice(unsafe {
            std::slice::from_raw_parts(ptr, len)
        }))
    }

    fn with_bytes(&self, ptr: TermData, len: usize, f: &mut dyn FnMut(&[u8])) -> Option<()> {
        let ptr = ptr as usize as *const u8;
        if ptr.is_null() {
            return None;
        }
        // SAFETY: a non-NULL buffer argument is readable for its length (contract of `new`);
        // the slice does not outlive this call.
        f(unsafe { std::slice::from_raw_parts(ptr, len) });
        Some(())
    }

    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<Bytes> {
        let bin = bin as usize as *mut ErlDrvBinary;
        if bin.is_null() {
            return None;
        }
        // The handle borrows the driver's reference and is never dropped: reading the binary
        // costs no reference count update.
        // SAFETY: a non-NULL binary argument is live, the driver holding a reference for the
        // whole call (contract of `new`).
        let binary = std::mem::ManuallyDrop::new(unsafe { BinaryRef::from_raw(bin) });
        let end = offset.checked_add(len)?;
        if end > binary.len() {
            return None;
        }
        Some(if len <= COPY_BINARY_LIMIT {
            Bytes::copy_from_slice(&binary.as_bytes()[offset..end])
        } else {
            // Shared: the term holds a reference of its own.
            Bytes::from_owner(BinaryRef::clone(&binary)).slice(offset..end)
        })
    }

    fn float(&self, ptr: TermData) -> Option<f64> {
        Self::word(ptr)
    }

    fn int64(&self, ptr: TermData) -> Option<i64> {
        Self::word(ptr)
    }

    fn uint64(&self, ptr: TermData) -> Option<u64> {
        Self::word(ptr)
    }
}

/// What `*_send_term` was asked to send to.
#[derive(Clone, Copy)]
enum Target {
    Receiver(Receiver),
    /// A receiver value that is no pid: nothing can be delivered (0), once spec and port pass.
    NotAPid,
}

impl Target {
    fn process(to: ErlDrvTermData) -> Target {
        Pid::from_local_term_data(to).map_or(Target::NotAPid, |pid| {
            Target::Receiver(Receiver::Process(pid))
        })
    }
}

/// The C result for an undelivered term.
fn undelivered(why: Undeliverable) -> c_int {
    match why {
        Undeliverable::NoPort => -1,
        Undeliverable::NoReceiver => 0,
    }
}

/// Builds the term of the spec `(data, len)` and delivers it from `port` to `target`.
///
/// # Safety
/// `data` is NULL or readable for `len` words, and the spec's pointer arguments are valid
/// (see [`DriverMemory::new`]).
unsafe fn output(port: TermPort, target: Target, data: *const ErlDrvTermData, len: c_int) -> c_int {
    let Some(host) = host() else { return -1 };
    let spec: &[TermData] = match usize::try_from(len) {
        Ok(len) if len > 0 && !data.is_null() => {
            // SAFETY: `data` is readable for `len` words (this function's contract).
            unsafe { std::slice::from_raw_parts(data, len) }
        }
        // No words: no term, which the interpreter rejects.
        _ => &[],
    };
    // SAFETY: the spec's pointer arguments are valid (this function's contract).
    let memory = unsafe { DriverMemory::new() };
    let (to, term) = match (target, build_term(spec, &memory)) {
        (Target::Receiver(to), Ok(term)) => (to, term),
        (_, Err(e)) if !e.found_after_receiver_check() => return -1,
        // The runtime looks for the port and the receiver before finding these errors: only
        // if both exist is the result the spec's -1.
        (Target::Receiver(to), Err(_)) => {
            return match host.check_term_delivery(port, Some(to)) {
                Ok(()) => -1,
                Err(why) => undelivered(why),
            }
        }
        (Target::NotAPid, _) => {
            return match host.check_term_delivery(port, None) {
                Ok(()) => 0,
                Err(why) => undelivered(why),
            }
        }
    };
    match host.deliver_term(port, to, term) {
        Ok(()) => 1,
        Err(why) => undelivered(why),
    }
}

/// The port named by a `driver_mk_port` value; `None` for any other value.
fn port_id(port: ErlDrvTermData) -> Option<TermPort> {
    Port::from_local_term_data(port).map(TermPort::Id)
}

/// `int erl_drv_output_term(ErlDrvTermData port, ErlDrvTermData *data, int len)`: sends the
/// term to the port's owner. Thread-safe.
///
/// # Safety
/// `data` is readable for `len` words forming a spec whose pointer arguments are valid.
pub unsafe extern "C" fn erl_drv_output_term(
    port: ErlDrvTermData,
    data: *mut ErlDrvTermData,
    len: c_int,
) -> c_int {
    guard("erl_drv_output_term", -1, || {
        let Some(port) = port_id(port) else { return -1 };
        let owner = Target::Receiver(Receiver::Owner);
        // SAFETY: forwarded contract.
        unsafe { output(port, owner, data, len) }
    })
}

/// `int erl_drv_send_term(ErlDrvTermData port, ErlDrvTermData to, ErlDrvTermData *data,
/// int len)`: sends the term to the process `to` (a `driver_caller`/`driver_connected`
/// value). Thread-safe.
///
/// # Safety
/// As [`erl_drv_output_term`].
pub unsafe extern "C" fn erl_drv_send_term(
    port: ErlDrvTermData,
    to: ErlDrvTermData,
    data: *mut ErlDrvTermData,
    len: c_int,
) -> c_int {
    guard("erl_drv_send_term", -1, || {
        let Some(port) = port_id(port) else { return -1 };
        // SAFETY: forwarded contract.
        unsafe { output(port, Target::process(to), data, len) }
    })
}

/// `int driver_output_term(ErlDrvPort port, ErlDrvTermData *data, int len)`: the old form of
/// [`erl_drv_output_term`], keyed by the port handle.
///
/// # Safety
/// As [`erl_drv_output_term`].
pub unsafe extern "C" fn driver_output_term(
    port: ErlDrvPort,
    data: *mut ErlDrvTermData,
    len: c_int,
) -> c_int {
    guard("driver_output_term", -1, || {
        let owner = Target::Receiver(Receiver::Owner);
        // SAFETY: forwarded contract.
        unsafe { output(TermPort::Handle(port), owner, data, len) }
    })
}

/// `int driver_send_term(ErlDrvPort port, ErlDrvTermData to, ErlDrvTermData *data, int len)`:
/// the old form of [`erl_drv_send_term`], keyed by the port handle.
///
/// # Safety
/// As [`erl_drv_output_term`].
pub unsafe extern "C" fn driver_send_term(
    port: ErlDrvPort,
    to: ErlDrvTermData,
    data: *mut ErlDrvTermData,
    len: c_int,
) -> c_int {
    guard("driver_send_term", -1, || {
        // SAFETY: forwarded contract.
        unsafe { output(TermPort::Handle(port), Target::process(to), data, len) }
    })
}
