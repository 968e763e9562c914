//! What the runtime provides for the async thread pool (issue #6).

use std::ffi::{c_long, c_void};

use crate::types::ErlDrvPort;

/// A C function of an async job: `async_invoke` or `async_free`.
pub type AsyncFn = unsafe extern "C" fn(*mut c_void);

/// One `driver_async` job: the driver's `async_invoke`, `async_data` and `async_free`.
///
/// It ends exactly once: handed to the driver's `ready_async`
/// ([`Driver::ready_async`](crate::driver::Driver::ready_async)), given back to the driver
/// unfreed ([`AsyncJob::abandon`], when `driver_async` fails), or dropped, which calls
/// `async_free(async_data)` (a cancelled job, a port that is gone, a driver without
/// `ready_async`, a pool shut down with the job queued). The job calls code of the driver's
/// library: whoever holds it keeps that library loaded.
#[derive(Debug)]
pub struct AsyncJob {
    invoke: AsyncFn,
    data: *mut c_void,
    free: Option<AsyncFn>,
}

// SAFETY: `driver_async` hands `async_data` over to the runtime to be used on another thread
// (that is its purpose); the functions are plain C functions.
unsafe impl Send for AsyncJob {}

impl AsyncJob {
    /// A job from `driver_async`'s arguments.
    ///
    /// # Safety
    /// `invoke(data)` and `free(data)` may be called from any thread, `invoke` any number of
    /// times before one final `free` (or `ready_async`), as `driver_async`'s contract says.
    pub(crate) unsafe fn new(invoke: AsyncFn, data: *mut c_void, free: Option<AsyncFn>) -> Self {
        AsyncJob { invoke, data, free }
    }

    /// Runs `async_invoke(async_data)` (on a pool thread, or at once without a pool).
    pub fn invoke(&mut self) {
        // SAFETY: the function and data the driver passed together to driver_async (`new`).
        unsafe { (self.invoke)(self.data) }
    }

    /// Ends the job without calling anything: the data stays the driver's (`driver_async`
    /// returned -1 for it).
    pub fn abandon(self) {
        std::mem::forget(self);
    }

    /// Ends the job, giving its data to the caller (for `ready_async`).
    pub(crate) fn into_data(self) -> *mut c_void {
        let data = self.data;
        std::mem::forget(self);
        data
    }
}

impl Drop for AsyncJob {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the driver's async_free for this job's data, called once (`new`).
            unsafe { free(self.data) }
        }
    }
}

/// The part of [`Host`](crate::Host) behind the async thread pool.
pub trait AsyncHost {
    /// `driver_async`: queues `job` for `port`'s driver on the pool (or runs it at once without
    /// a pool: `async_invoke`, then `ready_async`). `key` picks the thread (`None`:
    /// round-robin); the host writes back the queue index it stands for, as the runtime does.
    /// Returns the job id (positive when queued, 0 when it already ran), or gives the job back
    /// for a dead port (`driver_async` then returns -1 without calling `async_free`).
    fn async_submit(
        &self,
        port: ErlDrvPort,
        key: Option<&mut u32>,
        job: AsyncJob,
    ) -> Result<c_long, AsyncJob>;
    /// `driver_async_cancel`: withdraws a job that no thread has started (dropping it calls
    /// its `async_free`). True when it was withdrawn.
    fn async_cancel(&self, id: c_long) -> bool;
}
