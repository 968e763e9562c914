//! Async jobs of drivers (`driver_async`): a pool per runtime, started on first use.
//!
//! `async_invoke` runs on a pool thread; the same thread then runs the port's `ready_async`
//! through the serialised callback path (the port's callback lock, never for a closed port), or
//! `async_free` when the port is gone or its driver has no `ready_async`. Each job keeps its
//! driver loaded (see [`InFlight`](crate::in_flight::InFlight)) until it has ended.

use std::cell::Cell;
use std::ffi::c_long;
use std::sync::{Arc, OnceLock};

use drv_abi::types::ErlDrvPort;
use drv_abi::AsyncJob;
use drv_async::{AsyncHandler, AsyncPool, JobId};

use crate::host::GlobalHost;
use crate::in_flight::InFlightPort;
use crate::port::{self, PortCell};
use crate::runtime::{Runtime, Settle};

/// BEAM's default pool size (`+A`), which `erlang:system_info(thread_pool_size)` reports for a
/// plain `erl` of OTP 25.
pub(crate) const DEFAULT_ASYNC_THREADS: usize = 1;

/// A queued job and the port it belongs to.
struct Job {
    /// `None` once handed to `ready_async`. Dropping it calls `async_free`.
    c: Option<AsyncJob>,
    /// A reference to the port's data lock, if it has one, for the job's whole life (as in
    /// BEAM: `driver_pdl_get_refc` counts it). Fields drop in order: this goes before `port`.
    _pdl: Option<drv_queue::PdlRef>,
    port: InFlightPort,
}

impl Job {
    fn new(c: AsyncJob, port: Arc<PortCell>) -> Job {
        Job {
            c: Some(c),
            _pdl: crate::queue::pdl_reference(&port),
            port: InFlightPort::new(port),
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // `async_free` (unless `ready_async` took the data) before anything else lets go.
        drop(self.c.take());
        // The PDL reference and then the driver's in-flight item go with the fields, after this.
    }
}

/// What the pool does with jobs.
#[derive(Debug)]
struct Completion;

impl AsyncHandler<Job> for Completion {
    fn invoke(&self, job: &mut Job) {
        if let Some(c) = job.c.as_mut() {
            c.invoke();
        }
    }

    fn completed(&self, mut job: Job) {
        let Some(c) = job.c.take() else {
            return;
        };
        // `ready_async` may close the port and so make erl_ddll work due: settled when this
        // ends, after the job (and its port) has been let go of.
        let settle = Settle::for_port(&job.port);
        let port = &job.port;
        // A closed port never runs the closure: `c` is dropped with it (`async_free`).
        let unclaimed = Runtime::serialized(port, &settle, |data| {
            port.driver.driver.ready_async(data, c)
        });
        // No `ready_async`: `async_free` runs here, after the callback lock is released.
        drop(unclaimed);
        drop(job);
        drop(settle);
    }
    // `discarded` (the pool shut down with the job queued) drops it: `async_free`.
}

/// Runtime-wide state for the async pool (a field of every runtime).
pub(crate) struct RuntimeAsync {
    threads: usize,
    pool: OnceLock<AsyncPool<Job, Completion>>,
}

impl std::fmt::Debug for RuntimeAsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeAsync")
            .field("threads", &self.threads)
            .field("started", &self.pool.get().is_some())
            .finish()
    }
}

impl Default for RuntimeAsync {
    fn default() -> Self {
        RuntimeAsync::new(DEFAULT_ASYNC_THREADS)
    }
}

impl RuntimeAsync {
    /// A pool of `threads` threads (0: jobs run at once in the caller), started on first use.
    pub(crate) fn new(threads: usize) -> RuntimeAsync {
        RuntimeAsync {
            threads,
            pool: OnceLock::new(),
        }
    }

    /// The pool size (`driver_system_info`'s `async_threads`).
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    fn pool(&self) -> Option<&AsyncPool<Job, Completion>> {
        if let Some(pool) = self.pool.get() {
            return Some(pool);
        }
        match AsyncPool::new(self.threads, Completion) {
            Ok(pool) => Some(self.pool.get_or_init(|| pool)),
            Err(e) => {
                eprintln!("ddll: cannot start the async pool: {e}");
                None
            }
        }
    }
}

thread_local! {
    /// The pool size of the runtime whose driver table this thread is using (a driver's `init`
    /// runs there, without a port).
    static TABLE_POOL_SIZE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `f` (an operation on the runtime's driver table) with the runtime's pool size known
/// to `driver_system_info` calls made by driver code without a port (`init`, `finish`).
pub(crate) fn with_pool_size<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            TABLE_POOL_SIZE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(TABLE_POOL_SIZE.with(|c| c.replace(Some(threads))));
    f()
}

/// The pool size `driver_system_info` reports: that of the runtime of the port whose callback
/// is running, or of the runtime whose driver table is in use; BEAM's default otherwise.
pub(crate) fn reported_pool_size() -> usize {
    port::with_current_port(|port| port.runtime.upgrade().map(|rt| rt.async_pool.threads()))
        .flatten()
        .or_else(|| TABLE_POOL_SIZE.with(Cell::get))
        .unwrap_or(DEFAULT_ASYNC_THREADS)
}

impl drv_abi::AsyncHost for GlobalHost {
    fn async_submit(
        &self,
        handle: ErlDrvPort,
        key: Option<&mut u32>,
        job: AsyncJob,
    ) -> Result<c_long, AsyncJob> {
        let Some(port) = port::owned(handle) else {
            return Err(job);
        };
        let Some(runtime) = port.runtime.upgrade() else {
            return Err(job);
        };
        let Some(pool) = runtime.async_pool.pool() else {
            return Err(job);
        };
        let key = key.map(|key| {
            let chosen = *key;
            // As the runtime does: the caller learns which queue its key stands for.
            *key = pool.queue_for_key(chosen);
            chosen
        });
        // Only while the runtime is being dropped can the pool reject the job: it is then
        // freed at once (async_free) and driver_async returns -1.
        let id = pool.submit(key, Job::new(job, port));
        Ok(c_long::try_from(id.get()).unwrap_or(-1))
    }

    fn async_cancel(&self, id: c_long) -> bool {
        // Ids are per pool: the pool is that of the runtime whose port is calling.
        let Some(runtime) = port::with_current_port(|port| port.runtime.upgrade()).flatten() else {
            return false;
        };
        let Some(pool) = runtime.async_pool.pool.get() else {
            return false;
        };
        // `long` is 32 bits on some targets.
        #[allow(clippy::useless_conversion)]
        let id = JobId::from_raw(i64::from(id));
        // Dropping the withdrawn job calls its `async_free`.
        pool.cancel(id).is_some()
    }
}
