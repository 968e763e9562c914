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
        // BEAM refuses a descriptor at or past the process's limit on open files.
        if fd < 0 || fd_beyond_limit(fd) {
            return -1;
        }
        host().map_or(-1, |h| h.select(port, fd, mode, on != 0))
    })
}

/// Whether `fd` is at or past the process's (soft) limit on open files, so that no open file
/// can have it.
fn fd_beyond_limit(fd: c_int) -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit into the struct given.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    known && limit.rlim_cur != libc::RLIM_INFINITY && fd as libc::rlim_t >= limit.rlim_cur
}
