//! Port data locks (`ErlDrvPDL`): a reference-counted raw mutex guarding a port's driver queue.
//!
//! Lock and unlock are separate C calls, so the lock is a raw mutex rather than a guard-based
//! one. Whether a port may get a lock (one per port, port must be valid) is the runtime's
//! decision; this module only provides the object.
//!
//! The lock remembers which thread holds it, so a runtime can tell whether the calling thread
//! may touch the queue the lock guards ([`PdlRef::held_by_current_thread`]).

use std::fmt;
use std::ptr::NonNull;

use lock_api::RawMutex as _;

use crate::sync::{fence, AtomicIsize, AtomicUsize, Ordering};

/// Opaque C type behind `ErlDrvPDL` (`struct erl_drv_port_data_lock *`).
#[repr(C)]
#[derive(Debug)]
pub struct ErlDrvPdlData {
    _private: [u8; 0],
}

/// The C handle type `ErlDrvPDL`.
pub type ErlDrvPDL = *mut ErlDrvPdlData;

struct PdlInner {
    refc: AtomicIsize,
    mutex: parking_lot::RawMutex,
    /// [`thread_token`] of the holder, 0 when free. Written only by the holder (after locking,
    /// before unlocking); a thread reading its own token here therefore holds the lock, and
    /// Relaxed suffices: a thread never sees its own token after its own later store of 0.
    owner: AtomicUsize,
}

impl PdlInner {
    fn lock(&self) {
        self.mutex.lock();
        self.owner.store(thread_token(), Ordering::Relaxed);
    }

    fn try_lock(&self) -> bool {
        let locked = self.mutex.try_lock();
        if locked {
            self.owner.store(thread_token(), Ordering::Relaxed);
        }
        locked
    }

    /// # Safety
    /// The calling thread must hold the lock.
    unsafe fn unlock(&self) {
        self.owner.store(0, Ordering::Relaxed);
        // SAFETY: caller contract.
        unsafe { self.mutex.unlock() }
    }

    fn held_by_current_thread(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == thread_token()
    }
}

/// A non-zero number unique to each live thread: the address of a thread-local.
#[inline]
fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| std::ptr::from_ref(t) as usize)
}

/// One owned reference to a port data lock. Cloning increments the count; dropping the last
/// reference destroys the lock.
pub struct PdlRef(NonNull<PdlInner>);

// SAFETY: the count is atomic and the mutex is designed for cross-thread use.
unsafe impl Send for PdlRef {}
// SAFETY: `&PdlRef` offers only the mutex operations and atomic count reads/updates.
unsafe impl Sync for PdlRef {}

impl PdlRef {
    /// Creates an unlocked lock with a count of 1.
    pub fn new() -> PdlRef {
        let inner = Box::new(PdlInner {
            refc: AtomicIsize::new(1),
            mutex: parking_lot::RawMutex::INIT,
            owner: AtomicUsize::new(0),
        });
        PdlRef(NonNull::from(Box::leak(inner)))
    }

    fn inner(&self) -> &PdlInner {
        // SAFETY: the handle owns a reference, so the allocation is live.
        unsafe { self.0.as_ref() }
    }

    /// Blocks until the lock is held by the calling thread (`driver_pdl_lock`). Not reentrant.
    pub fn lock(&self) {
        self.inner().lock();
    }

    /// Takes the lock if it is free; returns whether it did.
    pub fn try_lock(&self) -> bool {
        self.inner().try_lock()
    }

    /// Releases the lock (`driver_pdl_unlock`).
    ///
    /// # Safety
    /// The calling thread must hold the lock.
    pub unsafe fn unlock(&self) {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner().unlock() }
    }

    /// Whether the calling thread holds the lock.
    #[inline]
    pub fn held_by_current_thread(&self) -> bool {
        self.inner().held_by_current_thread()
    }

    /// Locks and returns a guard that unlocks when dropped.
    pub fn guard(&self) -> PdlGuard<'_> {
        self.lock();
        PdlGuard(self)
    }

    /// Whether some thread holds the lock.
    pub fn is_locked(&self) -> bool {
        self.inner().mutex.is_locked()
    }

    /// The current reference count.
    pub fn refc(&self) -> isize {
        self.inner().refc.load(Ordering::Acquire)
    }

    /// The C handle, still owned by this reference.
    pub fn as_raw(&self) -> ErlDrvPDL {
        self.0.as_ptr().cast()
    }

    /// Gives this reference to C without dropping it.
    pub fn into_raw(self) -> ErlDrvPDL {
        let raw = self.as_raw();
        std::mem::forget(self);
        raw
    }

    /// Adopts one reference from C.
    ///
    /// # Safety
    /// `pdl` must be a live lock created by this crate, and the caller hands over one reference.
    pub unsafe fn from_raw(pdl: ErlDrvPDL) -> PdlRef {
        // SAFETY: a live lock pointer is never null.
        PdlRef(unsafe { NonNull::new_unchecked(pdl.cast()) })
    }
}

