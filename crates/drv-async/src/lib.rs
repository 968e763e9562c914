//! The async thread pool behind `driver_async`.
//!
//! A driver calls `driver_async(port, key, async_invoke, data, async_free)` to run blocking work
//! off the emulator thread; afterwards the runtime calls the driver's `ready_async` in the port's
//! context (or `async_free` if the port is gone). This crate is the pool part of that, generic
//! over the job payload so it can be used without any C driver:
//!
//! * [`AsyncPool::new`] starts `threads` worker threads, each with its **own queue**.
//! * [`AsyncPool::submit`] queues a job. With a key, the queue is `key % threads` (BEAM's choice),
//!   so jobs sharing a key run one at a time in submission order; without a key, jobs are spread
//!   round-robin. It returns a [`JobId`] whose [`JobId::get`] is exactly what `driver_async`
//!   returns: positive when queued, `0` when run inline, `-1` when rejected.
//! * A worker runs [`AsyncHandler::invoke`] and then [`AsyncHandler::completed`] on its thread
//!   (the runtime's `completed` routes the job to the port's context for `ready_async`).
//! * [`AsyncPool::cancel`] takes back a job that has not started (`driver_async_cancel`); it
//!   races safely against the worker: exactly one of them gets the job.
//! * [`AsyncPool::shutdown`] (also run on drop) stops the threads and hands every still-queued
//!   job to [`AsyncHandler::discarded`], so each job ends exactly once: completed, cancelled or
//!   discarded.
//! * With `threads == 0` there is no pool: `submit` runs `invoke` then `completed` at once in the
//!   caller, like BEAM started without `+A`.
//!
//! ```
//! use drv_async::{AsyncHandler, AsyncPool};
//! use std::sync::mpsc;
//!
//! /// Squares numbers on a pool thread and reports the results.
//! struct Square(mpsc::Sender<u64>);
//! impl AsyncHandler<u64> for Square {
//!     fn invoke(&self, job: &mut u64) {
//!         *job *= *job;
//!     }
//!     fn completed(&self, job: u64) {
//!         self.0.send(job).expect("receiver alive");
//!     }
//! }
//!
//! let (tx, rx) = mpsc::channel();
//! let pool = AsyncPool::new(2, Square(tx)).expect("threads start");
//! let key = 7; // one key: one thread, submission order kept
//! let ids: Vec<_> = (1..=4).map(|n| pool.submit(Some(key), n)).collect();
//! assert!(ids.iter().all(|id| id.get() > 0));
//! let results: Vec<u64> = rx.iter().take(4).collect();
//! assert_eq!(results, [1, 4, 9, 16]);
//! pool.shutdown();
//! ```

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::thread::{self, JoinHandle};
use crate::sync::{AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};

mod sync;

/// Largest pool BEAM accepts (`+A 1024`, `ERTS_MAX_NO_OF_ASYNC_THREADS`).
pub const MAX_THREADS: usize = 1024;

/// How long an idle worker polls its queue before parking. Spinning briefly keeps the
/// submit → completed latency at cache-transfer cost when jobs arrive back to back (a futex
/// wake-up costs tens of µs); parking afterwards keeps an idle pool off the CPU. Bounded by
/// time, not rounds, because `spin_loop`'s cost varies tenfold between CPUs.
const SPIN_BUDGET: Duration = Duration::from_micros(50);
/// `spin_loop` rounds between clock reads while spinning (a clock read costs ~30 ns).
const SPIN_ROUNDS_PER_CLOCK_READ: u32 = 64;

/// The handle `driver_async` returns for a job; [`AsyncPool::cancel`] takes it back.
///
/// Queued jobs get a positive id unique within their pool. The two special values mirror
/// `driver_async`'s other return values, so a C shim can return [`JobId::get`] unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(i64);

impl JobId {
    /// The job already ran in the caller (a pool of 0 threads); BEAM returns 0 then.
    pub const INLINE: JobId = JobId(0);
    /// The pool was shut down; the job went straight to [`AsyncHandler::discarded`].
    /// `driver_async` reports failure as -1.
    pub const REJECTED: JobId = JobId(-1);

    /// Rebuilds an id from the raw value a driver passed back (any value is accepted;
    /// ids this pool never issued simply cancel nothing).
    pub const fn from_raw(raw: i64) -> Self {
        JobId(raw)
    }

    /// The raw value, as `driver_async` returns it.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// True for an id of a job that was queued (as opposed to run inline or rejected).
    pub const fn is_queued(self) -> bool {
        self.0 > 0
    }
}

