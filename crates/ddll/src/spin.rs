//! A spin lock for critical sections of a few instructions (a mailbox's append and take).
//!
//! Taking and releasing it costs one atomic read-modify-write instead of a parking mutex's
//! two: releasing is a plain store, because nobody parks on it. Waiters spin a little, then
//! yield their time slice (a holder descheduled mid-section gets the CPU back), so it must only
//! guard work that never blocks and stays short.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_utils::Backoff;

/// The raw lock behind [`SpinMutex`].
#[derive(Debug)]
pub(crate) struct RawSpinLock {
    locked: AtomicBool,
}

// `lock`/`try_lock` succeed only by swapping `locked` from false to true with Acquire ordering;
// `unlock` (called only by the holder, per the trait's contract) stores false with Release
// ordering, which publishes the section's writes to the next holder.
// SAFETY: so at most one holder exists at a time, and each sees its predecessors' writes.
unsafe impl lock_api::RawMutex for RawSpinLock {
    #[allow(clippy::declare_interior_mutable_const)] // the trait's way to make new locks
    const INIT: RawSpinLock = RawSpinLock {
        locked: AtomicBool::new(false),
    };

    type GuardMarker = lock_api::GuardSend;

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
    /// Only the holder calls it (the trait's contract).
    unsafe fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

/// A mutex over [`RawSpinLock`].
pub(crate) type SpinMutex<T> = lock_api::Mutex<RawSpinLock, T>;

#[cfg(test)]
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
