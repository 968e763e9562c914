//! Term output: `erl_drv_output_term`, `erl_drv_send_term` and the old `driver_output_term`,
//! `driver_send_term`.
//!
//! The spec is interpreted by `drv_term::FlatTerm::from_spec` over [`DriverMemory`], which
//! reads the strings, binaries and numbers the spec points at; the term travels to its
//! receiver as that one-buffer `FlatTerm`. The return values are OTP 25's (checked
//! by `scenarios/term_*.scen` and `scenarios/queue_term_output.scen` against BEAM): 1 when the
//! term was delivered, -1 for a bad spec or a port that does not exist, 0 when the receiver is
//! dead or is no pid, or when the port is closing with data queued (whatever the spec). The
//! spec is checked before the receiver, except that duplicate map keys are found only once the
//! receiver is known to exist (BEAM builds maps in a second pass), so they give 0 for a dead
//! receiver.

use std::ffi::c_int;
use std::mem::ManuallyDrop;
use std::ops::Range;

use bytes::Bytes;
use drv_queue::BinaryRef;
use drv_term::{FlatLog, FlatTerm, Pid, Port, SpecEnv, SpecError, TermData};

use super::guard;
use crate::host::{host, term_log_receivers, Host, Receiver, TermPort, Undeliverable};
use crate::types::{ErlDrvBinary, ErlDrvPort, ErlDrvTermData};

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
    #[inline]
    fn word<T: Copy>(ptr: TermData) -> Option<T> {
        const { assert!(std::mem::size_of::<T>() == 8) };
        let ptr = ptr as usize as *const T;
        // SAFETY: a non-NULL pointer argument is readable for 8 bytes (contract of `new`); C
        // does not promise alignment for a pointer cast to a word, so read unaligned.
        (!ptr.is_null()).then(|| unsafe { ptr.read_unaligned() })
    }

    /// The driver binary `bin` (never dropped: it borrows the driver's reference, so reading
    /// the binary costs no reference count update), and `offset..offset + len` if that range
    /// is inside it.
    #[inline]
    fn binary_range(
        bin: TermData,
        len: usize,
        offset: usize,
    ) -> Option<(ManuallyDrop<BinaryRef>, Range<usize>)> {
        let bin = bin as usize as *mut ErlDrvBinary;
        if bin.is_null() {
            return None;
        }
        // SAFETY: a non-NULL binary argument is live, the driver holding a reference for the
        // whole call (contract of `new`); the handle is never dropped.
        let binary = ManuallyDrop::new(unsafe { BinaryRef::from_raw(bin) });
        let end = offset.checked_add(len)?;
        (end <= binary.len()).then_some((binary, offset..end))
    }
}

impl SpecEnv for DriverMemory {
    #[inline]
    fn bytes(&self, ptr: TermData, len: usize) -> Option<&[u8]> {
        let ptr = ptr as usize as *const u8;
        if ptr.is_null() {
            return None;
        }
        // SAFETY: a non-NULL buffer argument is readable for its length as long as the env
        // lives (contract of `new`), which the returned borrow of `self` cannot outlive.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    #[inline]
    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<&[u8]> {
        let (binary, range) = Self::binary_range(bin, len, offset)?;
        // The driver holds its reference as long as the env lives (contract of `new`).
        // SAFETY: the range is inside the binary's data, unchanged while the driver holds its
        // reference, so for the env's life, which the borrow of `self` cannot outlive.
        Some(unsafe { std::slice::from_raw_parts(binary.data_ptr().add(range.start), len) })
    }

    fn shared_binary(&self, bin: TermData, len: usize, offset: usize) -> Option<Bytes> {
        let (binary, range) = Self::binary_range(bin, len, offset)?;
        // Shared: the term holds a reference of its own.
        Some(binary.to_bytes(range))
    }

    #[inline]
    fn float(&self, ptr: TermData) -> Option<f64> {
        Self::word(ptr)
    }

    #[inline]
    fn int64(&self, ptr: TermData) -> Option<i64> {
        Self::word(ptr)
    }

    #[inline]
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
        Undeliverable::NoReceiver | Undeliverable::PortClosing => 0,
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
    // Behind a deep backlog the term goes straight into the receiver's log. Anything else,
    // an error too, is found again below, in the runtime's order.
    if let Target::Receiver(to) = target {
        if term_log_receivers() && logged(host, port, to, spec, &memory) {
            return 1;
        }
    }
    deliver(host, port, target, spec, &memory)
}

/// Builds the term of `spec` and delivers it from `port` to `target`. A function of its own:
/// in [`output`], beside the check for a log, the interpreter was left out of line, and the
/// term came back through memory (`cargo xtask term-bench` measured it slower).
#[inline(never)]
fn deliver(
    host: &dyn Host,
    port: TermPort,
    target: Target,
    spec: &[TermData],
    memory: &DriverMemory,
) -> c_int {
    // Built first and handed to delivery in place: a term moved through a tuple with the
    // target, or by value into the host, is copied through the stack right after it was
    // built, and the copy's wide loads wait for the narrow stores that built it.
    let term = match FlatTerm::from_spec(spec, memory) {
        Ok(term) => term,
        Err(e) => return rejected(host, port, target, &e),
    };
    let Target::Receiver(to) = target else {
        return to_no_pid(host, port);
    };
    match host.deliver_term(port, to, &mut Some(term)) {
        Ok(()) => 1,
        Err(why) => undelivered(why),
    }
}

/// Whether the spec's term was sent by building it straight into a log of the receiver's
/// mailbox ([`TermHost::log_term`](crate::TermHost::log_term)). Not inlined, for the reason
/// [`deliver`] is not.
#[inline(never)]
fn logged(
    host: &dyn Host,
    port: TermPort,
    to: Receiver,
    spec: &[TermData],
    memory: &DriverMemory,
) -> bool {
    let mut write = |log: &mut FlatLog| log.push_spec(spec, memory);
    matches!(host.log_term(port, to, &mut write), Ok(true))
}

/// The C result for the spec error `e`, which the runtime reports only after the checks it
/// makes before finding it.
#[cold]
fn rejected(host: &dyn Host, port: TermPort, target: Target, e: &SpecError) -> c_int {
    match target {
        // Building has no effects, so the runtime's order (a closing port before the spec)
        // is kept by asking about the port only for a rejected spec.
        _ if !e.found_after_receiver_check() => match host.check_term_delivery(port, None) {
            Err(Undeliverable::PortClosing) => 0,
            _ => -1,
        },
        // The runtime looks for the port and the receiver before finding these errors: only
        // if both exist is the result the spec's -1.
        Target::Receiver(to) => match host.check_term_delivery(port, Some(to)) {
            Ok(()) => -1,
            Err(why) => undelivered(why),
        },
        Target::NotAPid => to_no_pid(host, port),
    }
}

/// The C result for a receiver that is no pid: nothing can be delivered (0) from a port that
/// could send.
fn to_no_pid(host: &dyn Host, port: TermPort) -> c_int {
    match host.check_term_delivery(port, None) {
        Ok(()) => 0,
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
