//! The driver queue and port data lock of each port (issue #4).
//!
//! Who may touch a port's queue, as the C API says: a thread running a callback of the port
//! (it holds the port's callback lock), or, once the driver created a port data lock (PDL),
//! any thread holding the PDL. With a PDL, a callback that did not lock it gets it locked
//! around the call by the runtime (BEAM would let it race); the runtime's own reads (close,
//! `port_info`) do the same. Any other caller is refused with the failure value and reported
//! once, so the queue is never touched by two threads at a time.
//!
//! The port keeps its PDL reference until the port's cell is freed, which happens right after
//! the port terminates (the runtime drops its last handles then); threads reaching the lock
//! through the port meanwhile still find it allocated. Async jobs take their own references
//! with [`pdl_reference`].

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use drv_abi::types::ErlDrvPort;
use drv_abi::QueueAccess;
use drv_queue::{ErlDrvPDL, PdlRef, PortQueue};
use once_cell::race::OnceBox;

use crate::host::GlobalHost;
use crate::port::{self, PortCell};

/// Per-port state for this capability (a field of every port).
pub(crate) struct PortQueueState {
    /// The queue and the PDL, allocated by the first call that may use either: an idle port,
    /// like most ports, never queues (BEAM allocates its port queue on the first enqueue too).
    parts: OnceBox<QueueParts>,
    /// The port has terminated: its queue is gone for drivers too. Written with both the
    /// callback lock and (if any) the PDL held, so either lock makes it stable.
    terminated: AtomicBool,
    /// The port has exited with data queued and waits for the driver to dequeue it.
    closing: AtomicBool,
}

/// A port's queue and PDL, once it has either.
struct QueueParts {
    /// Touched only under the rule in the module documentation.
    queue: UnsafeCell<PortQueue>,
    /// The port's PDL, created at most once; this is the port's own reference.
    pdl: OnceLock<PdlRef>,
}

impl QueueParts {
    fn new() -> Box<QueueParts> {
        Box::new(QueueParts {
            queue: UnsafeCell::new(PortQueue::new()),
            pdl: OnceLock::new(),
        })
    }
}

// SAFETY: `queue` is only reached under the rule of `grant`/`access`, which gives one thread
// at a time its use; the other fields are thread-safe.
unsafe impl Sync for PortQueueState {}

