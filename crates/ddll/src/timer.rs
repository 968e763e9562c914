//! Port timers (`driver_set_timer`, `driver_cancel_timer`, `driver_read_timer`).
//!
//! Each port has one timer, kept in the port itself as its due time (an atomic: setting,
//! cancelling and reading it takes no lock). The runtime's timer thread drives a
//! [`TimerWheel`] that holds at most one entry per port, due no later than the port's timer.
//! When an entry expires, the thread takes the port's callback lock (the serialised callback
//! path, so `timeout` never runs concurrently with another callback of the port, nor for a
//! closed port) and looks at the port's timer *then*: due → `timeout` runs; later (the timer
//! was replaced by a later one) → the entry goes back in the wheel; cancelled → nothing. Since
//! the driver's own calls also run under that lock, cancelling or replacing a timer whose
//! entry is just expiring can never let the old timeout through.
//!
//! A wheel entry keeps its port's driver loaded ([`InFlight`](crate::in_flight::InFlight));
//! closing a port removes its entry.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use drv_abi::types::ErlDrvPort;
use drv_timer::clock::{caller_now_ns, now_ns, origin};
use drv_timer::{TimerKey, TimerWheel};
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::host::GlobalHost;
use crate::in_flight::InFlightPort;
use crate::port::{self, PortCell};
use crate::runtime::{Runtime, Settle};

const NANOS_PER_MS: u64 = 1_000_000;
/// `PortTimer::due_ns` of a port without a timer.
const NOT_ARMED: u64 = u64::MAX;
/// `PortTimer::entry_ms` of a port without a wheel entry.
const NO_ENTRY: u64 = u64::MAX;

/// The port's timer, allocated (with the port's extras) if it was not yet.
fn timer_of(port: &PortCell) -> &PortTimer {
    &port.extras().timer
}

/// The port's timer if the port has its extras: a port without them never set a timer.
fn timer_if_any(port: &PortCell) -> Option<&PortTimer> {
    port.extras_if_any().map(|extras| &extras.timer)
}

/// Per-port state for this capability: in the port's extras, allocated by the port's first
/// `driver_set_timer` (most ports never set one).
#[derive(Debug)]
pub(crate) struct PortTimer {
    /// When the driver's timer is due (ns of `drv_timer::clock`), or [`NOT_ARMED`]. Changed by the
    /// driver's calls and by the timer thread, all under the port's callback lock.
    due_ns: AtomicU64,
    /// The wheel deadline (ms) of this port's wheel entry, or [`NO_ENTRY`]. Changed under the
    /// wheel lock; read without it to skip the wheel when an entry already covers a timer.
    entry_ms: AtomicU64,
    /// The entry's wheel key ([`TimerKey::to_bits`]); meaningful while `entry_ms` is set.
    entry_key: AtomicU64,
}

impl Default for PortTimer {
    fn default() -> Self {
        PortTimer {
            due_ns: AtomicU64::new(NOT_ARMED),
            entry_ms: AtomicU64::new(NO_ENTRY),
            entry_key: AtomicU64::new(0),
        }
    }
}

impl PortTimer {
    /// `driver_set_timer` on `port`.
    fn set(&self, port: &PortCell, time_ms: u64) {
        // A 0 ms timer is due at once (time 0): it expires on the timer thread's next turn.
        // One beyond the clock's range (centuries) stays armed, just never due.
        let due = match time_ms {
            0 => 0,
            _ => caller_now_ns()
                .saturating_add(time_ms.saturating_mul(NANOS_PER_MS))
                .min(NOT_ARMED - 1),
        };
        self.due_ns.store(due, Ordering::Release);
        // The wheel never expires an entry before its timer is due.
        let due_ms = due.div_ceil(NANOS_PER_MS);
        if due_ms < self.entry_ms.load(Ordering::Acquire) {
            // No entry, or one due after this timer: the wheel must know.
            if let Some(runtime) = port.runtime.upgrade() {
                runtime.timers.arm(port, due_ms);
            }
        }
    }

    fn cancel(&self) {
        self.due_ns.store(NOT_ARMED, Ordering::Release);
    }

    /// Milliseconds left (floor, so never more than was set), 0 without a timer.
    fn read(&self) -> u64 {
        match self.due_ns.load(Ordering::Acquire) {
            NOT_ARMED => 0,
            due => due.saturating_sub(caller_now_ns()) / NANOS_PER_MS,
        }
    }

