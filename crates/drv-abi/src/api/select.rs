//! `driver_select`: file descriptors the runtime polls for a port.

use std::ffi::c_int;

use super::guard;
use crate::host::host;
use crate::types::{ErlDrvEvent, ErlDrvPort};

/// `int driver_select(ErlDrvPort port, ErlDrvEvent event, int mode, int on)`: 0, or -1 for a
/// dead port or an event that is no file descriptor (negative, or beyond `int`), as BEAM.
///
/// # Safety
/// None beyond the C API's: `event` is a file descriptor cast to a pointer, never
/// dereferenced.
pub unsafe extern "C" fn driver_select(
    port: ErlDrvPort,
    event: ErlDrvEvent,
    mode: c_int,
    on: c_int,
) -> c_int {
    guard("driver_select", -1, || {
        let Ok(fd) = c_int::try_from(event as isize) else {
            return -1;
        };
        if fd < 0 {
            return -1;
        }
        host().map_or(-1, |h| h.select(port, fd, mode, on != 0))
    })
}
