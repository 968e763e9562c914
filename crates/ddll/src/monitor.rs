//! Process monitors from drivers (`driver_monitor_process` and friends).
//!
//! A port keeps its monitors (number, process) in its state. When a process dies,
//! [`Runtime::exit`] runs `process_exit` of every port of the runtime monitoring it, through the
//! serialised callback path, and removes the monitor after the callback (as BEAM does, so
//! `driver_get_monitored_process` still names the process inside it). A closed port's monitors
//! go with it.
//!
//! Creating a monitor and a process's death are ordered by the port's state lock: the monitor
//! is added and the process's liveness read under it, and the dying process is marked dead
//! before its monitors are looked for under the same lock — so either the creation sees the
//! process dead (and answers 1), or the death finds the monitor.

use std::ffi::c_int;
use std::sync::Arc;

use drv_abi::types::ErlDrvPort;
use drv_term::Pid;

use crate::host::GlobalHost;
use crate::port::{self, PortCell};
use crate::runtime::{Runtime, Settle};

impl drv_abi::MonitorHost for GlobalHost {
    fn monitor_process(&self, handle: ErlDrvPort, process: Pid) -> Result<u64, c_int> {
        let Some(port) = port::owned(handle) else {
            return Err(-1);
        };
        if port.is_closed() || !port.driver.driver.has_process_exit() {
            return Err(-1);
        }
        let Some(runtime) = Runtime::upgrade(&port) else {
            return Err(-1);
        };
        let Some(target) = runtime.process(&process) else {
            return Err(1);
        };
        let id = crate::runtime::next_id();
        let mut state = port.state.lock();
        if !target.is_alive() {
            return Err(1);
        }
        state.monitors.push((id, process));
        Ok(id)
    }

    fn demonitor_process(&self, handle: ErlDrvPort, monitor: u64) -> c_int {
        port::with_port(port::number(handle), |port| {
            let mut state = port.state.lock();
            match state.monitors.iter().position(|(id, _)| *id == monitor) {
                Some(at) => {
                    state.monitors.remove(at);
                    0
                }
                None => 1,
            }
        })
        .unwrap_or(-1)
    }

    fn monitored_process(&self, handle: ErlDrvPort, monitor: u64) -> Option<Pid> {
        port::with_port(port::number(handle), |port| {
            let state = port.state.lock();
            state
                .monitors
                .iter()
                .find(|(id, _)| *id == monitor)
                .map(|(_, pid)| *pid)
        })
        .flatten()
    }
}

impl Runtime {
    /// `pid` (already marked dead) is gone: each port monitoring it gets `process_exit` for each
    /// of its monitors of it, then loses them.
    pub(crate) fn fire_monitors(&self, pid: &Pid, settle: &Settle<&Runtime>) {
        let monitoring: Vec<(Arc<PortCell>, Vec<u64>)> = self
            .open_ports()
            .into_iter()
            .filter_map(|port| {
                let ids: Vec<u64> = port
                    .state
                    .lock()
                    .monitors
                    .iter()
                    .filter(|(_, p)| p == pid)
                    .map(|(id, _)| *id)
                    .collect();
                (!ids.is_empty()).then_some((port, ids))
            })
            .collect();
        for (port, ids) in monitoring {
            for id in ids {
                Runtime::serialized(&port, settle, |data| {
                    // Demonitored meanwhile: nothing to tell.
                    if !port.state.lock().monitors.iter().any(|(m, _)| *m == id) {
                        return;
                    }
                    port.driver.driver.process_exit(data, id);
                    port.state.lock().monitors.retain(|(m, _)| *m != id);
                });
            }
        }
    }
}
