//! The exported C API: one Rust `extern "C"` function per `erl_driver.h` function.
//!
//! The shim's slots point here (see [`crate::shim`]). Each function turns its C arguments into
//! safe values (the only place raw driver pointers are read), runs inside [`guard`] so that a
//! panic becomes the function's documented failure value instead of unwinding into C, and asks
//! the installed [`Host`](crate::Host) to act where the runtime is involved.
//!
//! Every function of the header is implemented (`dtrace.rs` holds the DTrace helper,
//! which ddll has no use for).

use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub(crate) mod async_pool;
pub(crate) mod create_port;
pub(crate) mod dtrace;
pub(crate) mod init_ack;
pub(crate) mod linked_in;
pub(crate) mod memory;
pub(crate) mod monitor;
pub(crate) mod port;
pub(crate) mod queue;
pub(crate) mod select;
pub(crate) mod system;
pub(crate) mod term_output;
pub(crate) mod threads;
pub(crate) mod timer;

/// Runs `body`; if it panics, reports the panic naming `function` and returns `failure`.
#[inline]
pub(crate) fn guard<R>(function: &'static str, failure: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            eprintln!("ddll: internal error in {function}: {what}; returning its failure value");
            failure
        }
    }
}

/// Every API function and the address of its implementation, for the shim's slots.
///
/// Generated from `include/ddll_api.def`: each entry is checked at compile time against the
/// C signature translated to Rust (a mismatch or a missing function fails the build).
pub(crate) fn implementations() -> Vec<(&'static CStr, *mut c_void)> {
    include!(concat!(env!("OUT_DIR"), "/api_bindings.rs"))
}

/// All implementations under one path, for the generated binding list.
pub(crate) mod exports {
    pub(crate) use super::async_pool::*;
    pub(crate) use super::create_port::*;
    pub(crate) use super::dtrace::*;
    pub(crate) use super::init_ack::*;
    pub(crate) use super::linked_in::*;
    pub(crate) use super::memory::*;
    pub(crate) use super::monitor::*;
    pub(crate) use super::port::*;
    pub(crate) use super::queue::*;
    pub(crate) use super::select::*;
    pub(crate) use super::system::*;
    pub(crate) use super::term_output::*;
    pub(crate) use super::threads::*;
    pub(crate) use super::timer::*;
}