    fn forget_entry(&self) {
        self.entry_ms.store(NO_ENTRY, Ordering::Release);
    }
}

/// A wheel entry: the port, and one unit of work in flight for its driver.
struct Entry {
    port: InFlightPort,
}

impl Entry {
    fn new(port: Arc<PortCell>) -> Entry {
        Entry {
            port: InFlightPort::new(port),
        }
    }
}

/// What the timer thread is doing, so that arming wakes it only when needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ThreadState {
    /// Not started yet.
    Idle,
    /// Running: it looks at the wheel again before sleeping.
    Awake,
    /// Sleeping until this wheel time (ms), or without a deadline for `u64::MAX`.
    SleepingUntil(u64),
}

struct WheelState {
    wheel: TimerWheel<Entry>,
    thread: ThreadState,
    shutdown: bool,
}

struct Shared {
    state: Mutex<WheelState>,
    wakeup: Condvar,
}

/// Runtime-wide state for timers (a field of every runtime): the wheel and its thread.
pub(crate) struct RuntimeTimers {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RuntimeTimers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeTimers")
            .field("entries", &self.shared.state.lock().wheel.len())
            .finish()
    }
}

impl Default for RuntimeTimers {
    fn default() -> Self {
        RuntimeTimers {
            shared: Arc::new(Shared {
                state: Mutex::new(WheelState {
                    wheel: TimerWheel::new(now_ns() / NANOS_PER_MS),
                    thread: ThreadState::Idle,
                    shutdown: false,
                }),
                wakeup: Condvar::new(),
            }),
            thread: Mutex::new(None),
        }
    }
}

impl RuntimeTimers {
    /// Makes sure the wheel has an entry for `port` due by `due_ms`.
    fn arm(&self, port: &PortCell, due_ms: u64) {
        let Some(port) = port::lookup(port.handle) else {
            return;
        };
        // Prepared outside the wheel lock: taking the driver hold may use the driver table.
        let mut fresh = Some(Entry::new(port.clone()));
        let mut state = self.shared.state.lock();
        let timer = timer_of(&port);
        if due_ms < timer.entry_ms.load(Ordering::Acquire) {
            if timer.entry_ms.load(Ordering::Acquire) == NO_ENTRY {
                let entry = fresh.take().expect("prepared above");
                let key = state.wheel.insert(due_ms, entry);
                timer.entry_key.store(key.to_bits(), Ordering::Release);
            } else {
                let key = TimerKey::from_bits(timer.entry_key.load(Ordering::Acquire));
                state.wheel.reschedule(key, due_ms);
            }
            timer.entry_ms.store(due_ms, Ordering::Release);
            self.wake_for(&mut state, due_ms);
        }
        drop(state);
        // Not needed after all (a racing call armed it): the hold goes, outside the lock.
        drop(fresh);
    }

    /// Puts an expired entry whose port's timer is now due later back in the wheel, unless
    /// the port got a new entry meanwhile. Runs under the port's callback lock.
    fn rearm(&self, entry: Entry, due_ms: u64) -> Option<Entry> {
        let mut state = self.shared.state.lock();
        let timer = timer_of(&entry.port);
        if timer.entry_ms.load(Ordering::Acquire) != NO_ENTRY {
            return Some(entry);
        }
        let port = entry.port.clone();
        let key = state.wheel.insert(due_ms, entry);
        let timer = timer_of(&port);
        timer.entry_key.store(key.to_bits(), Ordering::Release);
        timer.entry_ms.store(due_ms, Ordering::Release);
        self.wake_for(&mut state, due_ms);
        None
    }

    /// The port is closing: its timer is gone and its wheel entry (if any) leaves the wheel.
    pub(crate) fn port_closed(&self, port: &PortCell) {
        // A port that never set a timer has no entry (timers are set under the callback lock,
        // which the caller holds).
        let Some(timer) = timer_if_any(port) else {
            return;
        };
        timer.cancel();
        if timer.entry_ms.load(Ordering::Acquire) == NO_ENTRY {
            return;
        }
        let removed = {
            let mut state = self.shared.state.lock();
            if timer.entry_ms.load(Ordering::Acquire) == NO_ENTRY {
                return;
            }
            timer.forget_entry();
            let key = TimerKey::from_bits(timer.entry_key.load(Ordering::Acquire));
            state.wheel.cancel(key)
        };
        // The driver hold goes outside the wheel lock.
        drop(removed);
    }

