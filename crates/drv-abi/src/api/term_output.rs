//! Term output: `erl_drv_output_term`, `erl_drv_send_term` and the old `driver_output_term`,
//! `driver_send_term`.
//!
//! Not implemented yet (issue #5): each reports itself and returns its failure value.

#![allow(unused_imports)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

use crate::types::{
    ErlDrvBinary, ErlDrvData, ErlDrvEntry, ErlDrvEvent, ErlDrvMonitor, ErlDrvPDL, ErlDrvPort,
    ErlDrvSInt, ErlDrvSizeT, ErlDrvTermData, ErlIOVec, SysIOVec,
};

use super::not_implemented;

pending! {
    /// `driver_output_term` (term output).
    fn driver_output_term(port: ErlDrvPort, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
    /// `driver_send_term` (term output).
    fn driver_send_term(port: ErlDrvPort, to: ErlDrvTermData, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
    /// `erl_drv_output_term` (term output).
    fn erl_drv_output_term(port: ErlDrvTermData, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
    /// `erl_drv_send_term` (term output).
    fn erl_drv_send_term(port: ErlDrvTermData, to: ErlDrvTermData, data: *mut ErlDrvTermData, len: c_int) -> c_int = -1, "-1";
}
