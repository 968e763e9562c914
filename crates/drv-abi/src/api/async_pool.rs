//! The async thread pool: `driver_async`, `driver_async_cancel`.
//!
//! Not implemented yet (issue #6): each reports itself and returns its failure value.

#![allow(unused_imports)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

use crate::types::{
    ErlDrvBinary, ErlDrvData, ErlDrvEntry, ErlDrvEvent, ErlDrvMonitor, ErlDrvPDL, ErlDrvPort,
    ErlDrvSInt, ErlDrvSizeT, ErlDrvTermData, ErlIOVec, SysIOVec,
};

use super::not_implemented;

pending! {
    /// `driver_async` (async thread pool).
    fn driver_async(port: ErlDrvPort, key: *mut c_uint, async_invoke: Option<unsafe extern "C" fn(*mut c_void)>, async_data: *mut c_void, async_free: Option<unsafe extern "C" fn(*mut c_void)>) -> c_long = -1, "-1";
    /// `driver_async_cancel` (seed-era async pool call).
    fn driver_async_cancel(id: c_long) -> c_int = 0, "0";
}
