//! Process monitors: `driver_monitor_process`, `driver_demonitor_process`,
//! `driver_get_monitored_process` (`driver_compare_monitors` is in `system.rs`).

use std::ffi::c_int;

use drv_term::Pid;

use super::guard;
use crate::host::host;
use crate::types::{ErlDrvMonitor, ErlDrvPort, ErlDrvTermData};

/// `int driver_monitor_process(ErlDrvPort port, ErlDrvTermData process, ErlDrvMonitor
/// *monitor)`: 0 and `*monitor` filled in; -1 for a dead port, a driver without
/// `process_exit` or a NULL `monitor`; 1 when the process is not alive (or `process` names no
/// process of this runtime).
///
/// # Safety
/// `monitor` is NULL or valid for writing an `ErlDrvMonitor`.
pub unsafe extern "C" fn driver_monitor_process(
    port: ErlDrvPort,
    process: ErlDrvTermData,
    monitor: *mut ErlDrvMonitor,
) -> c_int {
    guard("driver_monitor_process", -1, || {
        let Some(host) = host() else {
            return -1;
        };
        if monitor.is_null() {
            return -1;
        }
        let Some(pid) = Pid::from_local_term_data(process) else {
            return 1;
        };
        match host.monitor_process(port, pid) {
            Ok(id) => {
                // SAFETY: non-null and valid for writing (contract); the struct is plain
                // bytes with alignment 1.
                unsafe { monitor.write(ErlDrvMonitor::from_id(id)) };
                0
            }
            Err(rc) => rc,
        }
    })
}

/// Reads a driver's monitor; `None` for NULL.
///
/// # Safety
/// `monitor` is NULL or valid for reading an `ErlDrvMonitor`.
unsafe fn read_monitor(monitor: *const ErlDrvMonitor) -> Option<u64> {
    // SAFETY: NULL or valid for reading (contract); alignment 1.
    unsafe { monitor.as_ref() }.map(ErlDrvMonitor::id)
}

/// `int driver_demonitor_process(ErlDrvPort port, const ErlDrvMonitor *monitor)`: 0 when
/// the monitor was removed, 1 when it no longer existed, -1 for a dead port or NULL.
///
/// # Safety
/// `monitor` is NULL or valid for reading an `ErlDrvMonitor`.
pub unsafe extern "C" fn driver_demonitor_process(
    port: ErlDrvPort,
    monitor: *const ErlDrvMonitor,
) -> c_int {
    guard("driver_demonitor_process", -1, || {
        // SAFETY: forwarded contract.
        let Some(id) = (unsafe { read_monitor(monitor) }) else {
            return -1;
        };
        host().map_or(-1, |h| h.demonitor_process(port, id))
    })
}

/// `ErlDrvTermData driver_get_monitored_process(ErlDrvPort port, const ErlDrvMonitor
/// *monitor)`: the monitored process while the monitor exists, else `driver_term_nil`.
///
/// # Safety
/// `monitor` is NULL or valid for reading an `ErlDrvMonitor`.
pub unsafe extern "C" fn driver_get_monitored_process(
    port: ErlDrvPort,
    monitor: *const ErlDrvMonitor,
) -> ErlDrvTermData {
    let nil = drv_term::tags::ERL_DRV_NIL;
    guard("driver_get_monitored_process", nil, || {
        // SAFETY: forwarded contract.
        let Some(id) = (unsafe { read_monitor(monitor) }) else {
            return nil;
        };
        host()
            .and_then(|h| h.monitored_process(port, id))
            .and_then(|pid| pid.to_local_term_data())
            .unwrap_or(nil)
    })
}
