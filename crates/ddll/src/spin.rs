//! A spin lock for critical sections of a few instructions (a mailbox's append and take).
//!
//! Taking and releasing it costs one atomic read-modify-write instead of a parking mutex's
//! two: releasing is a plain store, because nobody parks on it. Waiters spin a little, then
//! yield their time slice (a holder descheduled mid-section gets the CPU back), so it must only
//! guard work that never blocks and stays short.

use crate::sync::{AtomicBool, Backoff, Ordering};

/// The raw lock behind [`SpinMutex`].
#[derive(Debug)]
pub(crate) struct RawSpinLock {
    locked: AtomicBool,
}

impl RawSpinLock {
    fn lock(&self) {
        if self.try_lock() {
            return;
        }
        let backoff = Backoff::new();
        loop {
            // Wait reading, not writing, so waiters do not bounce the line off the holder.
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            if self.try_lock() {
                return;
            }
        }
    }

    fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// # Safety
    /// Only the holder calls it.
    unsafe fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

// `lock`/`try_lock` succeed only by swapping `locked` from false to true with Acquire ordering;
// `unlock` (called only by the holder, per the trait's contract) stores false with Release
// ordering, which publishes the section's writes to the next holder (checked by the models in
// `loom_models.rs`).
// SAFETY: so at most one holder exists at a time, and each sees its predecessors' writes.
#[cfg(not(loom))]
unsafe impl lock_api::RawMutex for RawSpinLock {
    #[allow(clippy::declare_interior_mutable_const)] // the trait's way to make new locks
    const INIT: RawSpinLock = RawSpinLock {
        locked: AtomicBool::new(false),
    };

    type GuardMarker = lock_api::GuardSend;

    fn lock(&self) {
        RawSpinLock::lock(self);
    }

    fn try_lock(&self) -> bool {
        RawSpinLock::try_lock(self)
    }

    /// # Safety
    /// Only the holder calls it (the trait's contract).
    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { RawSpinLock::unlock(self) }
    }

    fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

/// A mutex over [`RawSpinLock`].
#[cfg(not(loom))]
pub(crate) type SpinMutex<T> = lock_api::Mutex<RawSpinLock, T>;

/// Under the model checker: the same raw lock (a loom atomic cannot be made in `lock_api`'s
/// constant `INIT`, hence this small stand-in for `lock_api::Mutex`), guarding the data in a
/// loom cell, so that an access the lock fails to order is reported as a data race.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct SpinMutex<T> {
    raw: RawSpinLock,
    data: loom::cell::UnsafeCell<T>,
}

#[cfg(loom)]
// SAFETY: the lock hands the data to one thread at a time.
unsafe impl<T: Send> Sync for SpinMutex<T> {}

#[cfg(loom)]
impl<T> SpinMutex<T> {
    pub(crate) fn new(value: T) -> Self {
        SpinMutex {
            raw: RawSpinLock {
                locked: AtomicBool::new(false),
            },
            data: loom::cell::UnsafeCell::new(value),
        }
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        self.raw.lock();
        SpinGuard {
            lock: self,
            data: Some(self.data.get_mut()),
        }
    }

    #[cfg_attr(not(test), allow(dead_code))] // only the models try
    pub(crate) fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        self.raw.try_lock().then(|| SpinGuard {
            lock: self,
            data: Some(self.data.get_mut()),
        })
    }
}

/// A held [`SpinMutex`] under the model checker.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinMutex<T>,
    /// Dropped before the unlock, which ends this thread's access for the checker.
    data: Option<loom::cell::MutPtr<T>>,
}

#[cfg(loom)]
impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        let data = self.data.as_ref().expect("set until the guard drops");
        // SAFETY: the guard holds the lock, so no other thread has the data.
        unsafe { data.deref() }
    }
}

#[cfg(loom)]
impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        let data = self.data.as_ref().expect("set until the guard drops");
        // SAFETY: as for `deref`.
        unsafe { data.deref() }
    }
}

#[cfg(loom)]
impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.data.take());
        // SAFETY: the guard holds the lock.
        unsafe { self.lock.raw.unlock() }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::SpinMutex;

    #[test]
    fn threads_adding_under_the_lock_lose_no_update() {
        let counter = SpinMutex::new(0u64);
        let (threads, rounds) = (4, 20_000);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..rounds {
                        *counter.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(counter.into_inner(), threads * rounds);
    }

    #[test]
    fn try_lock_fails_while_held() {
        let lock = SpinMutex::new(());
        let held = lock.lock();
        assert!(lock.try_lock().is_none());
        drop(held);
        assert!(lock.try_lock().is_some());
    }
}
