//! Model-checked async pool: a worker's queue, its parking, cancel and shutdown.
//!
//! Built only with `--cfg loom` (`cargo xtask loom`): the pool's mutexes, condition variables,
//! atomics and threads are then loom's (`src/sync.rs`), so loom runs these models under every
//! interleaving of the production code. A worker left parked with a job queued shows as a loom
//! deadlock (every thread blocked) or as a model that never finishes its wait.
#![cfg(loom)]

use std::sync::Arc;

use drv_async::{AsyncHandler, AsyncPool, JobId};
use loom::sync::atomic::{AtomicUsize, Ordering};

/// A job that counts how it ended; dropping it uncounted (lost) or counting it twice fails.
struct Job {
    ends: Arc<Ends>,
}

#[derive(Default)]
struct Ends {
    invoked: AtomicUsize,
    completed: AtomicUsize,
    discarded: AtomicUsize,
}

impl Ends {
    fn total(&self) -> usize {
        self.completed.load(Ordering::Acquire) + self.discarded.load(Ordering::Acquire)
    }
}

struct Counting;

impl AsyncHandler<Job> for Counting {
    fn invoke(&self, job: &mut Job) {
        job.ends.invoked.fetch_add(1, Ordering::AcqRel);
    }

    fn completed(&self, job: Job) {
        job.ends.completed.fetch_add(1, Ordering::AcqRel);
    }

    fn discarded(&self, job: Job) {
        job.ends.discarded.fetch_add(1, Ordering::AcqRel);
    }
}

fn job(ends: &Arc<Ends>) -> Job {
    Job {
        ends: Arc::clone(ends),
    }
}

/// Property: no lost wake-up: a job submitted while the worker is looking, spinning or about
/// to park is always run (the submitter waits for it without a deadline).
#[test]
fn a_submitted_job_always_wakes_the_worker() {
    loom::model(|| {
        let ends = Arc::new(Ends::default());
        let pool = AsyncPool::new(1, Counting).expect("pool");
        let id = pool.submit(None, job(&ends));
        assert!(id.is_queued(), "{id:?}");
        while ends.completed.load(Ordering::Acquire) == 0 {
            loom::thread::yield_now();
        }
        pool.shutdown();
        assert_eq!(ends.invoked.load(Ordering::Acquire), 1);
        assert_eq!(ends.total(), 1, "ended exactly once");
    });
}

/// Property: a cancel racing the worker either takes the job back before it starts (then it
/// is never invoked, and the caller owns it) or finds it started (then it completes); the job
/// ends exactly once either way, and a second cancel finds nothing.
#[test]
fn a_cancelled_job_never_runs_and_ends_once() {
    loom::model(|| {
        let ends = Arc::new(Ends::default());
        let pool = AsyncPool::new(1, Counting).expect("pool");
        let id = pool.submit(None, job(&ends));
        let cancelled = pool.cancel(id);
        assert!(pool.cancel(id).is_none(), "a job is cancelled once");
        pool.shutdown();
        match cancelled {
            Some(job) => {
                assert_eq!(
                    ends.invoked.load(Ordering::Acquire),
                    0,
                    "cancelled, yet ran"
                );
                assert_eq!(ends.total(), 0);
                drop(job);
            }
            None => {
                assert_eq!(ends.invoked.load(Ordering::Acquire), 1);
                assert_eq!(ends.total(), 1, "ended exactly once");
            }
        }
    });
}

/// Property: a shutdown racing a submit from another thread ends every job exactly once: run
/// and completed, discarded from the queue at shutdown, or rejected (discarded at once).
#[test]
fn a_submit_racing_shutdown_ends_its_job_once() {
    loom::model(|| {
        let ends = Arc::new(Ends::default());
        let pool = Arc::new(AsyncPool::new(1, Counting).expect("pool"));
        let submitter = {
            let (pool, ends) = (Arc::clone(&pool), Arc::clone(&ends));
            loom::thread::spawn(move || pool.submit(Some(3), job(&ends)))
        };
        pool.shutdown();
        let id = submitter.join().expect("submitter thread");
        assert_eq!(ends.total(), 1, "ended exactly once (id {id:?})");
        if id == JobId::REJECTED {
            assert_eq!(ends.discarded.load(Ordering::Acquire), 1);
        }
    });
}
