//! The driver queue (`driver_enq` ... `driver_peekqv`) and port data locks (`driver_pdl_*`).
//!
//! Not implemented yet (issue #4): each reports itself and returns its failure value.

#![allow(unused_imports)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

use crate::types::{
    ErlDrvBinary, ErlDrvData, ErlDrvEntry, ErlDrvEvent, ErlDrvMonitor, ErlDrvPDL, ErlDrvPort,
    ErlDrvSInt, ErlDrvSizeT, ErlDrvTermData, ErlIOVec, SysIOVec,
};

use super::not_implemented;

pending! {
    /// `driver_enq` (driver queue).
    fn driver_enq(port: ErlDrvPort, buf: *mut c_char, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_pushq` (driver queue).
    fn driver_pushq(port: ErlDrvPort, buf: *mut c_char, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_deq` (driver queue).
    fn driver_deq(port: ErlDrvPort, size: ErlDrvSizeT) -> ErlDrvSizeT = ErlDrvSizeT::MAX, "(ErlDrvSizeT)-1";
    /// `driver_sizeq` (driver queue).
    fn driver_sizeq(port: ErlDrvPort) -> ErlDrvSizeT = ErlDrvSizeT::MAX, "(ErlDrvSizeT)-1";
    /// `driver_enq_bin` (driver queue).
    fn driver_enq_bin(port: ErlDrvPort, bin: *mut ErlDrvBinary, offset: ErlDrvSizeT, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_pushq_bin` (driver queue).
    fn driver_pushq_bin(port: ErlDrvPort, bin: *mut ErlDrvBinary, offset: ErlDrvSizeT, len: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_peekqv` (driver queue).
    fn driver_peekqv(port: ErlDrvPort, ev: *mut ErlIOVec) -> ErlDrvSizeT = ErlDrvSizeT::MAX, "(ErlDrvSizeT)-1";
    /// `driver_enqv` (driver queue).
    fn driver_enqv(port: ErlDrvPort, ev: *mut ErlIOVec, skip: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_pushqv` (driver queue).
    fn driver_pushqv(port: ErlDrvPort, ev: *mut ErlIOVec, skip: ErlDrvSizeT) -> c_int = -1, "-1";
    /// `driver_pdl_create` (port data locks).
    fn driver_pdl_create(port: ErlDrvPort) -> ErlDrvPDL = std::ptr::null_mut(), "NULL";
    /// `driver_pdl_lock` (port data locks).
    fn driver_pdl_lock(pdl: ErlDrvPDL) -> () = (), "without locking";
    /// `driver_pdl_unlock` (port data locks).
    fn driver_pdl_unlock(pdl: ErlDrvPDL) -> () = (), "without unlocking";
    /// `driver_pdl_get_refc` (port data locks).
    fn driver_pdl_get_refc(pdl: ErlDrvPDL) -> ErlDrvSInt = -1, "-1";
    /// `driver_pdl_inc_refc` (port data locks).
    fn driver_pdl_inc_refc(pdl: ErlDrvPDL) -> ErlDrvSInt = -1, "-1";
    /// `driver_pdl_dec_refc` (port data locks).
    fn driver_pdl_dec_refc(pdl: ErlDrvPDL) -> ErlDrvSInt = -1, "-1";
}

/// `driver_peekq` (driver queue): NULL with `*vlen = -1`, the documented answer for a port
/// without a usable queue.
///
/// # Safety
/// `vlen` is NULL or valid for writing.
pub unsafe extern "C" fn driver_peekq(port: ErlDrvPort, vlen: *mut c_int) -> *mut SysIOVec {
    let _ = port;
    not_implemented("driver_peekq", "NULL with *vlen = -1");
    if !vlen.is_null() {
        // SAFETY: non-null and valid for writing (contract).
        unsafe { *vlen = -1 };
    }
    std::ptr::null_mut()
}
