//! Behaviour of the async pool: ordering, spreading, cancel, shutdown and job accounting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use drv_async::{AsyncHandler, AsyncPool, JobId};
use parking_lot::Mutex;
use proptest::prelude::*;

/// Holds a job in `invoke` until opened, and tells when the job got there.
#[derive(Default)]
struct Gate {
    reached: AtomicBool,
    open: AtomicBool,
}

impl Gate {
    fn wait_reached(&self) {
        wait_until("gate reached", || self.reached.load(Ordering::Acquire));
    }
    fn open(&self) {
        self.open.store(true, Ordering::Release);
    }
}

/// A test job: a tag naming it, its key, an optional gate, and a drop counter to catch leaks
/// and double frees.
struct Job {
    tag: usize,
    key: Option<u32>,
    gate: Option<Arc<Gate>>,
    panics: bool,
    drops: Arc<AtomicUsize>,
}

impl Drop for Job {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where each job ended, as seen by the handler.
#[derive(Default)]
struct Ledger {
    /// (tag, key, worker thread name), in completion order.
    completed: Mutex<Vec<(usize, Option<u32>, String)>>,
    discarded: Mutex<Vec<usize>>,
    invoked: AtomicUsize,
}

impl Ledger {
    fn completed_tags(&self) -> Vec<usize> {
        self.completed.lock().iter().map(|c| c.0).collect()
    }
    fn discarded_tags(&self) -> Vec<usize> {
        self.discarded.lock().clone()
    }
}

struct Recorder(Arc<Ledger>);

impl AsyncHandler<Job> for Recorder {
    fn invoke(&self, job: &mut Job) {
        self.0.invoked.fetch_add(1, Ordering::Relaxed);
        if let Some(gate) = &job.gate {
            gate.reached.store(true, Ordering::Release);
            while !gate.open.load(Ordering::Acquire) {
                thread::yield_now();
            }
        }
        if job.panics {
            panic!("job {} panics on purpose", job.tag);
        }
    }
    fn completed(&self, job: Job) {
        let name = thread::current().name().unwrap_or("?").to_owned();
        self.0.completed.lock().push((job.tag, job.key, name));
    }
    fn discarded(&self, job: Job) {
        self.0.discarded.lock().push(job.tag);
    }
}

/// A pool plus everything needed to make and account for jobs.
struct Fixture {
    pool: AsyncPool<Job, Recorder>,
    ledger: Arc<Ledger>,
    drops: Arc<AtomicUsize>,
}

impl Fixture {
    fn new(threads: usize) -> Self {
        let ledger = Arc::new(Ledger::default());
        let pool = AsyncPool::new(threads, Recorder(Arc::clone(&ledger))).expect("pool starts");
        Fixture {
            pool,
            ledger,
            drops: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn job(&self, tag: usize, key: Option<u32>) -> Job {
        Job {
            tag,
            key,
            gate: None,
            panics: false,
            drops: Arc::clone(&self.drops),
        }
    }
    fn gated_job(&self, tag: usize, key: Option<u32>, gate: &Arc<Gate>) -> Job {
        let mut job = self.job(tag, key);
        job.gate = Some(Arc::clone(gate));
        job
    }
    fn submit(&self, tag: usize, key: Option<u32>) -> JobId {
        self.pool.submit(key, self.job(tag, key))
    }
    fn wait_completed(&self, count: usize) {
        wait_until("jobs completed", || {
            self.ledger.completed.lock().len() >= count
        });
    }
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        thread::sleep(Duration::from_micros(200));
    }
}

/// Small deterministic PRNG (xorshift64*), enough to shuffle test workloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn keyed_jobs_run_in_submission_order_on_their_keys_thread() {
    const THREADS: usize = 3;
    const SUBMITTERS: u32 = 3;
    const KEYS_PER_SUBMITTER: u32 = 12;
    const JOBS_PER_KEY: usize = 150;
    let fx = Arc::new(Fixture::new(THREADS));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let fx = Arc::clone(&fx);
            thread::spawn(move || {
                // Each submitter owns keys s, s+3, ...; it interleaves them job by job, and the
                // other submitters hit the same queues at the same time.
                let keys: Vec<u32> = (0..KEYS_PER_SUBMITTER)
                    .map(|k| k * SUBMITTERS + s)
                    .collect();
                for n in 0..JOBS_PER_KEY {
                    for &key in &keys {
                        let id = fx.submit(n, Some(key));
                        assert!(id.is_queued());
                    }
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    let total = (SUBMITTERS * KEYS_PER_SUBMITTER) as usize * JOBS_PER_KEY;
    fx.wait_completed(total);

    let mut per_key: HashMap<u32, Vec<usize>> = HashMap::new();
    for (tag, key, thread_name) in fx.ledger.completed.lock().iter() {
        let key = key.expect("all jobs keyed");
        assert_eq!(
            *thread_name,
            format!("drv-async-{}", key as usize % THREADS)
        );
        per_key.entry(key).or_default().push(*tag);
    }
    assert_eq!(per_key.len(), (SUBMITTERS * KEYS_PER_SUBMITTER) as usize);
    let in_order: Vec<usize> = (0..JOBS_PER_KEY).collect();
    for (key, tags) in per_key {
        assert_eq!(tags, in_order, "key {key}");
    }
}

#[test]
fn unkeyed_jobs_go_round_robin() {
    const THREADS: usize = 4;
    const JOBS: usize = 400;
    let fx = Fixture::new(THREADS);
    for tag in 0..JOBS {
        fx.submit(tag, None);
    }
    fx.wait_completed(JOBS);
    let mut per_thread: HashMap<String, usize> = HashMap::new();
    for (tag, _, thread_name) in fx.ledger.completed.lock().iter() {
        assert_eq!(*thread_name, format!("drv-async-{}", tag % THREADS));
        *per_thread.entry(thread_name.clone()).or_default() += 1;
    }
    assert_eq!(per_thread.len(), THREADS);
    assert!(per_thread.values().all(|&n| n == JOBS / THREADS));
}

#[test]
fn key_picks_key_modulo_threads() {
    fn check(threads: usize, key: u32, expected_queue: u32) {
        let fx = Fixture::new(threads);
        assert_eq!(
            fx.pool.queue_for_key(key),
            expected_queue,
            "{key} % {threads}"
        );
        if threads > 0 {
            fx.submit(0, Some(key));
            fx.wait_completed(1);
            let thread_name = fx.ledger.completed.lock()[0].2.clone();
            assert_eq!(thread_name, format!("drv-async-{expected_queue}"));
        }
    }
    check(0, 5, 0);
    check(1, 0, 0);
    check(1, u32::MAX, 0);
    check(3, 7, 1);
    check(4, 7, 3);
    check(4, u32::MAX, 3);
    check(5, 10, 0);
}

#[test]
fn cancel_takes_back_only_jobs_that_have_not_started() {
    let fx = Fixture::new(2);
    let gate = Arc::new(Gate::default());
    let running = fx.pool.submit(Some(0), fx.gated_job(0, Some(0), &gate));
    gate.wait_reached();
    let queued: Vec<JobId> = (1..=4).map(|tag| fx.submit(tag, Some(0))).collect();
    assert_eq!(fx.pool.queued(), 4);

    assert!(fx.pool.cancel(running).is_none(), "running job is too late");
    let cancelled = fx.pool.cancel(queued[2]).expect("queued job cancels");
    assert_eq!(cancelled.tag, 3);
    assert!(fx.pool.cancel(queued[2]).is_none(), "cancelled twice");
    for bogus in [0, -1, i64::MAX, queued[3].get() + 2] {
        assert!(fx.pool.cancel(JobId::from_raw(bogus)).is_none(), "{bogus}");
    }
    assert_eq!(fx.pool.queued(), 3);

    gate.open();
    fx.wait_completed(4);
    assert!(fx.pool.cancel(queued[0]).is_none(), "completed job");
    assert_eq!(fx.ledger.completed_tags(), [0, 1, 2, 4]);
    drop(cancelled);
    assert_eq!(fx.drops.load(Ordering::Relaxed), 5);
}

#[test]
fn ids_are_positive_and_unique() {
    let fx = Fixture::new(3);
    let mut ids: Vec<i64> = (0..300)
        .map(|tag| fx.submit(tag, (tag % 2 == 0).then_some(tag as u32)).get())
        .collect();
    assert!(ids.iter().all(|&id| id > 0));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 300);
}

/// Submitters and a separate canceller race against the workers; every job must end exactly
/// once, and a cancel must return exactly the job its id names.
#[test]
fn concurrent_submit_and_cancel_account_for_every_job() {
    const SUBMITTERS: usize = 3;
    const JOBS_PER_SUBMITTER: usize = 3000;
    let fx = Arc::new(Fixture::new(2));
    let cancelled_tags = Arc::new(Mutex::new(Vec::new()));
    let (to_canceller, canceller_inbox) = mpsc::channel::<(JobId, usize)>();

    let canceller = {
        let fx = Arc::clone(&fx);
        let cancelled_tags = Arc::clone(&cancelled_tags);
        thread::spawn(move || {
            for (id, tag) in canceller_inbox {
                if let Some(job) = fx.pool.cancel(id) {
                    assert_eq!(job.tag, tag, "cancel({id:?}) returned another job");
                    cancelled_tags.lock().push(job.tag);
                }
            }
        })
    };
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let fx = Arc::clone(&fx);
            let cancelled_tags = Arc::clone(&cancelled_tags);
            let to_canceller = to_canceller.clone();
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (s as u64 + 1));
                let mut mine = Vec::new();
                for n in 0..JOBS_PER_SUBMITTER {
                    let tag = s * JOBS_PER_SUBMITTER + n;
                    let key = (rng.below(3) != 0).then(|| rng.below(16) as u32);
                    let id = fx.submit(tag, key);
                    match rng.below(4) {
                        0 => to_canceller.send((id, tag)).unwrap(),
                        1 => mine.push((id, tag)),
                        _ => {}
                    }
                    // Cancel some of our own jobs later, some of them twice.
                    if rng.below(8) == 0 {
                        if let Some((id, tag)) = mine.pop() {
                            for _ in 0..2 {
                                if let Some(job) = fx.pool.cancel(id) {
                                    assert_eq!(job.tag, tag);
                                    cancelled_tags.lock().push(job.tag);
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    drop(to_canceller);
    for submitter in submitters {
        submitter.join().unwrap();
    }
    canceller.join().unwrap();
    let Fixture {
        pool,
        ledger,
        drops,
    } = Arc::into_inner(fx).expect("all helpers joined");
    drop(pool); // discards whatever is still queued

    let total = SUBMITTERS * JOBS_PER_SUBMITTER;
    let mut endings = vec![0u32; total];
    let completed = ledger.completed_tags();
    let cancelled = cancelled_tags.lock().clone();
    let discarded = ledger.discarded_tags();
    for &tag in completed.iter().chain(&cancelled).chain(&discarded) {
        endings[tag] += 1;
    }
    assert!(
        endings.iter().all(|&n| n == 1),
        "some job ended twice or never"
    );
    assert!(!cancelled.is_empty(), "the race never let a cancel win");
    assert_eq!(ledger.invoked.load(Ordering::Relaxed), completed.len());
    assert_eq!(drops.load(Ordering::Relaxed), total);
}

#[test]
fn shutdown_discards_queued_jobs_after_running_ones_complete() {
    let fx = Arc::new(Fixture::new(2));
    let gate = Arc::new(Gate::default());
    fx.pool.submit(Some(0), fx.gated_job(0, Some(0), &gate));
    gate.wait_reached();
    for tag in 1..=9 {
        fx.submit(tag, Some(tag as u32 % 2));
    }
    // Queue 1 may have run its jobs already; queue 0 is stuck behind the gate.
    wait_until("queue 1 drained", || fx.pool.queued() == 4);

    let stopper = {
        let fx = Arc::clone(&fx);
        thread::spawn(move || fx.pool.shutdown())
    };
    wait_until("shutdown took the queues", || fx.pool.queued() == 0);
    assert!(
        fx.ledger.discarded_tags().is_empty(),
        "discard waits for joins"
    );
    assert_eq!(fx.submit(10, Some(0)), JobId::REJECTED);
    gate.open();
    stopper.join().unwrap();

    let mut completed = fx.ledger.completed_tags();
    completed.sort_unstable();
    assert_eq!(completed, [0, 1, 3, 5, 7, 9]);
    assert_eq!(fx.ledger.discarded_tags(), [10, 2, 4, 6, 8]);
    fx.pool.shutdown(); // idempotent
    assert_eq!(fx.ledger.discarded_tags().len(), 5);
    assert_eq!(fx.drops.load(Ordering::Relaxed), 11);
}

#[test]
fn dropping_the_pool_ends_every_job_once() {
    let fx = Fixture::new(3);
    let gate = Arc::new(Gate::default());
    for queue in 0..3 {
        fx.pool.submit(
            Some(queue),
            fx.gated_job(queue as usize, Some(queue), &gate),
        );
    }
    for tag in 3..200 {
        fx.submit(tag, None);
    }
    let opener = {
        let gate = Arc::clone(&gate);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            gate.open();
        })
    };
    let Fixture {
        pool,
        ledger,
        drops,
    } = fx;
    drop(pool);
    opener.join().unwrap();
    let mut tags = ledger.completed_tags();
    tags.extend(ledger.discarded_tags());
    tags.sort_unstable();
    assert_eq!(tags, (0..200).collect::<Vec<_>>());
    assert_eq!(drops.load(Ordering::Relaxed), 200);
}

#[test]
fn without_threads_jobs_run_inline_in_the_caller() {
    let fx = Fixture::new(0);
    assert_eq!(fx.pool.threads(), 0);
    let caller = thread::current().name().unwrap_or("?").to_owned();
    for tag in 0..5 {
        let id = fx.submit(tag, (tag % 2 == 1).then_some(tag as u32));
        assert_eq!(id, JobId::INLINE);
        assert_eq!(id.get(), 0);
        assert_eq!(fx.ledger.completed_tags(), (0..=tag).collect::<Vec<_>>());
        assert!(fx.pool.cancel(id).is_none());
    }
    assert!(fx.ledger.completed.lock().iter().all(|c| c.2 == caller));
    fx.pool.shutdown();
    assert_eq!(fx.submit(5, None), JobId::REJECTED);
    assert_eq!(fx.ledger.discarded_tags(), [5]);
    assert_eq!(fx.drops.load(Ordering::Relaxed), 6);
}

#[test]
fn a_panicking_job_does_not_stop_its_queue() {
    let fx = Fixture::new(1);
    for tag in 0..4 {
        let mut job = fx.job(tag, Some(0));
        job.panics = tag == 1;
        fx.pool.submit(Some(0), job);
    }
    fx.wait_completed(3);
    assert_eq!(fx.ledger.completed_tags(), [0, 2, 3]);
    wait_until("all dropped", || fx.drops.load(Ordering::Relaxed) == 4);
}

#[test]
fn too_many_threads_is_an_error() {
    let err = AsyncPool::new(drv_async::MAX_THREADS + 1, Recorder(Arc::default()))
        .expect_err("over the limit");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// A handler that shuts its own pool down from a worker thread.
struct SelfStopping {
    pool: OnceLock<Weak<AsyncPool<Job, SelfStopping>>>,
    ledger: Arc<Ledger>,
}

impl AsyncHandler<Job> for SelfStopping {
    fn invoke(&self, job: &mut Job) {
        Recorder(Arc::clone(&self.ledger)).invoke(job);
    }
    fn completed(&self, job: Job) {
        let stop = job.tag == 0;
        Recorder(Arc::clone(&self.ledger)).completed(job);
        if stop {
            if let Some(pool) = self.pool.get().and_then(Weak::upgrade) {
                pool.shutdown();
            }
        }
    }
    fn discarded(&self, job: Job) {
        Recorder(Arc::clone(&self.ledger)).discarded(job);
    }
}

#[test]
fn shutdown_from_a_handler_on_a_pool_thread_does_not_deadlock() {
    let ledger = Arc::new(Ledger::default());
    let handler = SelfStopping {
        pool: OnceLock::new(),
        ledger: Arc::clone(&ledger),
    };
    let pool = Arc::new(AsyncPool::new(2, handler).expect("pool starts"));
    pool.handler()
        .pool
        .set(Arc::downgrade(&pool))
        .unwrap_or_else(|_| unreachable!());
    let drops = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    let job = |tag, gate: Option<&Arc<Gate>>| Job {
        tag,
        key: Some(0),
        gate: gate.cloned(),
        panics: false,
        drops: Arc::clone(&drops),
    };
    pool.submit(Some(0), job(0, Some(&gate)));
    gate.wait_reached();
    for tag in 1..4 {
        pool.submit(Some(0), job(tag, None));
    }
    gate.open();
    wait_until("self shutdown", || ledger.discarded_tags().len() == 3);
    assert_eq!(ledger.completed_tags(), [0]);
    assert_eq!(ledger.discarded_tags(), [1, 2, 3]);
    assert_eq!(pool.submit(Some(1), job(4, None)), JobId::REJECTED);
    drop(pool);
    wait_until("all dropped", || drops.load(Ordering::Relaxed) == 5);
}

#[derive(Clone, Debug)]
enum Op {
    Submit(Option<u8>),
    /// Cancel the job submitted this many submissions ago (modulo how many there are).
    Cancel(usize),
    Pause,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::option::of(0u8..8).prop_map(Op::Submit),
        3 => (0usize..16).prop_map(Op::Cancel),
        1 => Just(Op::Pause),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any mix of submits and cancels on any pool size: each job ends exactly once
    /// (completed, cancelled, or discarded at drop), cancels return the named job, and
    /// every job is dropped exactly once.
    #[test]
    fn every_job_ends_exactly_once(threads in 0usize..4, ops in proptest::collection::vec(op(), 1..120)) {
        let fx = Fixture::new(threads);
        let mut submitted: Vec<(JobId, usize)> = Vec::new();
        let mut cancelled = Vec::new();
        for op in ops {
            match op {
                Op::Submit(key) => {
                    let tag = submitted.len();
                    let id = fx.submit(tag, key.map(u32::from));
                    prop_assert_eq!(id.is_queued(), threads > 0);
                    submitted.push((id, tag));
                }
                Op::Cancel(back) if !submitted.is_empty() => {
                    let (id, tag) = submitted[submitted.len() - 1 - back % submitted.len()];
                    if let Some(job) = fx.pool.cancel(id) {
                        prop_assert_eq!(job.tag, tag);
                        cancelled.push(job.tag);
                    }
                }
                Op::Cancel(_) => {}
                Op::Pause => thread::sleep(Duration::from_micros(50)),
            }
        }
        let Fixture { pool, ledger, drops } = fx;
        drop(pool);
        let mut endings = vec![0u32; submitted.len()];
        let completed = ledger.completed_tags();
        for &tag in completed.iter().chain(&cancelled).chain(&ledger.discarded_tags()) {
            endings[tag] += 1;
        }
        prop_assert!(endings.iter().all(|&n| n == 1), "endings {:?}", endings);
        if threads == 0 {
            prop_assert!(cancelled.is_empty());
            prop_assert_eq!(completed.len(), submitted.len());
        }
        prop_assert_eq!(drops.load(Ordering::Relaxed), submitted.len());
    }
}

#[test]
fn custom_stack_size_pool_runs_jobs() {
    let ledger = Arc::new(Ledger::default());
    let pool = AsyncPool::with_stack_size(2, 256 * 1024, Recorder(Arc::clone(&ledger)))
        .expect("pool starts");
    assert_eq!(pool.threads(), 2);
    let drops = Arc::new(AtomicUsize::new(0));
    for tag in 0..4 {
        let job = Job {
            tag,
            key: None,
            gate: None,
            panics: false,
            drops: Arc::clone(&drops),
        };
        assert!(pool.submit(None, job).is_queued());
    }
    wait_until("jobs completed", || ledger.completed_tags().len() == 4);
    drop(pool);
    assert!(ledger.discarded_tags().is_empty());
    assert_eq!(drops.load(Ordering::Relaxed), 4);
}
