//! What the runtime provides for drivers that acknowledge their start later
//! (`ERL_DRV_FLAG_USE_INIT_ACK`, `erl_drv_init_ack`).

use crate::driver::{DriverData, StartError};
use crate::types::ErlDrvPort;

/// The part of [`Host`](crate::Host) behind `erl_drv_init_ack`.
///
/// For a driver whose entry has `ERL_DRV_FLAG_USE_INIT_ACK`, `open_port` completes when the
/// driver acknowledges, not when `start` returns.
pub trait InitAckHost {
    /// `erl_drv_init_ack(port, res)`, with `res` decoded: the port's data from now on, or the
    /// error `open_port` fails with (the port then closes without an exit signal). Ignored
    /// unless an `open_port` is waiting for this port's acknowledgement.
    fn init_ack(&self, port: ErlDrvPort, result: Result<DriverData, StartError>);
}
