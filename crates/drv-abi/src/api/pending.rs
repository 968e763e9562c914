//! Functions whose capability lands with a later issue (queue, timers, async pool, select,
//! process monitors, term output, port data locks, created ports, linked-in drivers).
//!
//! Each is exported so that drivers referencing it load; when called it reports itself once on
//! stderr ("… is not implemented yet") and returns the documented failure value.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

use super::not_implemented;
use crate::types::{
    ErlDrvBinary, ErlDrvData, ErlDrvEntry, ErlDrvEvent, ErlDrvMonitor, ErlDrvPDL, ErlDrvPort,
    ErlDrvSInt, ErlDrvSizeT, ErlDrvTermData, ErlIOVec, SysIOVec,
};

/// Declares exported functions that report themselves as not implemented.
macro_rules! pending {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $fail:expr, $says:literal; )*) => {
        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// None: the arguments are not read.
            pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
                $(let _ = $arg;)*
                not_implemented(stringify!($name), $says);
                $fail
            }
        )*
    };
}

pending! {
    /// `driver_select` (event selection).
    fn driver_select(port: ErlDrvPort, event: ErlDrvEvent, mode: c_int, on: c_int) -> c_int = -1, "-1";
    /// `driver_enq` (driver queue).
    fn driver_enq(port: ErlDrvPort, buf: *mut c_char, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_pushq` (driver queue).
    fn driver_pushq(port: ErlDrvPort, buf: *mut c_char, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_deq` (driver queue).
    fn driver_deq(port: ErlDrvPort, size: ErlDrvSizeT) -> ErlDrvSizeT = ErlDrvSizeT::MAX, "(ErlDrvSizeT)-1";
    /// `driver_sizeq` (driver queue).
    fn driver_sizeq(port: ErlDrvPort) -> ErlDrvSizeT = ErlDrvSizeT::MAX, "(ErlDrvSizeT)-1";
    /// `driver_enq_bin` (driver queue).
    fn driver_enq_bin(port: ErlDrvPort, bin: *mut ErlDrvBinary, offset: ErlDrvSizeT, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_pushq_bin` (driver queue).
    fn driver_pushq_bin(port: ErlDrvPort, bin: *mut ErlDrvBinary, offset: ErlDrvSizeT, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_peekqv` (driver queue).
    fn driver_peekqv(port: ErlDrvPort, ev: *mut ErlIOVec) -> ErlDrvSizeT = ErlDrvSizeT::MAX, "(ErlDrvSizeT)-1";
    /// `driver_enqv` (driver queue).
    fn driver_enqv(port: ErlDrvPort, ev: *mut ErlIOVec, skip: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_pushqv` (driver queue).
    fn driver_pushqv(port: ErlDrvPort, ev: *mut ErlIOVec, skip: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_set_timer` (port timers).
    fn driver_set_timer(port: ErlDrvPort, time: std::ffi::c_ulong) -> c_int = -1, "-1";
    /// `driver_cancel_timer` (port timers).
    fn driver_cancel_timer(port: ErlDrvPort) -> c_int = -1, "-1";
    /// `driver_read_timer` (port timers).
    fn driver_read_timer(port: ErlDrvPort, time_left: *mut std::ffi::c_ulong) -> c_int = -1, "-1";
    /// `driver_async` (async thread pool).
    fn driver_async(port: ErlDrvPort, key: *mut c_uint, async_invoke: Option<unsafe extern "C" fn(*mut c_void)>, async_data: *mut c_void, async_free: Option<unsafe extern "C" fn(*mut c_void)>) -> c_long = -1, "-1";
    /// `driver_async_cancel` (seed-era async pool call).
    fn driver_async_cancel(id: c_long) -> c_int = 0, "0";
    /// `driver_monitor_process` (process monitors).
    fn driver_monitor_process(port: ErlDrvPort, process: ErlDrvTermData, monitor: *mut ErlDrvMonitor) -> c_int = -1, "-1";
    /// `driver_demonitor_process` (process monitors).
    fn driver_demonitor_process(port: ErlDrvPort, monitor: *const ErlDrvMonitor) -> c_int = 1, "1";
    /// `driver_get_monitored_process` (process monitors).
    fn driver_get_monitored_process(port: ErlDrvPort, monitor: *const ErlDrvMonitor) -> ErlDrvTermData = drv_term::tags::ERL_DRV_NIL, "driver_term_nil";
    /// `driver_output_term` (term output).
    fn driver_output_term(port: ErlDrvPort, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
    /// `driver_send_term` (term output).
    fn driver_send_term(port: ErlDrvPort, to: ErlDrvTermData, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
    /// `erl_drv_output_term` (term output).
    fn erl_drv_output_term(port: ErlDrvTermData, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
    /// `erl_drv_send_term` (term output).
    fn erl_drv_send_term(port: ErlDrvTermData, to: ErlDrvTermData, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
    /// `driver_pdl_create` (port data locks).
    fn driver_pdl_create(port: ErlDrvPort) -> ErlDrvPDL = std::ptr::null_mut(), "NULL";
    /// `driver_pdl_lock` (port data locks).
    fn driver_pdl_lock(pdl: ErlDrvPDL) -> () = (), "without locking";
    /// `driver_pdl_unlock` (port data locks).
    fn driver_pdl_unlock(pdl: ErlDrvPDL) -> () = (), "without unlocking";
    /// `driver_pdl_get_refc` (port data locks).
    fn driver_pdl_get_refc(pdl: ErlDrvPDL) -> ErlDrvSInt = -1, "-1";
    /// `driver_pdl_inc_refc` (port data locks).
    fn driver_pdl_inc_refc(pdl: ErlDrvPDL) -> ErlDrvSInt = -1, "-1";
    /// `driver_pdl_dec_refc` (port data locks).
    fn driver_pdl_dec_refc(pdl: ErlDrvPDL) -> ErlDrvSInt = -1, "-1";
    /// `driver_create_port` (ports created by drivers).
    fn driver_create_port(creator_port: ErlDrvPort, connected: ErlDrvTermData, name: *mut c_char, drv_data: ErlDrvData) -> ErlDrvPort = std::ptr::null_mut(), "NULL";
    /// `erl_drv_init_ack` (ERL_DRV_FLAG_USE_INIT_ACK).
    fn erl_drv_init_ack(port: ErlDrvPort, res: ErlDrvData) -> () = (), "without acknowledging";
    /// `add_driver_entry` (linked-in drivers).
    fn add_driver_entry(de: *mut ErlDrvEntry) -> () = (), "without adding";
    /// `remove_driver_entry` (linked-in drivers).
    fn remove_driver_entry(de: *mut ErlDrvEntry) -> c_int = -1, "-1";
}

/// `driver_peekq` (driver queue): NULL with `*vlen = -1`, the documented answer for a port
/// without a usable queue.
///
/// # Safety
/// `vlen` is NULL or valid for writing.
pub unsafe extern "C" fn driver_peekq(port: ErlDrvPort, vlen: *mut c_int) -> *mut SysIOVec {
    let _ = port;
    not_implemented("driver_peekq", "NULL with *vlen = -1");
    if !vlen.is_null() {
        // SAFETY: non-null and valid for writing (contract).
        unsafe { *vlen = -1 };
    }
    std::ptr::null_mut()
}

/// `void dtrace_drvport_str(ErlDrvPort port, char *port_buf)`: the runtime's DTrace helper.
/// ddll has no DTrace probes; it writes an empty string.
///
/// # Safety
/// `port_buf` is NULL or has room for at least one byte.
pub unsafe extern "C" fn dtrace_drvport_str(port: ErlDrvPort, port_buf: *mut c_char) {
    let _ = port;
    if !port_buf.is_null() {
        // SAFETY: room for one byte (contract).
        unsafe { *port_buf = 0 };
    }
}
