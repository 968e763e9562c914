//! The DTrace helper of the header, which the runtime has no use for.

use std::ffi::c_char;

use crate::types::ErlDrvPort;

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
