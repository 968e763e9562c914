//! The primitives behind the runtime's hand-written synchronisation (the spin lock, a
//! mailbox's inbox and parked receivers): std's and `parking_lot`'s, or the model checker's
//! when the crate is built with `--cfg loom` (`cargo xtask loom`), so that the models in
//! `loom_models.rs` check the production code, not a copy.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::thread::{current, park, park_timeout, Thread};

#[cfg(not(loom))]
pub(crate) use crossbeam_utils::Backoff;
#[cfg(not(loom))]
pub(crate) use parking_lot::Mutex;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
pub(crate) use loom::thread::{current, park, Thread};

/// A model has no clock: a timed wait is a wait that a wake-up ends (the models never rely on
/// a timeout).
#[cfg(loom)]
pub(crate) fn park_timeout(_: std::time::Duration) {
    loom::thread::park();
}

/// A spinning waiter under the model checker yields to the other modelled threads (the
/// checker explores what they do meanwhile; a busy loop would never end).
#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct Backoff;

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff
    }

    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}

/// `parking_lot::Mutex`'s interface over loom's mutex.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0
            .lock()
            .expect("a model thread panicked holding the lock")
    }
}