impl Default for PdlRef {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for PdlRef {
    fn clone(&self) -> Self {
        self.inner().refc.fetch_add(1, Ordering::Relaxed);
        PdlRef(self.0)
    }
}

impl Drop for PdlRef {
    fn drop(&mut self) {
        // SAFETY: this handle owns one reference, consumed here.
        unsafe { pdl_release(self.0.as_ptr()) };
    }
}

impl fmt::Debug for PdlRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdlRef")
            .field("ptr", &self.0)
            .field("refc", &self.refc())
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// Holds a [`PdlRef`] locked; unlocks on drop.
#[derive(Debug)]
pub struct PdlGuard<'a>(&'a PdlRef);

impl Drop for PdlGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard was created by `PdlRef::guard`, which took the lock on this thread.
        unsafe { self.0.unlock() }
    }
}

/// Drops one reference, returning the new count; destroys the lock at zero.
///
/// # Safety
/// `inner` must be live and the caller must own the reference being dropped.
unsafe fn pdl_release(inner: *mut PdlInner) -> isize {
    // SAFETY: caller contract: live.
    let left = unsafe { &(*inner).refc }.fetch_sub(1, Ordering::Release) - 1;
    if left == 0 {
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero; the box came from `PdlRef::new`.
        drop(unsafe { Box::from_raw(inner) });
    }
    left
}

/// A reference to the lock behind a C handle.
///
/// # Safety
/// `pdl` must be a live lock created by this crate.
unsafe fn pdl_inner<'a>(pdl: ErlDrvPDL) -> &'a PdlInner {
    // SAFETY: caller contract.
    unsafe { &*pdl.cast::<PdlInner>() }
}

/// `driver_pdl_lock`.
///
/// # Safety
/// `pdl` must be a live lock created by this crate.
pub unsafe fn pdl_lock(pdl: ErlDrvPDL) {
    // SAFETY: caller contract.
    unsafe { pdl_inner(pdl) }.lock();
}

/// `driver_pdl_unlock`.
///
/// # Safety
/// `pdl` must be a live lock created by this crate, held by the calling thread.
pub unsafe fn pdl_unlock(pdl: ErlDrvPDL) {
    // SAFETY: caller contract: live and held by this thread.
    unsafe { pdl_inner(pdl).unlock() };
}

/// Whether the calling thread holds the lock `pdl`.
///
/// # Safety
/// `pdl` must be a live lock created by this crate.
pub unsafe fn pdl_held_by_current_thread(pdl: ErlDrvPDL) -> bool {
    // SAFETY: caller contract.
    unsafe { pdl_inner(pdl) }.held_by_current_thread()
}

/// `driver_pdl_get_refc`.
///
/// # Safety
/// `pdl` must be a live lock created by this crate.
pub unsafe fn pdl_get_refc(pdl: ErlDrvPDL) -> isize {
    // SAFETY: caller contract.
    unsafe { pdl_inner(pdl) }.refc.load(Ordering::Acquire)
}

/// `driver_pdl_inc_refc`: returns the new count.
///
/// # Safety
/// `pdl` must be a live lock created by this crate.
pub unsafe fn pdl_inc_refc(pdl: ErlDrvPDL) -> isize {
    // SAFETY: caller contract.
    unsafe { pdl_inner(pdl) }
        .refc
        .fetch_add(1, Ordering::Relaxed)
        + 1
}

/// `driver_pdl_dec_refc`: returns the new count; the lock is destroyed when it reaches zero.
///
/// # Safety
/// `pdl` must be a live lock created by this crate and the caller must own the reference it
/// drops.
pub unsafe fn pdl_dec_refc(pdl: ErlDrvPDL) -> isize {
    // SAFETY: caller contract.
    unsafe { pdl_release(pdl.cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_raw_round_trip() {
        let pdl = PdlRef::new();
        assert_eq!(pdl.refc(), 1);
        let second = pdl.clone();
        assert_eq!(pdl.refc(), 2);
        let raw = second.into_raw();
        // SAFETY: `raw` is live while `pdl` holds a reference; counts are balanced.
        unsafe {
            assert_eq!(pdl_get_refc(raw), 2);
            assert_eq!(pdl_inc_refc(raw), 3);
            assert_eq!(pdl_dec_refc(raw), 2);
            assert_eq!(pdl_dec_refc(raw), 1);
        }
        assert_eq!(pdl.refc(), 1);
    }

    #[test]
    fn the_holder_is_known() {
        let pdl = PdlRef::new();
        let _held = pdl.guard();
        assert!(pdl.held_by_current_thread());
        let other = pdl.clone();
        let seen = std::thread::spawn(move || (other.held_by_current_thread(), other.try_lock()))
            .join()
            .expect("thread");
        assert_eq!(
            seen,
            (false, false),
            "another thread neither holds nor gets it"
        );
    }

    #[test]
    fn lock_and_unlock_are_separate_calls() {
        let pdl = PdlRef::new();
        let raw = pdl.as_raw();
        // SAFETY: `raw` is live; each unlock follows a lock on this thread.
        unsafe {
            pdl_lock(raw);
            assert!(pdl.is_locked());
            assert!(pdl_held_by_current_thread(raw));
            assert!(!pdl.try_lock());
            pdl_unlock(raw);
            assert!(!pdl_held_by_current_thread(raw));
        }
        assert!(!pdl.is_locked());
        {
            let _held = pdl.guard();
            assert!(pdl.is_locked());
        }
        assert!(pdl.try_lock());
        // SAFETY: `try_lock` succeeded on this thread.
        unsafe { pdl.unlock() };
    }
}
