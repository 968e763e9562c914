//! A timer thread driving a [`TimerWheel`] and delivering expired values to a
//! callback.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::wheel::{TimerKey, TimerWheel};

const NANOS_PER_MS: u128 = 1_000_000;

/// What the timer thread is doing, so `set` wakes it only when needed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ThreadState {
    /// Running (advancing or delivering): it looks at the wheel again before sleeping.
    Awake,
    /// Sleeping until this service time (ms), or forever for `u64::MAX`.
    SleepingUntil(u64),
}

struct State<T> {
    wheel: TimerWheel<T>,
    thread: ThreadState,
    shutdown: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    wakeup: Condvar,
    /// Service time 0: all deadlines are milliseconds after this instant.
    origin: Instant,
}

impl<T> Shared<T> {
    fn elapsed_ns(&self) -> u128 {
        self.origin.elapsed().as_nanos()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.elapsed_ns() / NANOS_PER_MS).unwrap_or(u64::MAX)
    }
}

/// A background thread that delivers each expired timer's value to a callback.
///
/// Deadlines are milliseconds of service time ([`TimerService::now_ms`], 0 at
/// creation). A timer never fires early: `set(d, v)` fires once at least `d` ms
/// of real time have passed, normally within about a millisecond after. The
/// callback runs on the timer thread, outside the wheel lock, so it may call
/// `set`/`cancel` itself; values expiring together are delivered in deadline
/// order. A panicking callback is caught and the service carries on.
///
/// `cancel` returning `None` means the timer already fired: its value is being
/// (or has been) delivered. Callers that need "cancelled means never
/// delivered" must check for that in the callback (e.g. a sequence number in `T`).
///
/// Dropping the service stops and joins the thread (waiting for a callback in
/// progress); pending timers are dropped without firing.
///
/// ```
/// use std::sync::mpsc;
/// use drv_timer::TimerService;
///
/// let (sender, receiver) = mpsc::channel();
/// let sender = std::sync::Mutex::new(sender);
/// let service = TimerService::new(move |port: u32| {
///     sender.lock().expect("sender").send(port).expect("receiver alive");
/// });
/// let cancelled = service.set(10, 1);
/// service.set(0, 2);
/// assert_eq!(service.cancel(cancelled), Some(1));
/// assert_eq!(receiver.recv().expect("timer fired"), 2);
/// ```
pub struct TimerService<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> fmt::Debug for TimerService<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerService")
            .field("now_ms", &self.now_ms())
            .field("pending", &self.len())
            .finish()
    }
}