/// What a pool does with jobs. All methods may run on any thread, so the handler is shared.
pub trait AsyncHandler<J>: Send + Sync + 'static {
    /// The work itself (`async_invoke`); runs on a pool thread.
    fn invoke(&self, job: &mut J);

    /// Called on the same pool thread right after [`invoke`](Self::invoke); the runtime routes
    /// the job to its port for `ready_async` (or `async_free` if the port is gone).
    fn completed(&self, job: J);

    /// A job that never started because the pool shut down (or was already shut down when it
    /// was submitted); the runtime calls `async_free`. Runs on the thread calling
    /// [`AsyncPool::shutdown`] / drop, or on the submitter for a rejected job. Default: drop it.
    fn discarded(&self, job: J) {
        drop(job);
    }
}

/// One queued job; `seq` grows strictly within a queue, so the queue stays sorted by it.
struct Entry<J> {
    seq: u64,
    job: J,
}

struct QueueState<J> {
    jobs: VecDeque<Entry<J>>,
    next_seq: u64,
    worker_parked: bool,
    closed: bool,
}

/// The queue of one worker thread.
struct WorkQueue<J> {
    state: Mutex<QueueState<J>>,
    wake: Condvar,
    /// Mirror of `jobs.len()` (written under the lock) so a spinning worker and
    /// [`AsyncPool::queued`] can look without locking. Only a hint: decisions take the lock.
    queued: AtomicUsize,
}

impl<J> WorkQueue<J> {
    fn new() -> Self {
        WorkQueue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                next_seq: 0,
                worker_parked: false,
                closed: false,
            }),
            wake: Condvar::new(),
            queued: AtomicUsize::new(0),
        }
    }

    /// Pops the oldest job; the caller holds the lock.
    fn pop_locked(&self, state: &mut QueueState<J>) -> Option<J> {
        let entry = state.jobs.pop_front()?;
        self.queued.store(state.jobs.len(), Ordering::Relaxed);
        Some(entry.job)
    }

    /// Polls the lock-free length hint for up to [`SPIN_BUDGET`]; returns early once a job shows,
    /// or at once if enough other workers are already spinning.
    fn spin_until_queued(&self, spinners: &SpinLimit) {
        if !spinners.try_enter() {
            return;
        }
        self.spin_polling();
        spinners.leave();
    }

    fn spin_polling(&self) {
        // Under the model checker, spinning is left out: it only delays the worker's look under
        // the lock (the hint decides nothing), and a clock-bounded loop cannot be modelled.
        if cfg!(loom) {
            return;
        }
        let start = Instant::now();
        loop {
            for _ in 0..SPIN_ROUNDS_PER_CLOCK_READ {
                if self.queued.load(Ordering::Relaxed) != 0 {
                    return;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN_BUDGET {
                return;
            }
        }
    }

    /// Blocks until a job is available (`Some`) or the queue is closed and empty (`None`).
    fn take_next(&self, spinners: &SpinLimit) -> Option<J> {
        {
            let mut state = self.state.lock();
            if let Some(job) = self.pop_locked(&mut state) {
                return Some(job);
            }
            if state.closed {
                return None;
            }
        }
        self.spin_until_queued(spinners);
        let mut state = self.state.lock();
        loop {
            if let Some(job) = self.pop_locked(&mut state) {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            // Set under the lock, so a submitter that pushes after this sees it and notifies.
            state.worker_parked = true;
            self.wake.wait(&mut state);
            state.worker_parked = false;
        }
    }
}

/// Caps how many idle workers spin at once. Spinning only pays while a core is free for it:
/// with more spinners than spare cores they steal the CPU from the submitters they wait for
/// (measured: round-robin submits on 2 cores went from ~0.1 µs to ~2 µs).
struct SpinLimit {
    active: AtomicUsize,
    max: usize,
}

impl SpinLimit {
    /// Leaves one core for the submitting thread.
    fn for_this_machine(threads: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        SpinLimit {
            active: AtomicUsize::new(0),
            max: cores.saturating_sub(1).min(threads),
        }
    }

    fn try_enter(&self) -> bool {
        self.active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |active| {
                (active < self.max).then_some(active + 1)
            })
            .is_ok()
    }

    fn leave(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Shared<J, H> {
    queues: Box<[CachePadded<WorkQueue<J>>]>,
    spinners: CachePadded<SpinLimit>,
    handler: H,
}

impl<J: Send + 'static, H: AsyncHandler<J>> Shared<J, H> {
    fn worker_loop(&self, index: usize) {
        let queue = &self.queues[index];
        while let Some(mut job) = queue.take_next(&self.spinners) {
            // A panicking handler loses (drops) its job but must not take the queue's only
            // thread with it: later jobs on this queue would never run.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                self.handler.invoke(&mut job);
                self.handler.completed(job);
            }));
        }
    }
}

