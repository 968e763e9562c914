//! What the runtime provides for ports that drivers create (`driver_create_port`).

use drv_term::Pid;

use crate::driver::DriverData;
use crate::types::ErlDrvPort;

/// The part of [`Host`](crate::Host) behind `driver_create_port`.
pub trait CreatePortHost {
    /// `driver_create_port(creator, owner, name, data)`: a new port of the creator's driver
    /// instance, named `name`, owned by (and linked to) `owner`, whose data is `data` (`start`
    /// is not called). `None` — the C API then returns the runtime's invalid port — when the
    /// creator is not a live port whose callback lock this thread holds, `owner` is not a live
    /// process of the creator's runtime, or the driver is being unloaded.
    fn create_port(
        &self,
        creator: ErlDrvPort,
        owner: Pid,
        name: &str,
        data: DriverData,
    ) -> Option<ErlDrvPort>;
}
