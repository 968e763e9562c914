//! The callback watchdog of a host process: every port callback the host runs (those its
//! parent asks for and those it runs on its own: timeouts, async completions, select events,
//! monitors) is timed, and one that runs past [`Isolation::callback_timeout`] ends the host.
//!
//! Each thread that runs callbacks has a slot holding when its outermost callback started
//! (milliseconds since the watchdog started, plus one; zero when idle). The slot is written
//! on the callback's way in and out (two relaxed stores); the watchdog thread scans the slots
//! a few times per timeout. In a process that is not a host, [`enter`] is one relaxed load.
//!
//! [`Isolation::callback_timeout`]: super::Isolation::callback_timeout

use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Set once in a host whose callbacks are timed.
static WATCHING: AtomicBool = AtomicBool::new(false);
/// When the watchdog started: slots count from here.
static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Every thread's slot (a thread that has ended leaves a dead weak reference).
static SLOTS: Mutex<Vec<Weak<AtomicU64>>> = Mutex::new(Vec::new());

thread_local! {
    static SLOT: OnceCell<Arc<AtomicU64>> = const { OnceCell::new() };
}

fn now_ms() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A callback's time on the watch; ends it when dropped.
pub(crate) struct Watched(Arc<AtomicU64>);

impl Drop for Watched {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// An outermost callback starts on this thread: timed while the guard lives, if this
/// process is a host with a callback timeout.
#[inline]
pub(crate) fn enter() -> Option<Watched> {
    if !WATCHING.load(Ordering::Relaxed) {
        return None;
    }
    enter_watched()
}

#[cold]
fn enter_watched() -> Option<Watched> {
    let slot = SLOT
        .try_with(|slot| {
            slot.get_or_init(|| {
                let slot = Arc::new(AtomicU64::new(0));
                let mut slots = SLOTS.lock();
                slots.retain(|s| s.strong_count() > 0);
                slots.push(Arc::downgrade(&slot));
                slot
            })
            .clone()
        })
        .ok()?;
    slot.store(now_ms() + 1, Ordering::Relaxed);
    Some(Watched(slot))
}

/// Starts timing callbacks: when one runs longer than `limit`, `overran` is called (it tells
/// the parent, boundedly) and the process is killed.
pub(crate) fn start(limit: Duration, overran: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    // A few looks per timeout: a callback is ended at most a quarter late.
    let interval = (limit / 4).clamp(Duration::from_millis(1), Duration::from_millis(100));
    now_ms();
    WATCHING.store(true, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("ddll-isolate-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            let now = now_ms();
            let overrun = SLOTS.lock().iter().filter_map(Weak::upgrade).any(|slot| {
                let since = slot.load(Ordering::Relaxed);
                since != 0 && now.saturating_sub(since - 1) > limit_ms
            });
            if overrun {
                overran();
                // SAFETY: plain system calls; the host ends here, whatever its driver holds.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
        })
        .map(drop)
}