/// A pool of async threads with one FIFO queue per thread. See the [crate docs](crate).
pub struct AsyncPool<J: Send + 'static, H: AsyncHandler<J>> {
    shared: Arc<Shared<J, H>>,
    next_round_robin: CachePadded<AtomicUsize>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Only used by the inline (0-thread) mode; threaded queues track closing under their lock.
    inline_closed: AtomicBool,
}

impl<J: Send + 'static, H: AsyncHandler<J>> fmt::Debug for AsyncPool<J, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPool")
            .field("threads", &self.threads())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

impl<J: Send + 'static, H: AsyncHandler<J>> AsyncPool<J, H> {
    /// Starts a pool of `threads` workers (0 = run jobs inline in the submitter) with the
    /// platform's default thread stack size.
    ///
    /// Fails with `InvalidInput` above [`MAX_THREADS`], or if a thread cannot be spawned.
    pub fn new(threads: usize, handler: H) -> io::Result<Self> {
        Self::build(threads, None, handler)
    }

    /// Like [`new`](Self::new), with each worker's stack size in bytes (BEAM's `+a`).
    pub fn with_stack_size(threads: usize, stack_bytes: usize, handler: H) -> io::Result<Self> {
        Self::build(threads, Some(stack_bytes), handler)
    }

    fn build(threads: usize, stack_bytes: Option<usize>, handler: H) -> io::Result<Self> {
        if threads > MAX_THREADS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("async pool of {threads} threads exceeds the maximum of {MAX_THREADS}"),
            ));
        }
        let shared = Arc::new(Shared {
            queues: (0..threads)
                .map(|_| CachePadded::new(WorkQueue::new()))
                .collect(),
            spinners: CachePadded::new(SpinLimit::for_this_machine(threads)),
            handler,
        });
        let pool = AsyncPool {
            shared,
            next_round_robin: CachePadded::new(AtomicUsize::new(0)),
            workers: Mutex::new(Vec::with_capacity(threads)),
            inline_closed: AtomicBool::new(false),
        };
        for index in 0..threads {
            let mut builder = thread::Builder::new().name(format!("drv-async-{index}"));
            if let Some(bytes) = stack_bytes {
                builder = builder.stack_size(bytes);
            }
            let shared = Arc::clone(&pool.shared);
            // On failure `pool` drops here, which shuts down the threads already started.
            let handle = builder.spawn(move || shared.worker_loop(index))?;
            pool.workers.lock().push(handle);
        }
        Ok(pool)
    }

    /// The pool size (`driver_system_info`'s `async_threads`).
    pub fn threads(&self) -> usize {
        self.shared.queues.len()
    }

    /// The handler, shared with the worker threads.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// The queue (and thread) index a key maps to: `key % threads`, or 0 without threads.
    /// BEAM writes this back through `driver_async`'s key pointer.
    pub fn queue_for_key(&self, key: u32) -> u32 {
        match self.threads() {
            0 => 0,
            // `threads <= MAX_THREADS`, so the remainder fits in u32.
            threads => (key as usize % threads) as u32,
        }
    }

    /// Jobs queued and not yet started, over all queues (a snapshot).
    pub fn queued(&self) -> usize {
        self.shared
            .queues
            .iter()
            .map(|queue| queue.queued.load(Ordering::Relaxed))
            .sum()
    }

    /// Queues `job` (see the [crate docs](crate) for the choice of queue) and returns its id.
    ///
    /// Without threads, runs `invoke` and `completed` here and returns [`JobId::INLINE`].
    /// After [`shutdown`](Self::shutdown), hands the job to `discarded` and returns
    /// [`JobId::REJECTED`].
    pub fn submit(&self, key: Option<u32>, mut job: J) -> JobId {
        let threads = self.threads();
        if threads == 0 {
            let handler = &self.shared.handler;
            if self.inline_closed.load(Ordering::Acquire) {
                handler.discarded(job);
                return JobId::REJECTED;
            }
            handler.invoke(&mut job);
            handler.completed(job);
            return JobId::INLINE;
        }
        let index = match key {
            Some(key) => key as usize % threads,
            None => self.next_round_robin.fetch_add(1, Ordering::Relaxed) % threads,
        };
        let queue = &self.shared.queues[index];
        let mut state = queue.state.lock();
        if state.closed {
            drop(state);
            self.shared.handler.discarded(job);
            return JobId::REJECTED;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.jobs.push_back(Entry { seq, job });
        queue.queued.store(state.jobs.len(), Ordering::Relaxed);
        let parked = state.worker_parked;
        drop(state);
        if parked {
            queue.wake.notify_one();
        }
        encode_id(seq, index, threads)
    }

    /// Takes back a job that has not started yet (`driver_async_cancel` returning 1).
    ///
    /// Returns `None` (0) if the job is running or done, was already cancelled, or `id` is not
    /// one this pool issued. Costs a lock of the job's own queue and a binary search in it.
    pub fn cancel(&self, id: JobId) -> Option<J> {
        let (index, seq) = decode_id(id, self.threads())?;
        let queue = &self.shared.queues[index];
        let mut state = queue.state.lock();
        let position = state
            .jobs
            .binary_search_by_key(&seq, |entry| entry.seq)
            .ok()?;
        let entry = state.jobs.remove(position)?;
        queue.queued.store(state.jobs.len(), Ordering::Relaxed);
        Some(entry.job)
    }

    /// Stops the pool: queued jobs go to [`AsyncHandler::discarded`] (after the running ones
    /// finished and were `completed`), worker threads are joined, and later submits are
    /// rejected. Idempotent; also run on drop. May be called from a handler on a pool thread
    /// (that thread is then not joined, it exits when its handler returns).
    pub fn shutdown(&self) {
        self.inline_closed.store(true, Ordering::Release);
        let mut leftovers = Vec::new();
        for queue in self.shared.queues.iter() {
            let mut state = queue.state.lock();
            state.closed = true;
            leftovers.extend(state.jobs.drain(..).map(|entry| entry.job));
            queue.queued.store(0, Ordering::Relaxed);
            drop(state);
            queue.wake.notify_all();
        }
        let workers = std::mem::take(&mut *self.workers.lock());
        let current = thread::current().id();
        for worker in workers {
            if worker.thread().id() != current {
                // Workers catch handler panics, so a join error is not expected; either way the
                // thread is gone and there is nothing left to recover.
                let _ = worker.join();
            }
        }
        for job in leftovers {
            self.shared.handler.discarded(job);
        }
    }
}

