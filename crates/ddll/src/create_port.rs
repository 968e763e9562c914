//! Ports created by drivers (`driver_create_port`).
//!
//! A created port runs the creator's driver instance with the data the creator gave (`start`
//! is not called), is named as the creator says, and is owned by — and linked to — the process
//! given: its output goes there, that process's death closes it, and its exit signal reaches
//! that process. It counts as a port of its driver for erl_ddll (`port_count`, unloads), and
//! sends lists whatever its creator's mode (BEAM's created ports have no `binary` option).
//!
//! BEAM takes it only from a scheduler thread running a callback with the creator locked;
//! ddll asks for a callback on this thread holding the creator's callback lock, so a driver
//! thread (or an async job's `async_invoke`) gets the invalid port, as under BEAM.
//! See [`Runtime::create_port`] for the locking of the new port.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use drv_abi::driver::DriverData;
use drv_abi::types::ErlDrvPort;
use drv_term::Pid;

use crate::host::GlobalHost;
use crate::port::{self, NewPort, PortCell};
use crate::runtime::Runtime;

impl drv_abi::CreatePortHost for GlobalHost {
    fn create_port(
        &self,
        creator: ErlDrvPort,
        owner: Pid,
        name: &str,
        data: DriverData,
    ) -> Option<ErlDrvPort> {
        let creator = port::owned(creator)?;
        if !port::in_callback()
            || !creator.lock.is_owned_by_current_thread()
            || creator.is_closed()
            || creator.state.lock().terminating
        {
            return None;
        }
        let runtime = Runtime::upgrade(&creator)?;
        let handle = runtime.create_port(&creator, &owner, name, |_| data, true)?;
        // In an isolated driver's host, the parent gets a port for it too.
        crate::isolate::port_created(handle, creator.handle);
        Some(handle as usize as ErlDrvPort)
    }
}

impl Runtime {
    /// `driver_create_port` from a callback of `creator` (this thread holds its callback
    /// lock): a port of the same driver instance with `data` (given the new port's handle; no
    /// `start`), named `name`, owned
    /// by (linked to) `owner`. Its handle, or `None` when `owner` is not a live process of this
    /// runtime or the driver is being unloaded.
    ///
    /// With driver-level locking the new port shares the driver's lock, which this thread
    /// holds; with port-level locking it gets its own, which this thread holds until the
    /// creator's callback returns (as BEAM hands the new port over locked). BEAM 25 itself
    /// deadlocks in the driver-level case: its new port takes the driver lock again.
    ///
    /// `in_creator_callback` is `false` only for an isolated driver's port that its host
    /// created in a callback the parent did not run (a timeout, say): nothing on this thread
    /// is to hand the new port over to, so its lock is not taken.
    pub(crate) fn create_port(
        &self,
        creator: &Arc<PortCell>,
        owner: &Pid,
        name: &str,
        data: impl FnOnce(u64) -> DriverData,
        in_creator_callback: bool,
    ) -> Option<u64> {
        let owner = self.process(owner).filter(|p| p.is_alive())?;
        let driver = creator.driver.clone();
        self.inner
            .drivers
            .lock()
            .core
            .port_opened(driver.driver.name())
            .ok()?;
        let lock = driver.port_lock();
        let own_lock =
            (in_creator_callback && !Arc::ptr_eq(&lock, &creator.lock)).then(|| lock.lock_arc());
        let port_name = driver.port_name(name);
        let port = port::insert(|handle| {
            PortCell::new(
                handle,
                NewPort {
                    runtime: Arc::downgrade(&self.inner),
                    driver,
                    lock,
                    owner: owner.clone(),
                    name: port_name,
                    // BEAM's created ports send lists whatever their creator does.
                    binary: false,
                    eof: false,
                    data: Some(data(handle)),
                    init_ack: None,
                },
            )
        });
        // Checked again now that the port is in the table: a dying process is marked dead
        // before it looks for its ports there, so either this sees it dead or its exit finds
        // (and closes) the new port.
        if !owner.is_alive() {
            // No port then, as in BEAM, and no `stop`: the driver keeps its data.
            let _serial = port.lock.lock();
            port.closed.store(true, Ordering::Release);
            self.forget_port(&port);
            return None;
        }
        if let Some(own_lock) = own_lock {
            port::hold_until_callback_returns(port.clone(), own_lock);
        }
        Some(port.handle)
    }
}
