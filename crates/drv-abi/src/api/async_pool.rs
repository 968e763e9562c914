//! The async thread pool: `driver_async`, `driver_async_cancel`.

use std::ffi::{c_int, c_long, c_uint, c_void};

use super::guard;
use crate::host::{host, AsyncFn, AsyncJob};
use crate::types::ErlDrvPort;

/// `long driver_async(ErlDrvPort port, unsigned int *key, void (*async_invoke)(void *),
/// void *async_data, void (*async_free)(void *))`.
///
/// Returns the job's id (positive), 0 when it ran at once (no pool), or -1 for a dead port or
/// a NULL `async_invoke` (the runtime would crash calling it); after -1 nothing of the job has
/// run and `async_data` is still the driver's. A non-NULL `key` selects the thread (the same
/// `*key`, the same thread) and receives the index of that thread's queue.
///
/// # Safety
/// `key` is NULL or valid for reading and writing; `async_invoke` and `async_free` may be
/// called with `async_data` from another thread.
pub unsafe extern "C" fn driver_async(
    port: ErlDrvPort,
    key: *mut c_uint,
    async_invoke: Option<AsyncFn>,
    async_data: *mut c_void,
    async_free: Option<AsyncFn>,
) -> c_long {
    guard("driver_async", -1, || {
        let (Some(host), Some(invoke)) = (host(), async_invoke) else {
            return -1;
        };
        // SAFETY: the driver hands these over together, per this function's contract.
        let job = unsafe { AsyncJob::new(invoke, async_data, async_free) };
        // SAFETY: NULL or valid for reading and writing during the call (contract).
        let key = unsafe { key.as_mut() };
        match host.async_submit(port, key, job) {
            Ok(id) => id,
            Err(job) => {
                job.abandon();
                -1
            }
        }
    })
}

/// `int driver_async_cancel(long id)` (a seed-era call OTP 25 dropped): withdraws a queued job
/// that no thread has started, calls its `async_free` and returns 1; otherwise 0.
///
/// # Safety
/// None beyond the C API's.
pub unsafe extern "C" fn driver_async_cancel(id: c_long) -> c_int {
    guard("driver_async_cancel", 0, || {
        host().map_or(0, |h| c_int::from(h.async_cancel(id)))
    })
}
