//! Functions whose capability lands with a later issue (created ports, init acknowledgement).
//!
//! Each is exported so that drivers referencing it load; when called it reports itself once on
//! stderr ("… is not implemented yet") and returns the documented failure value.

use std::ffi::c_char;

use crate::types::{ErlDrvData, ErlDrvPort, ErlDrvTermData};

pending! {
    /// `driver_create_port` (ports created by drivers).
    fn driver_create_port(creator_port: ErlDrvPort, connected: ErlDrvTermData, name: *mut c_char, drv_data: ErlDrvData) -> ErlDrvPort = std::ptr::null_mut(), "NULL";
    /// `erl_drv_init_ack` (ERL_DRV_FLAG_USE_INIT_ACK).
    fn erl_drv_init_ack(port: ErlDrvPort, res: ErlDrvData) -> () = (), "without acknowledging";
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
