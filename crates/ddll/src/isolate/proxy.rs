//! The proxy driver: the entry an isolated driver has in the parent's tables, whose
//! callbacks forward to the host process (`link.rs`). Its port data is a [`ProxyPort`].

use std::ffi::{c_char, c_uint, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;

use drv_abi::driver::{Driver, LoadError};
use drv_abi::types::{
    ErlDrvData, ErlDrvEntry, ErlDrvPort, ErlDrvSSizeT, ErlDrvSizeT, ERL_DRV_ERROR_BADARG,
    ERL_DRV_ERROR_ERRNO, ERL_DRV_ERROR_GENERAL, ERL_DRV_EXTENDED_MAJOR_VERSION,
    ERL_DRV_EXTENDED_MARKER, ERL_DRV_EXTENDED_MINOR_VERSION, ERL_DRV_FLAG_USE_INIT_ACK,
    PORT_CONTROL_FLAG_BINARY,
};
use drv_term::Term;

use super::frame;
use super::link::{self, Link};
use crate::port;
use crate::runtime::{atom, Runtime};

/// A port of an isolated driver: the link and the child's port.
struct ProxyPort {
    link: Arc<Link>,
    /// The child's handle of the port.
    child: u64,
    /// The parent's handle.
    parent: u64,
}

/// The proxy driver for `name`, whose host reported `flags` and whether the driver has an
/// `outputv` (the proxy then has one too, so that the command's segments reach the host as
/// the parent cut them). Its entry lives as long as the process (a few hundred bytes per
/// isolated load): a `Driver` may outlive its unload.
pub(super) fn driver(name: &str, flags: i32, has_outputv: bool) -> Result<Driver, LoadError> {
    let name = CString::new(name).map_err(|_| LoadError::BadDriverName)?;
    let entry = ErlDrvEntry {
        start: Some(start),
        stop: Some(stop),
        output: Some(output),
        outputv: if has_outputv { Some(outputv) } else { None },
        control: Some(control),
        call: Some(call),
        driver_name: name.into_raw(),
        extended_marker: ERL_DRV_EXTENDED_MARKER,
        major_version: ERL_DRV_EXTENDED_MAJOR_VERSION,
        minor_version: ERL_DRV_EXTENDED_MINOR_VERSION,
        // The host's open waits for the acknowledgement; the proxy's start returns after it.
        driver_flags: flags & !ERL_DRV_FLAG_USE_INIT_ACK,
        ..ErlDrvEntry::EMPTY
    };
    let entry = NonNull::from(Box::leak(Box::new(entry)));
    // SAFETY: a complete entry (name and callbacks of this module) that is never freed.
    unsafe { Driver::from_entry(entry) }
}

/// What the proxy needs of the port whose callback runs: its runtime, handle and caller.
fn current() -> Option<(Runtime, u64, drv_term::Pid)> {
    port::with_current_port(|cell| Some((Runtime::upgrade(cell)?, cell.handle, caller_of(cell))))
        .flatten()
}

/// Who a callback of `cell` runs for: every proxied callback is one a process asked for; the
/// connected process otherwise.
fn caller_of(cell: &port::PortCell) -> drv_term::Pid {
    cell.caller().unwrap_or(*cell.owner.pid())
}

/// The host died during a callback of port `parent`: it exits now, before the callback
/// returns; the rest of the driver follows on the link's reader thread.
fn died(runtime: &Runtime, parent: u64, why: Term) {
    if let Some(cell) = port::lookup(parent) {
        runtime.close_port(&cell, Term::Tuple(vec![atom("driver_crashed"), why]));
    }
}

/// Creates the parent's port for the port `child` that the host's driver created, as
/// `creator` would with `driver_create_port` (`in_creator_callback`: whose callback runs on
/// this thread): the parent's handle, or `None` when `owner` is no live process here.
pub(super) fn create_port(
    runtime: &Runtime,
    creator: &Arc<port::PortCell>,
    link: &Arc<Link>,
    child: u64,
    owner: &drv_term::Pid,
    name: &str,
    in_creator_callback: bool,
) -> Option<u64> {
    // The proxy's data names the parent's port: made once its handle is known, before any
    // callback of it can run.
    let made = std::cell::Cell::new(std::ptr::null_mut::<ProxyPort>());
    let data = |parent| {
        let proxy = Box::into_raw(Box::new(ProxyPort {
            link: link.clone(),
            child,
            parent,
        }));
        made.set(proxy);
        drv_abi::driver::DriverData(proxy as usize)
    };
    let created = runtime.create_port(creator, owner, name, data, in_creator_callback);
    if created.is_none() && !made.get().is_null() {
        // SAFETY: made by `Box::into_raw` above; the runtime refused the port (no `stop`
        // will run), and no port holds it.
        drop(unsafe { Box::from_raw(made.get()) });
    }
    created
}

/// # Safety
/// Called by the runtime as a driver's `start`, with a NUL-terminated command.
unsafe extern "C" fn start(_port: ErlDrvPort, command: *mut c_char) -> ErlDrvData {
    // SAFETY: `command` is valid during the call (contract).
    let command = unsafe { CStr::from_ptr(command) }
        .to_string_lossy()
        .into_owned();
    catch_unwind(AssertUnwindSafe(|| start_port(&command))).unwrap_or(ERL_DRV_ERROR_GENERAL)
}

fn start_port(command: &str) -> ErlDrvData {
    let Some((runtime, parent, owner, binary, eof, entry)) = port::with_current_port(|cell| {
        Some((
            Runtime::upgrade(cell)?,
            cell.handle,
            *cell.owner.pid(),
            cell.binary_option,
            cell.eof,
            cell.driver.driver.entry_address(),
        ))
    })
    .flatten() else {
        return ERL_DRV_ERROR_GENERAL;
    };
    let Some(link) = link::of_entry(entry) else {
        return ERL_DRV_ERROR_GENERAL;
    };
    let flag = |b: bool| atom(if b { "true" } else { "false" });
    let request = Term::Tuple(vec![
        atom("open"),
        Term::Pid(owner),
        link::binary(command),
        flag(binary),
        flag(eof),
    ]);
    let requested = link.request(&request);
    match requested {
        Ok(mut replied) => {
            let reply = match replied.take_reply() {
                Term::Tuple(reply) => reply,
                _ => Vec::new(),
            };
            match reply.as_slice() {
                [ok, Term::Port(child)] if *ok == atom("ok") => {
                    let Some(child) = child.local_id() else {
                        return ERL_DRV_ERROR_GENERAL;
                    };
                    link.port_opened(child, parent);
                    replied.deliver(Some(parent));
                    let proxy = Box::new(ProxyPort {
                        link: link.clone(),
                        child,
                        parent,
                    });
                    Box::into_raw(proxy) as ErlDrvData
                }
                [_, Term::Atom(reason)] => {
                    // A port whose init acknowledgement failed the open may have sent
                    // messages first: they reach its owner before `open_port` fails, from
                    // this port.
                    link.adopt_failed_open(&replied.messages, parent);
                    replied.deliver(Some(parent));
                    start_error(reason.as_str())
                }
                _ => ERL_DRV_ERROR_GENERAL,
            }
        }
        Err(why) => {
            // The port fails inside its start: `open_port` returns it, and its owner gets the
            // crash as its exit reason. No data: no stop.
            died(&runtime, parent, why);
            std::ptr::null_mut()
        }
    }
}

/// The start error the host's `open_port` raised, as the driver gave it.
fn start_error(reason: &str) -> ErlDrvData {
    match reason {
        "badarg" => ERL_DRV_ERROR_BADARG,
        "einval" => ERL_DRV_ERROR_GENERAL,
        errno => match (1..200).find(|&n| drv_abi::errno_id(n).to_string_lossy() == errno) {
            Some(n) => {
                // SAFETY: errno is this thread's; the runtime reads it for ERL_DRV_ERROR_ERRNO.
                unsafe { *libc::__errno_location() = n };
                ERL_DRV_ERROR_ERRNO
            }
            None => ERL_DRV_ERROR_GENERAL,
        },
    }
}

/// # Safety
/// `data` is what [`start`] returned for the port (a `ProxyPort`, or null), and no callback of
/// the port runs after this one.
unsafe extern "C" fn stop(data: ErlDrvData) {
    if data.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `start_port`; stop is the port's last callback.
    let proxy = unsafe { Box::from_raw(data.cast::<ProxyPort>()) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if proxy.link.port_closing(proxy.child) && proxy.link.death().is_none() {
            // Ended here without an exit (an unload's kill): there too, at once.
            let request = Term::Tuple(vec![
                atom("close"),
                Term::Port(drv_term::Port::local(proxy.child)),
                atom("kill"),
            ]);
            if let Ok(replied) = proxy.link.request(&request) {
                replied.deliver(Some(proxy.parent));
            }
        }
    }));
}

