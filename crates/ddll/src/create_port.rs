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

use drv_abi::driver::DriverData;
use drv_abi::types::ErlDrvPort;
use drv_term::Pid;

use crate::host::GlobalHost;
use crate::port;
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
        let handle = runtime.create_port(&creator, &owner, name, data)?;
        // In an isolated driver's host, the parent gets a port for it too.
        crate::isolate::port_created(handle);
        Some(handle as usize as ErlDrvPort)
    }
}
