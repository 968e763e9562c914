//! `driver_create_port`: a driver creates a port of its own instance (a port that comes up
//! without `start`).

use std::ffi::{c_char, CStr};

use drv_term::Pid;

use super::guard;
use crate::driver::DriverData;
use crate::host::host;
use crate::types::{ErlDrvData, ErlDrvPort, ErlDrvTermData, ERL_DRV_INVALID_PORT};

/// `ErlDrvPort driver_create_port(ErlDrvPort creator_port, ErlDrvTermData connected, char
/// *name, ErlDrvData drv_data)`: a new port running the creator's driver instance (`start` is
/// not called; its data is `drv_data`), named `name`, owned by and linked to the process
/// `connected`. Returns the runtime's invalid port ([`ERL_DRV_INVALID_PORT`], as BEAM's
/// `ERTS_INVALID_ERL_DRV_PORT`) when the creator is not a live port whose callback runs on
/// this thread, `connected` is not a live local process, the driver is being unloaded, or
/// `name` is NULL (where BEAM would crash). The driver keeps `drv_data` then.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
pub unsafe extern "C" fn driver_create_port(
    creator_port: ErlDrvPort,
    connected: ErlDrvTermData,
    name: *mut c_char,
    drv_data: ErlDrvData,
) -> ErlDrvPort {
    guard("driver_create_port", ERL_DRV_INVALID_PORT, || {
        let Some(host) = host() else {
            return ERL_DRV_INVALID_PORT;
        };
        let Some(owner) = Pid::from_local_term_data(connected) else {
            return ERL_DRV_INVALID_PORT;
        };
        if name.is_null() {
            return ERL_DRV_INVALID_PORT;
        }
        // SAFETY: a non-NULL name is NUL-terminated (contract); read during the call only.
        let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
        let data = DriverData(drv_data as usize);
        host.create_port(creator_port, owner, &name, data)
            .unwrap_or(ERL_DRV_INVALID_PORT)
    })
}