/// Runs `request` for the port of `data`: the reply, or `None` when the host died (the port
/// has then exited).
///
/// # Safety
/// `data` is a live `ProxyPort` of the port whose callback runs.
unsafe fn forward(data: ErlDrvData, request: impl FnOnce(Term, Term) -> Term) -> Option<Term> {
    // SAFETY: forwarded contract.
    unsafe {
        forward_with(data, |link, child, caller| {
            link.request(&request(
                Term::Port(drv_term::Port::local(child)),
                Term::Pid(caller),
            ))
        })
    }
}

/// [`forward`], with `send` sending the request to `link` for the child's port and the caller.
///
/// # Safety
/// `data` is a live `ProxyPort` of the port whose callback runs.
unsafe fn forward_with(
    data: ErlDrvData,
    send: impl for<'a> FnOnce(&'a Arc<Link>, u64, drv_term::Pid) -> Result<link::Reply<'a>, Term>,
) -> Option<Term> {
    // Copied out: delivering the messages may close the port, whose `stop` frees its data.
    let (link, child, parent) = {
        // SAFETY: contract.
        let proxy = unsafe { &*data.cast::<ProxyPort>() };
        (proxy.link.clone(), proxy.child, proxy.parent)
    };
    // The caller alone: the runtime (an atomic count to take and drop) only on a death. A
    // callback runs while its runtime lives: an operation of it made the call.
    let caller = port::with_current_port(caller_of)?;
    let sent = send(&link, child, caller);
    match sent {
        Ok(mut replied) => {
            let reply = link.to_parent(replied.take_reply());
            replied.deliver_in_callback(child, parent);
            Some(reply)
        }
        Err(why) => {
            if let Some((runtime, ..)) = current() {
                died(&runtime, parent, why);
            }
            None
        }
    }
}

