//! Port timers: `driver_set_timer`, `driver_cancel_timer`, `driver_read_timer`.
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
    /// `driver_set_timer` (port timers).
    fn driver_set_timer(port: ErlDrvPort, time: std::ffi::c_ulong) -> c_int = -1, "-1";
    /// `driver_cancel_timer` (port timers).
    fn driver_cancel_timer(port: ErlDrvPort) -> c_int = -1, "-1";
    /// `driver_read_timer` (port timers).
    fn driver_read_timer(port: ErlDrvPort, time_left: *mut std::ffi::c_ulong) -> c_int = -1, "-1";
}