impl Default for PortQueueState {
    fn default() -> Self {
        PortQueueState {
            parts: OnceBox::new(),
            terminated: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for PortQueueState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortQueueState")
            .field("pdl", &self.pdl())
            .field("closing", &self.is_closing())
            .field("terminated", &self.terminated.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PortQueueState {
    /// The port's PDL, if it has one.
    #[inline]
    fn pdl(&self) -> Option<&PdlRef> {
        self.parts.get()?.pdl.get()
    }

    /// The queue, if the calling thread may use it. `in_callback`: this thread holds the
    /// port's callback lock.
    ///
    /// - No PDL: callback threads only. A PDL cannot appear while they use the queue (creating
    ///   one needs the callback lock, and queue calls create none).
    /// - A PDL: its holder; or a callback thread, which must lock it first (BEAM would let it
    ///   race). Every user of the queue then holds the PDL.
    ///
    /// The queue stays allocated meanwhile: the port cannot terminate (which needs both locks)
    /// and be freed while the lock the grant relies on is held.
    #[inline]
    fn grant(&self, in_callback: bool) -> QueueAccess {
        let pdl = self.pdl();
        // The PDL to lock first, if any.
        let lock_first = match pdl {
            None if in_callback => None,
            Some(pdl) if pdl.held_by_current_thread() => None,
            Some(pdl) if in_callback => {
                Some(NonNull::new(pdl.as_raw()).expect("a live lock is never null"))
            }
            _ => return QueueAccess::REFUSED,
        };
        // Stable here: written only with the callback lock and the PDL held, and this thread
        // holds one of them (the only one, without a PDL).
        if self.terminated.load(Ordering::Relaxed) {
            return QueueAccess::REFUSED;
        }
        // Allocated once, and never moved after; by a callback thread, so never by two
        // threads at once (with a PDL the parts are there already).
        let parts = self.parts.get_or_init(QueueParts::new);
        let queue = NonNull::new(parts.queue.get()).expect("a box is never null");
        match lock_first {
            None => QueueAccess::held(queue),
            Some(raw) => QueueAccess::lock_first(queue, raw),
        }
    }

    /// Runs `op` with the queue for the runtime (`None`: never allocated, so empty); the
    /// caller holds the callback lock.
    fn access<R>(&self, op: impl FnOnce(Option<&mut PortQueue>) -> R) -> R {
        let _held = self
            .pdl()
            .filter(|pdl| !pdl.held_by_current_thread())
            .map(PdlRef::guard);
        let queue = self.parts.get().map(|parts| {
            // SAFETY: the caller holds the callback lock, and the PDL (if any) is held by this
            // thread now: the rule of `grant` gives nobody else the queue meanwhile.
            unsafe { &mut *parts.queue.get() }
        });
        op(queue)
    }

    /// Whether the port exited with data queued and is waiting for it to be dequeued.
    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Marks the port closing (the caller holds its callback lock).
    pub(crate) fn start_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }
}

/// Runs `op` on the queue of `port` for the runtime (taking the callback lock, reentrant).
fn runtime_access<R>(port: &PortCell, op: impl FnOnce(Option<&mut PortQueue>) -> R) -> R {
    let _serial = port.lock.lock();
    port.queue.access(op)
}

/// Bytes in the driver queue of `port` (0 once it terminated).
pub(crate) fn size(port: &PortCell) -> usize {
    runtime_access(port, |q| q.map_or(0, |q| q.size()))
}

/// Drops the queued data (the port exits without flushing).
pub(crate) fn clear(port: &PortCell) {
    runtime_access(port, |q| {
        if let Some(q) = q {
            q.clear();
        }
    });
}

/// The port has terminated: its queue is emptied and refused to drivers from now on.
pub(crate) fn terminate(port: &PortCell) {
    runtime_access(port, |q| {
        if let Some(q) = q {
            q.clear();
        }
        port.queue.terminated.store(true, Ordering::Relaxed);
        // Only a thread holding the callback lock (this one) can have the queue remembered.
        drv_abi::forget_granted_queue();
    });
}

/// A new reference to the port's PDL, if it has one, for work that may run after the port
/// terminated (an async job holds one until it has run or was cancelled). Dropping the
/// reference releases it.
pub(crate) fn pdl_reference(port: &PortCell) -> Option<PdlRef> {
    port.queue.pdl().cloned()
}

/// Reports, once per process, a queue call from a thread that may not make it.
fn report_foreign_thread(port: &PortCell) {
    static REPORTED: std::sync::Once = std::sync::Once::new();
    REPORTED.call_once(|| {
        eprintln!(
            "ddll: error: a driver queue function was called for {} from a thread that neither \
             runs one of its callbacks nor holds its port data lock; it returns -1",
            port.term()
        );
    });
}

impl drv_abi::QueueHost for GlobalHost {
    #[inline]
    fn queue_access(&self, handle: ErlDrvPort) -> QueueAccess {
        port::with_port_context(handle, |port, in_callback| {
            let access = port.queue.grant(in_callback);
            match (access.queue(), access.lock_first_pdl()) {
                (None, _) if !port.queue.terminated.load(Ordering::Relaxed) => {
                    report_foreign_thread(port);
                }
                // A callback of the port without a PDL: the grant holds until the callback
                // ends, so the API may reuse it until then.
                (Some(queue), None) if port.queue.pdl().is_none() && port::is_current(port) => {
                    // A PDL (`pdl_create`) or termination (`terminate`), which would change the
                    // grant meanwhile, forget it too.
                    // SAFETY: the port is this thread's current one: `with_current` keeps it alive,
                    // its callback lock held, and forgets the grant when the callback ends.
                    unsafe { drv_abi::remember_granted_queue(handle, queue) };
                }
                _ => {}
            }
            access
        })
        .unwrap_or(QueueAccess::REFUSED)
    }

    fn pdl_create(&self, handle: ErlDrvPort) -> Option<ErlDrvPDL> {
        port::with_port_context(handle, |port, in_callback| {
            // Only from a callback: nobody may be using the queue without the lock meanwhile.
            if !in_callback || port.queue.terminated.load(Ordering::Relaxed) {
                return None;
            }
            let fresh = PdlRef::new();
            let raw = fresh.as_raw();
            // From now on callbacks must lock the PDL first: no remembered grant may skip it.
            drv_abi::forget_granted_queue();
            let parts = port.queue.parts.get_or_init(QueueParts::new);
            parts.pdl.set(fresh).ok().map(|()| raw)
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The access rule on its own: who gets the queue, with and without a PDL.
    #[test]
    fn access_rule() {
        let state = PortQueueState::default();
        // (has PDL, in callback, holds PDL) -> what the thread gets
        let table = [
            (false, true, false, "held"),
            (false, false, false, "refused"),
            (true, true, false, "lock first"),
            (true, false, true, "held"),
            (true, true, true, "held"),
            (true, false, false, "refused"),
        ];
        for (has_pdl, in_callback, holds, expected) in table {
            if has_pdl && state.pdl().is_none() {
                let parts = state.parts.get_or_init(QueueParts::new);
                assert!(parts.pdl.set(PdlRef::new()).is_ok(), "first");
            }
            let pdl = state.pdl();
            if holds {
                pdl.expect("has one").lock();
            }
            let access = state.grant(in_callback);
            let got = match (access.queue(), access.lock_first_pdl()) {
                (None, _) => "refused",
                (Some(_), None) => "held",
                (Some(_), Some(raw)) => {
                    assert_eq!(Some(raw), pdl.map(PdlRef::as_raw));
                    "lock first"
                }
            };
            if holds {
                // SAFETY: locked just above on this thread.
                unsafe { pdl.expect("has one").unlock() };
            }
            assert_eq!(
                got, expected,
                "pdl {has_pdl}, callback {in_callback}, holds {holds}"
            );
        }
        state.access(|q| q.expect("allocated by the grants above").enq(b"x"));
        assert!(
            !state.pdl().is_some_and(PdlRef::is_locked),
            "access unlocks"
        );
        state.terminated.store(true, Ordering::Relaxed);
        assert_eq!(state.grant(true), QueueAccess::REFUSED, "terminated");
    }
}
