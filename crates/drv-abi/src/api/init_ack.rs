//! `erl_drv_init_ack`: the late start of a driver with `ERL_DRV_FLAG_USE_INIT_ACK`.

use super::guard;
use crate::driver::start_result;
use crate::host::host;
use crate::types::{ErlDrvData, ErlDrvPort};

/// `void erl_drv_init_ack(ErlDrvPort port, ErlDrvData res)`: completes the `open_port` of a
/// driver with `ERL_DRV_FLAG_USE_INIT_ACK`, as if its `start` had just returned `res` (the
/// port's data from now on, or an `ERL_DRV_ERROR_*` value that fails the `open_port`).
/// Ignored for a dead port, a port nobody waits for, and — as in BEAM 25 — inside `start`
/// (the `open_port` then waits for an acknowledgement after `start`).
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn erl_drv_init_ack(port: ErlDrvPort, res: ErlDrvData) {
    guard("erl_drv_init_ack", (), || {
        // First: `ERL_DRV_ERROR_ERRNO` reports the errno of the driver's call.
        let result = start_result(res);
        if let Some(host) = host() {
            host.init_ack(port, result);
        }
    })
}
