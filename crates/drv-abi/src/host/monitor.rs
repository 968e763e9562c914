//! What the runtime provides for process monitors from drivers.

use std::ffi::c_int;

use drv_term::Pid;

use crate::types::ErlDrvPort;

/// The part of [`Host`](crate::Host) behind `driver_monitor_process` and friends. A monitor is
/// named by a number the runtime chooses (never 0), which the C API stores in the driver's
/// `ErlDrvMonitor`; when the process dies the runtime runs the driver's `process_exit` with it,
/// serialised with the port's other callbacks, and forgets the monitor afterwards.
pub trait MonitorHost {
    /// `driver_monitor_process`: the new monitor's number, or the failure BEAM gives: -1 for a
    /// dead port or a driver without `process_exit`, 1 for a process that is not alive.
    fn monitor_process(&self, port: ErlDrvPort, process: Pid) -> Result<u64, c_int>;
    /// `driver_demonitor_process`: 0 when the monitor was removed, 1 when it no longer
    /// existed, -1 for a dead port.
    fn demonitor_process(&self, port: ErlDrvPort, monitor: u64) -> c_int;
    /// `driver_get_monitored_process`: the monitored process while the monitor exists (also
    /// during its `process_exit`).
    fn monitored_process(&self, port: ErlDrvPort, monitor: u64) -> Option<Pid>;
}
