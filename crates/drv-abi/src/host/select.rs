//! What the runtime provides for `driver_select`.

use std::ffi::c_int;

use crate::types::ErlDrvPort;

/// The part of [`Host`](crate::Host) behind `driver_select`: the runtime polls the selected
/// file descriptors and runs the port's `ready_input` / `ready_output` when one is ready (for
/// as long as it stays ready: level-triggered, as BEAM), serialised with the port's other
/// callbacks; turning `ERL_DRV_USE` off runs the driver's `stop_select` once the runtime no
/// longer uses the descriptor.
pub trait SelectHost {
    /// `driver_select(port, fd, mode, on)`, with `mode` a combination of `ERL_DRV_READ`,
    /// `ERL_DRV_WRITE` and `ERL_DRV_USE` / `ERL_DRV_USE_NO_CALLBACK`. Returns 0, or -1 for a
    /// dead port (the caller has already refused negative descriptors).
    fn select(&self, port: ErlDrvPort, fd: c_int, mode: c_int, on: bool) -> c_int;
}
