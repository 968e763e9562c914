//! Hot paths of the async pool: submit, submit → completed latency, cancel, inline mode.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use drv_async::{AsyncHandler, AsyncPool, JobId};

/// Counts completions; a job of `u64::MAX` parks its worker until [`Counting::release`].
#[derive(Default)]
struct Counting {
    completed: AtomicU64,
    released: AtomicBool,
    parked_worker: Mutex<Option<Thread>>,
}

impl Counting {
    fn release(&self) {
        self.released.store(true, Ordering::Release);
        if let Some(worker) = self.parked_worker.lock().expect("not poisoned").take() {
            worker.unpark();
        }
    }
}

struct Handler(Arc<Counting>);

impl AsyncHandler<u64> for Handler {
    fn invoke(&self, job: &mut u64) {
        if *job == u64::MAX {
            // Parked, not spinning, so the blocked worker costs the measured thread no CPU.
            *self.0.parked_worker.lock().expect("not poisoned") = Some(thread::current());
            while !self.0.released.load(Ordering::Acquire) {
                thread::park();
            }
        }
        black_box(job);
    }
    fn completed(&self, _job: u64) {
        self.0.completed.fetch_add(1, Ordering::Release);
    }
}

fn start_pool(threads: usize) -> (AsyncPool<u64, Handler>, Arc<Counting>) {
    let counting = Arc::new(Counting::default());
    let pool = AsyncPool::new(threads, Handler(Arc::clone(&counting))).expect("pool starts");
    (pool, counting)
}

fn submit(c: &mut Criterion) {
    let (pool, _) = start_pool(1);
    c.bench_function("submit no-op, 1 thread draining", |b| {
        b.iter(|| pool.submit(None, black_box(1)))
    });
    // Dropping discards the backlog, so it cannot keep a worker busy during later benches.
    drop(pool);
    let (pool, _) = start_pool(2);
    c.bench_function("submit round-robin no-op, 2 threads draining", |b| {
        b.iter(|| pool.submit(None, black_box(1)))
    });
    drop(pool);
    let (pool, _) = start_pool(2);
    c.bench_function("submit keyed no-op, 2 threads draining", |b| {
        b.iter(|| pool.submit(Some(black_box(7)), black_box(1)))
    });
    drop(pool);
    let (pool, _) = start_pool(0);
    c.bench_function("submit inline (0 threads)", |b| {
        b.iter(|| pool.submit(None, black_box(1)))
    });
}

fn latency(c: &mut Criterion) {
    let (pool, counting) = start_pool(1);
    c.bench_function("submit -> completed round trip, 1 thread", |b| {
        b.iter(|| {
            let before = counting.completed.load(Ordering::Acquire);
            pool.submit(None, black_box(1));
            while counting.completed.load(Ordering::Acquire) == before {
                std::hint::spin_loop();
            }
        })
    });
}

/// Sums how long each job took from `submit` (its payload) to the start of `completed`.
#[derive(Default)]
struct OneWay {
    completed: AtomicU64,
    total_nanos: AtomicU64,
}

struct OneWayHandler(Arc<OneWay>);

impl AsyncHandler<Instant> for OneWayHandler {
    fn invoke(&self, job: &mut Instant) {
        black_box(job);
    }
    fn completed(&self, submitted: Instant) {
        let nanos = submitted.elapsed().as_nanos() as u64;
        self.0.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.0.completed.fetch_add(1, Ordering::Release);
    }
}

fn one_way_latency(c: &mut Criterion) {
    let one_way = Arc::new(OneWay::default());
    let pool = AsyncPool::new(1, OneWayHandler(Arc::clone(&one_way))).expect("pool starts");
    c.bench_function("submit -> completed one-way latency, 1 thread", |b| {
        b.iter_custom(|iterations| {
            one_way.total_nanos.store(0, Ordering::Relaxed);
            for _ in 0..iterations {
                let before = one_way.completed.load(Ordering::Acquire);
                pool.submit(None, Instant::now());
                // Wait so each job meets an idle (spinning) worker rather than a backlog.
                while one_way.completed.load(Ordering::Acquire) == before {
                    std::hint::spin_loop();
                }
            }
            Duration::from_nanos(one_way.total_nanos.load(Ordering::Relaxed))
        })
    });
}

fn cancel(c: &mut Criterion) {
    let (pool, counting) = start_pool(1);
    // Park the worker so submitted jobs stay queued; 64 jobs keep the queue non-trivial.
    pool.submit(None, u64::MAX);
    let backlog: Vec<JobId> = (0..64).map(|n| pool.submit(None, n)).collect();
    c.bench_function("submit + cancel, queue of 64", |b| {
        b.iter(|| {
            let id = pool.submit(None, black_box(1));
            pool.cancel(id).expect("worker is parked")
        })
    });
    c.bench_function("cancel miss (unknown id)", |b| {
        b.iter(|| pool.cancel(black_box(JobId::from_raw(1 << 40))))
    });
    assert!(pool.cancel(backlog[10]).is_some());
    counting.release();
}

criterion_group!(benches, submit, latency, one_way_latency, cancel);
criterion_main!(benches);
