//! Port timers: `driver_set_timer`, `driver_cancel_timer`, `driver_read_timer`.

use std::ffi::{c_int, c_ulong};

use super::guard;
use crate::host::host;
use crate::types::ErlDrvPort;

/// `int driver_set_timer(ErlDrvPort port, unsigned long time)`: 0, or -1 for a dead port (a
/// driver without a `timeout` callback gets 0, as from BEAM; its timer expires without effect).
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_set_timer(port: ErlDrvPort, time: c_ulong) -> c_int {
    // `unsigned long` is 32 bits on some targets.
    #[allow(clippy::useless_conversion)]
    let time = u64::from(time);
    guard("driver_set_timer", -1, || {
        host().map_or(-1, |h| h.set_timer(port, time))
    })
}

/// `int driver_cancel_timer(ErlDrvPort port)`: 0, or -1 for a dead port.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_cancel_timer(port: ErlDrvPort) -> c_int {
    guard("driver_cancel_timer", -1, || {
        host().map_or(-1, |h| h.cancel_timer(port))
    })
}

/// `int driver_read_timer(ErlDrvPort port, unsigned long *time_left)`: writes the milliseconds
/// left (0 without a pending timer) and returns 0; -1 for a dead port or a NULL `time_left`.
///
/// # Safety
/// `time_left` is NULL or valid for writing.
pub unsafe extern "C" fn driver_read_timer(port: ErlDrvPort, time_left: *mut c_ulong) -> c_int {
    guard("driver_read_timer", -1, || {
        if time_left.is_null() {
            return -1;
        }
        let Some(left) = host().and_then(|h| h.read_timer(port)) else {
            return -1;
        };
        // `unsigned long` is 32 bits on some targets.
        #[allow(clippy::unnecessary_fallible_conversions)]
        let left = c_ulong::try_from(left).unwrap_or(c_ulong::MAX);
        // SAFETY: non-null and valid for writing by this function's contract.
        unsafe { *time_left = left };
        0
    })
}