impl<T: Send + 'static> TimerService<T> {
    /// Starts the timer thread; `callback` receives each expired value.
    pub fn new<F>(callback: F) -> Self
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wheel: TimerWheel::new(0),
                thread: ThreadState::Awake,
                shutdown: false,
            }),
            wakeup: Condvar::new(),
            origin: Instant::now(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("drv-timer".into())
            .spawn(move || run(&thread_shared, &callback))
            .expect("spawning the timer thread");
        TimerService {
            shared,
            thread: Some(thread),
        }
    }

    /// Current service time in milliseconds (0 at creation, floor).
    pub fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    /// Arms a timer firing `delay_ms` milliseconds from now. A 0 ms timer fires
    /// promptly on the timer thread, never inside `set`.
    pub fn set(&self, delay_ms: u64, value: T) -> TimerKey {
        let deadline = self.deadline_after(delay_ms);
        self.set_at(deadline, value)
    }

    /// Arms a timer firing once service time reaches `deadline_ms`
    /// (a past deadline fires promptly).
    pub fn set_at(&self, deadline_ms: u64, value: T) -> TimerKey {
        let mut state = self.shared.state.lock();
        let key = state.wheel.insert(deadline_ms, value);
        self.wake_if_sleeping_past(&mut state, deadline_ms);
        key
    }

    /// Moves a pending timer to fire `delay_ms` from now, keeping its key.
    /// Returns `false` if the timer already fired or was cancelled.
    pub fn reschedule(&self, key: TimerKey, delay_ms: u64) -> bool {
        let deadline = self.deadline_after(delay_ms);
        let mut state = self.shared.state.lock();
        let moved = state.wheel.reschedule(key, deadline);
        if moved {
            self.wake_if_sleeping_past(&mut state, deadline);
        }
        moved
    }

    /// Disarms a pending timer and returns its value; `None` if it already
    /// fired (or is being delivered) or was cancelled.
    pub fn cancel(&self, key: TimerKey) -> Option<T> {
        // A sleeping thread is not woken: at worst it wakes for nothing.
        self.shared.state.lock().wheel.cancel(key)
    }

    /// Whole milliseconds left before a pending timer fires (floor, so never
    /// more than the delay it was set with); `None` if not pending.
    pub fn time_left(&self, key: TimerKey) -> Option<u64> {
        let deadline = self.shared.state.lock().wheel.deadline(key)?;
        let remaining_ns =
            (u128::from(deadline) * NANOS_PER_MS).saturating_sub(self.shared.elapsed_ns());
        Some(u64::try_from(remaining_ns / NANOS_PER_MS).unwrap_or(u64::MAX))
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.shared.state.lock().wheel.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// First service millisecond at which `delay_ms` of real time will have
    /// passed from now (ceiling, so the timer never fires early).
    fn deadline_after(&self, delay_ms: u64) -> u64 {
        let target_ns = self.shared.elapsed_ns() + u128::from(delay_ms) * NANOS_PER_MS;
        u64::try_from(target_ns.div_ceil(NANOS_PER_MS)).unwrap_or(u64::MAX)
    }

    fn wake_if_sleeping_past(&self, state: &mut State<T>, deadline_ms: u64) {
        if let ThreadState::SleepingUntil(wake_at) = state.thread {
            if deadline_ms < wake_at {
                // Awake from now on, so further inserts do not notify again.
                state.thread = ThreadState::Awake;
                self.shared.wakeup.notify_one();
            }
        }
    }
}

impl<T: Send + 'static> Drop for TimerService<T> {
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.wakeup.notify_one();
        if let Some(thread) = self.thread.take() {
            // Dropped from its own callback: the thread exits after the callback returns.
            if thread.thread().id() != thread::current().id() {
                // A panic can only come from the thread's own code; nothing to propagate in drop.
                let _ = thread.join();
            }
        }
    }
}

/// The timer thread: advance, deliver outside the lock, sleep until the next wakeup.
fn run<T, F: Fn(T)>(shared: &Shared<T>, callback: &F) {
    let mut expired = Vec::new();
    let mut state = shared.state.lock();
    loop {
        if state.shutdown {
            break;
        }
        let now = shared.now_ms();
        state.wheel.advance(now, |_, value| expired.push(value));
        if !expired.is_empty() {
            MutexGuard::unlocked(&mut state, || deliver(&mut expired, callback));
            continue;
        }
        match state.wheel.next_wakeup() {
            Some(wake_at) if wake_at <= now => continue,
            Some(wake_at) => {
                state.thread = ThreadState::SleepingUntil(wake_at);
                let duration = Duration::from_millis(wake_at);
                match shared.origin.checked_add(duration) {
                    Some(instant) => {
                        shared.wakeup.wait_until(&mut state, instant);
                    }
                    None => shared.wakeup.wait(&mut state),
                }
            }
            None => {
                state.thread = ThreadState::SleepingUntil(u64::MAX);
                shared.wakeup.wait(&mut state);
            }
        }
        state.thread = ThreadState::Awake;
    }
}

fn deliver<T, F: Fn(T)>(expired: &mut Vec<T>, callback: &F) {
    for value in expired.drain(..) {
        // Keep the service alive if one callback panics (the panic hook has reported it).
        let _ = panic::catch_unwind(AssertUnwindSafe(|| callback(value)));
    }
}
