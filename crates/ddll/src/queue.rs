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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use drv_abi::types::ErlDrvPort;
use drv_queue::{ErlDrvPDL, PdlRef, PortQueue};

use crate::host::GlobalHost;
use crate::port::{self, PortCell};

/// Per-port state for this capability (a field of every port).
pub(crate) struct PortQueueState {
    /// Touched only under the rule in the module documentation.
    guarded: UnsafeCell<Guarded>,
    /// The port's PDL, created at most once; this is the port's own reference.
    pdl: OnceLock<PdlRef>,
    /// The port has exited with data queued and waits for the driver to dequeue it.
    closing: AtomicBool,
}

struct Guarded {
    queue: PortQueue,
    /// The port has terminated: its queue is gone for drivers too.
    terminated: bool,
}

// SAFETY: `guarded` is only reached through `access`, which gives one thread at a time a
// `&mut` (see there); the other fields are thread-safe.
unsafe impl Sync for PortQueueState {}

impl Default for PortQueueState {
    fn default() -> Self {
        PortQueueState {
            guarded: UnsafeCell::new(Guarded {
                queue: PortQueue::new(),
                terminated: false,
            }),
            pdl: OnceLock::new(),
            closing: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for PortQueueState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortQueueState")
            .field("pdl", &self.pdl.get())
            .field("closing", &self.is_closing())
            .finish_non_exhaustive()
    }
}

impl PortQueueState {
    /// Runs `op` with exclusive access to the queue, or returns `None` when the calling thread
    /// may not touch it. `in_callback`: this thread holds the port's callback lock.
    #[inline]
    fn access<R>(&self, in_callback: bool, op: impl FnOnce(&mut Guarded) -> R) -> Option<R> {
        match self.pdl.get() {
            None if in_callback => {
                // SAFETY: without a PDL every access needs the callback lock, which this
                // thread holds; a PDL cannot appear meanwhile (creating one needs that lock
                // too, and `op` creates none).
                Some(op(unsafe { &mut *self.guarded.get() }))
            }
            None => None,
            Some(pdl) if pdl.held_by_current_thread() => {
                // SAFETY: with a PDL every access holds it (callers that did not lock it get
                // it locked below), and this thread holds it.
                Some(op(unsafe { &mut *self.guarded.get() }))
            }
            Some(pdl) if in_callback => {
                let _held = pdl.guard();
                // SAFETY: as above: this thread now holds the PDL.
                Some(op(unsafe { &mut *self.guarded.get() }))
            }
            Some(_) => None,
        }
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

/// Runs `op` on the queue of `port` for the runtime; the caller holds the callback lock.
fn runtime_access<R>(port: &PortCell, op: impl FnOnce(&mut Guarded) -> R) -> R {
    let _serial = port.lock.lock();
    port.queue
        .access(true, op)
        .expect("the callback lock is held, so access is granted")
}

/// Bytes in the driver queue of `port` (0 once it terminated).
pub(crate) fn size(port: &PortCell) -> usize {
    runtime_access(port, |g| g.queue.size())
}

/// Drops the queued data (the port exits without flushing).
pub(crate) fn clear(port: &PortCell) {
    runtime_access(port, |g| g.queue.clear());
}

/// The port has terminated: its queue is emptied and refused to drivers from now on.
pub(crate) fn terminate(port: &PortCell) {
    runtime_access(port, |g| {
        g.queue.clear();
        g.terminated = true;
    });
}

/// A new reference to the port's PDL, if it has one, for work that may run after the port
/// terminated (an async job holds one until it has run or was cancelled). Dropping the
/// reference releases it.
#[allow(dead_code)] // for the async pool (issue #6)
pub(crate) fn pdl_reference(port: &PortCell) -> Option<PdlRef> {
    port.queue.pdl.get().cloned()
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
    fn with_queue(&self, handle: ErlDrvPort, op: &mut dyn FnMut(&mut PortQueue)) -> bool {
        port::with_port_context(handle, |port, in_callback| {
            let done = port.queue.access(in_callback, |g| {
                if g.terminated {
                    return false;
                }
                op(&mut g.queue);
                true
            });
            done.unwrap_or_else(|| {
                report_foreign_thread(port);
                false
            })
        })
        .unwrap_or(false)
    }

    fn pdl_create(&self, handle: ErlDrvPort) -> Option<ErlDrvPDL> {
        port::with_port_context(handle, |port, in_callback| {
            // Only from a callback: nobody may be using the queue without the lock meanwhile.
            if !in_callback || port.queue.access(true, |g| g.terminated) != Some(false) {
                return None;
            }
            let fresh = PdlRef::new();
            let raw = fresh.as_raw();
            port.queue.pdl.set(fresh).ok().map(|()| raw)
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
        // (has PDL, in callback, holds PDL) -> granted
        let table = [
            (false, true, false, true),
            (false, false, false, false),
            (true, true, false, true),
            (true, false, true, true),
            (true, true, true, true),
            (true, false, false, false),
        ];
        for (has_pdl, in_callback, holds, granted) in table {
            if has_pdl && state.pdl.get().is_none() {
                state.pdl.set(PdlRef::new()).expect("first");
            }
            let pdl = state.pdl.get();
            if holds {
                pdl.expect("has one").lock();
            }
            let got = state.access(in_callback, |g| g.queue.enq(b"x")).is_some();
            if holds {
                // SAFETY: locked just above on this thread.
                unsafe { pdl.expect("has one").unlock() };
            }
            assert_eq!(
                got, granted,
                "pdl {has_pdl}, callback {in_callback}, holds {holds}"
            );
            assert!(!pdl.is_some_and(PdlRef::is_locked), "left unlocked");
        }
        // Every granted call enqueued one byte.
        assert_eq!(state.access(true, |g| g.queue.size()), Some(4));
    }
}
