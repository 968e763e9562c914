//! The exported C API: one Rust `extern "C"` function per `erl_driver.h` function.
//!
//! The shim's slots point here (see [`crate::shim`]). Each function turns its C arguments into
//! safe values (the only place raw driver pointers are read), runs inside [`guard`] so that a
//! panic becomes the function's documented failure value instead of unwinding into C, and asks
//! the installed [`Host`](crate::Host) to act where the runtime is involved.
//!
//! Functions whose capability has not landed yet are still exported (a driver that merely
//! references one must load under `RTLD_NOW`): they print an error naming themselves, once per
//! function, and return the documented failure value.

use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// Declares exported functions that report themselves as not implemented.
macro_rules! pending {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $fail:expr, $says:literal; )*) => {
        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// None: the arguments are not read.
            pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
                $(let _ = $arg;)*
                $crate::api::not_implemented(stringify!($name), $says);
                $fail
            }
        )*
    };
}

pub(crate) mod async_pool;
pub(crate) mod linked_in;
pub(crate) mod memory;
pub(crate) mod monitor;
pub(crate) mod pending;
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

/// Reports (once per function) that a driver called a function whose capability is not
/// implemented yet.
pub(crate) fn not_implemented(function: &'static str, returns: &'static str) {
    static REPORTED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut reported = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    if !reported.contains(&function) {
        reported.push(function);
        eprintln!("ddll: error: {function} is not implemented yet; it returns {returns}");
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
    pub(crate) use super::linked_in::*;
    pub(crate) use super::memory::*;
    pub(crate) use super::monitor::*;
    pub(crate) use super::pending::*;
    pub(crate) use super::port::*;
    pub(crate) use super::queue::*;
    pub(crate) use super::select::*;
    pub(crate) use super::system::*;
    pub(crate) use super::term_output::*;
    pub(crate) use super::threads::*;
    pub(crate) use super::timer::*;
}