    /// Wakes (or starts) the timer thread if it would sleep past `due_ms`.
    fn wake_for(&self, state: &mut MutexGuard<'_, WheelState>, due_ms: u64) {
        match state.thread {
            ThreadState::Awake => {}
            ThreadState::SleepingUntil(wake_at) if wake_at <= due_ms => {}
            ThreadState::SleepingUntil(_) => {
                state.thread = ThreadState::Awake;
                self.shared.wakeup.notify_one();
            }
            ThreadState::Idle => {
                state.thread = ThreadState::Awake;
                let shared = self.shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("ddll-timers".into())
                    .spawn(move || run(&shared));
                match spawned {
                    Ok(handle) => *self.thread.lock() = Some(handle),
                    Err(e) => {
                        state.thread = ThreadState::Idle;
                        eprintln!("ddll: cannot start the timer thread: {e}");
                    }
                }
            }
        }
    }
}

impl Drop for RuntimeTimers {
    fn drop(&mut self) {
        let entries = {
            let mut state = self.shared.state.lock();
            state.shutdown = true;
            std::mem::replace(&mut state.wheel, TimerWheel::new(0))
        };
        self.shared.wakeup.notify_one();
        if let Some(thread) = self.thread.lock().take() {
            // The runtime may be dropped by the timer thread itself (it let go of the last
            // reference); it then ends on its own after this.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        drop(entries);
    }
}

/// The timer thread: expire entries, handle them outside the wheel lock, sleep until the next.
fn run(shared: &Shared) {
    let mut expired = Vec::new();
    let mut state = shared.state.lock();
    loop {
        if state.shutdown {
            return;
        }
        let now_ms = now_ns() / NANOS_PER_MS;
        state.wheel.advance(now_ms, |_, entry| {
            timer_of(&entry.port).forget_entry();
            expired.push(entry);
        });
        if !expired.is_empty() {
            MutexGuard::unlocked(&mut state, || {
                for entry in expired.drain(..) {
                    expire(entry);
                }
            });
            continue;
        }
        match state.wheel.next_wakeup() {
            Some(wake_at) if wake_at <= now_ms => continue,
            Some(wake_at) => {
                state.thread = ThreadState::SleepingUntil(wake_at);
                match origin().checked_add(Duration::from_millis(wake_at)) {
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

/// An expired entry: run the port's `timeout` if its timer is due, re-arm it if the timer was
/// moved later, else let it go.
fn expire(entry: Entry) {
    // `timeout` may close the port and so make erl_ddll work due: settled when this ends,
    // after the port has been let go of.
    let settle = Settle::for_port(&entry.port);
    let port = entry.port.clone();
    let mut entry = Some(entry);
    Runtime::serialized(&port, &settle, |data| {
        let timer = timer_of(&port);
        let due = timer.due_ns.load(Ordering::Acquire);
        if due == NOT_ARMED {
            return;
        }
        if due <= now_ns() {
            timer.due_ns.store(NOT_ARMED, Ordering::Release);
            port.driver.driver.timeout(data);
        } else if let (Some(runtime), Some(e)) = (port.runtime.upgrade(), entry.take()) {
            entry = runtime.timers.rearm(e, due.div_ceil(NANOS_PER_MS));
        }
    });
    // Done with (or a closed port's) entry: its driver hold goes outside every lock.
    drop(entry);
}

impl drv_abi::TimerHost for GlobalHost {
    fn set_timer(&self, handle: ErlDrvPort, time_ms: u64) -> c_int {
        // A driver without `timeout` gets a timer too (as from BEAM): it expires without effect.
        port::with_port(port::number(handle), |port| {
            timer_of(port).set(port, time_ms)
        })
        .map_or(-1, |()| 0)
    }

    fn cancel_timer(&self, handle: ErlDrvPort) -> c_int {
        port::with_port(port::number(handle), |port| {
            if let Some(timer) = timer_if_any(port) {
                timer.cancel();
            }
        })
        .map_or(-1, |()| 0)
    }

    fn read_timer(&self, handle: ErlDrvPort) -> Option<u64> {
        port::with_port(port::number(handle), |port| {
            timer_if_any(port).map_or(0, PortTimer::read)
        })
    }
}