/// # Safety
/// A driver's `output`: `data` from [`start`], `buf` valid for `len` bytes.
unsafe extern "C" fn output(data: ErlDrvData, buf: *mut c_char, len: ErlDrvSizeT) {
    if data.is_null() {
        return;
    }
    // SAFETY: valid for `len` bytes during the call (contract).
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the port's data from `start` (contract).
        unsafe {
            forward_with(data, |link, child, caller| match caller.local_id() {
                Some(caller) => link.send(&frame::Request::Command {
                    port: child,
                    caller,
                    data: bytes,
                }),
                None => link.request(&Term::Tuple(vec![
                    atom("command"),
                    Term::Port(drv_term::Port::local(child)),
                    Term::Pid(caller),
                    Term::Binary(bytes::Bytes::copy_from_slice(bytes)),
                ])),
            })
        }
    }));
}

/// # Safety
/// A driver's `outputv`: `data` from [`start`], `ev` a valid I/O vector during the call.
unsafe extern "C" fn outputv(data: ErlDrvData, ev: *mut drv_abi::types::ErlIOVec) {
    if data.is_null() || ev.is_null() {
        return;
    }
    // The segments as the runtime cut them: their bytes in one binary, and their lengths.
    let mut bytes = Vec::new();
    let mut lengths = Vec::new();
    // SAFETY: `ev` is valid during the call (contract).
    let ev = unsafe { &*ev };
    let count = usize::try_from(ev.vsize).unwrap_or(0);
    for i in 0..count {
        // SAFETY: `iov` holds `vsize` elements (contract).
        let segment = unsafe { &*ev.iov.add(i) };
        // The runtime's first element is the empty one BEAM reserves for a header.
        if segment.iov_len == 0 {
            continue;
        }
        let base = segment.iov_base.cast::<u8>();
        // SAFETY: each element's base is valid for its length during the call (the caller's
        // contract).
        let part = unsafe { std::slice::from_raw_parts(base, segment.iov_len) };
        bytes.extend_from_slice(part);
        lengths.push(Term::Int(
            i64::try_from(segment.iov_len).unwrap_or(i64::MAX),
        ));
    }
    let bytes = bytes::Bytes::from(bytes);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the port's data from `start` (contract).
        unsafe {
            forward(data, |port, caller| {
                Term::Tuple(vec![
                    atom("commandv"),
                    port,
                    caller,
                    Term::Binary(bytes),
                    Term::List(lengths),
                ])
            })
        }
    }));
}