impl<J: Send + 'static, H: AsyncHandler<J>> Drop for AsyncPool<J, H> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Packs a queue index and that queue's sequence number into a positive id:
/// `seq * threads + index + 1`. Unique per pool until a queue has issued about
/// 2^63 / threads ids, which no real pool reaches.
fn encode_id(seq: u64, index: usize, threads: usize) -> JobId {
    let raw = seq
        .wrapping_mul(threads as u64)
        .wrapping_add(index as u64 + 1);
    JobId((raw & i64::MAX as u64) as i64)
}

/// Inverse of [`encode_id`]; `None` for ids no pool of this size issues.
fn decode_id(id: JobId, threads: usize) -> Option<(usize, u64)> {
    if id.0 <= 0 || threads == 0 {
        return None;
    }
    let n = (id.0 - 1) as u64;
    Some(((n % threads as u64) as usize, n / threads as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_encoding() {
        fn check(seq: u64, index: usize, threads: usize, expected_raw: i64) {
            let id = encode_id(seq, index, threads);
            assert_eq!(id.get(), expected_raw, "encode({seq}, {index}, {threads})");
            assert!(id.is_queued());
            assert_eq!(decode_id(id, threads), Some((index, seq)));
        }
        check(0, 0, 1, 1);
        check(1, 0, 1, 2);
        check(0, 3, 4, 4);
        check(5, 2, 4, 23);
        check(7, 1023, 1024, 7 * 1024 + 1024);
    }

    #[test]
    fn spin_limit_admits_at_most_max_spinners() {
        fn check(max: usize, entries: usize, expected_admitted: usize) {
            let limit = SpinLimit {
                active: AtomicUsize::new(0),
                max,
            };
            let admitted = (0..entries).filter(|_| limit.try_enter()).count();
            assert_eq!(admitted, expected_admitted, "max {max}, {entries} tries");
            for _ in 0..admitted {
                limit.leave();
            }
            assert_eq!(limit.try_enter(), max > 0, "a slot frees up after leave");
        }
        check(0, 3, 0);
        check(1, 3, 1);
        check(3, 2, 2);
        check(3, 5, 3);
    }

    #[test]
    fn ids_outside_the_issued_range_decode_to_nothing() {
        fn check(raw: i64, threads: usize) {
            assert_eq!(
                decode_id(JobId::from_raw(raw), threads),
                None,
                "{raw}/{threads}"
            );
        }
        check(0, 4);
        check(-1, 4);
        check(i64::MIN, 4);
        check(5, 0);
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