/// Sends a control or call and answers its reply: the term, or `None` for badarg.
///
/// # Safety
/// `data` from [`start`], `buf` valid for `len` bytes.
unsafe fn control_or_call(
    kind: &str,
    data: ErlDrvData,
    command: c_uint,
    input: Term,
) -> Option<Term> {
    if data.is_null() {
        return None;
    }
    let reply = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the port's data from `start` (contract).
        unsafe {
            forward(data, |port, caller| {
                Term::Tuple(vec![
                    atom(kind),
                    port,
                    caller,
                    Term::Int(i64::from(command)),
                    input,
                ])
            })
        }
    }))
    .ok()??;
    match reply {
        Term::Tuple(mut t) if t.len() == 2 && t[0] == atom("ok") => t.pop(),
        _ => None,
    }
}

/// Writes `reply` as a control/call reply: into `*rbuf` when it fits `rlen`, else into a new
/// buffer (`driver_alloc`'s, or a driver binary for a binary control reply).
///
/// # Safety
/// `rbuf` points to the runtime's buffer pointer, whose buffer holds `rlen` bytes.
unsafe fn write_reply(
    reply: &[u8],
    rbuf: *mut *mut c_char,
    rlen: ErlDrvSizeT,
    binary: bool,
) -> ErlDrvSSizeT {
    if reply.len() > rlen {
        let fresh = if binary {
            match drv_queue::BinaryRef::from_slice(reply) {
                Some(bin) => bin.into_raw().cast::<c_char>(),
                None => return -1,
            }
        } else {
            // SAFETY: plain allocation; the runtime frees a replaced buffer with `free`.
            let buf = unsafe { libc::malloc(reply.len()) }.cast::<c_char>();
            if buf.is_null() {
                return -1;
            }
            // SAFETY: `buf` holds `reply.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(reply.as_ptr(), buf.cast(), reply.len()) };
            buf
        };
        // SAFETY: `rbuf` is a valid out-pointer (contract).
        unsafe { *rbuf = fresh };
    } else {
        // SAFETY: the runtime's buffer holds `rlen >= reply.len()` bytes (contract).
        unsafe { std::ptr::copy_nonoverlapping(reply.as_ptr(), (*rbuf).cast(), reply.len()) };
    }
    reply.len() as ErlDrvSSizeT
}

/// # Safety
/// A driver's `control` (see `erl_driver.h`).
unsafe extern "C" fn control(
    data: ErlDrvData,
    command: c_uint,
    buf: *mut c_char,
    len: ErlDrvSizeT,
    rbuf: *mut *mut c_char,
    rlen: ErlDrvSizeT,
) -> ErlDrvSSizeT {
    // SAFETY: valid for `len` bytes during the call (contract).
    let input = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let input = Term::Binary(bytes::Bytes::copy_from_slice(input));
    // SAFETY: forwarded contract.
    let Some(reply) = (unsafe { control_or_call("control", data, command, input) }) else {
        return -1;
    };
    // The reply's form is the host port's control flag; the parent's port takes it on.
    let (bytes, binary) = match &reply {
        Term::Binary(b) => (b.to_vec(), true),
        other => match crate::iodata::flatten(other) {
            Some(bytes) => (bytes.to_vec(), false),
            None => return -1,
        },
    };
    let flags = if binary { PORT_CONTROL_FLAG_BINARY } else { 0 };
    port::with_current_port(|cell| Runtime::set_control_binary(cell, flags));
    // SAFETY: forwarded contract.
    unsafe { write_reply(&bytes, rbuf, rlen, binary) }
}

/// # Safety
/// A driver's `call` (see `erl_driver.h`).
unsafe extern "C" fn call(
    data: ErlDrvData,
    command: c_uint,
    buf: *mut c_char,
    len: ErlDrvSizeT,
    rbuf: *mut *mut c_char,
    rlen: ErlDrvSizeT,
    _flags: *mut c_uint,
) -> ErlDrvSSizeT {
    // SAFETY: valid for `len` bytes during the call (contract).
    let input = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let Ok(input) = drv_term::decode(input) else {
        return -1;
    };
    // SAFETY: forwarded contract.
    let Some(reply) = (unsafe { control_or_call("call", data, command, input) }) else {
        return -1;
    };
    let encoded = drv_term::encode(&reply);
    // SAFETY: forwarded contract.
    unsafe { write_reply(&encoded, rbuf, rlen, false) }
}
