//! What the runtime provides for the driver queue and port data locks (issue #4).

use std::cell::Cell;
use std::ptr::NonNull;

use drv_queue::{ErlDrvPDL, PortQueue};

use crate::types::ErlDrvPort;

/// A queue the host granted this thread as held, for the fast path of the queue calls.
#[derive(Clone, Copy)]
struct RememberedGrant {
    port: ErlDrvPort,
    queue: Option<NonNull<PortQueue>>,
}

thread_local! {
    /// Set by the host with [`remember_granted_queue`], cleared with [`forget_granted_queue`].
    static GRANTED: Cell<RememberedGrant> = const {
        Cell::new(RememberedGrant { port: std::ptr::null_mut(), queue: None })
    };
}

/// Lets this thread's next queue calls for `port` use `queue` without asking the host, until
/// the thread calls [`forget_granted_queue`]; a later grant replaces this one.
///
/// # Safety
/// Until [`forget_granted_queue`] is called on this thread, `queue` must be the live queue of
/// `port` and [`QueueHost::queue_access`] would grant it to this thread as
/// [`held`](QueueAccess::held): the host forgets the grant before that stops being true (the
/// callback holding the lock ends, a port data lock appears, the port terminates).
#[inline]
pub unsafe fn remember_granted_queue(port: ErlDrvPort, queue: NonNull<PortQueue>) {
    GRANTED.with(|g| {
        g.set(RememberedGrant {
            port,
            queue: Some(queue),
        });
    });
}

/// Ends the grant remembered on this thread, if any.
#[inline]
pub fn forget_granted_queue() {
    GRANTED.with(|g| {
        g.set(RememberedGrant {
            port: std::ptr::null_mut(),
            queue: None,
        });
    });
}

/// The queue of `port` if this thread has a remembered grant for it (see
/// [`remember_granted_queue`]): usable as [`QueueAccess::held`] until the thread returns to
/// the driver.
#[inline(always)]
pub(crate) fn granted_queue(port: ErlDrvPort) -> Option<NonNull<PortQueue>> {
    let granted = GRANTED.with(Cell::get);
    if granted.port == port {
        granted.queue
    } else {
        None
    }
}

/// How the calling thread may use a port's driver queue, as granted by
/// [`QueueHost::queue_access`]: not at all; because it holds the lock that guards the queue
/// (the port's callback lock, or its PDL); or once it has locked the port's PDL (it runs a
/// callback of the port but does not hold the PDL that guards the queue). A granted queue
/// may be used until the thread returns to its caller (the driver).
///
/// Two words, so that it comes back from the host in registers (the hot path of every queue
/// call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueAccess {
    queue: *mut PortQueue,
    lock_first: ErlDrvPDL,
}

impl QueueAccess {
    /// No access: the port is not live, or the thread may not use its queue.
    pub const REFUSED: QueueAccess = QueueAccess {
        queue: std::ptr::null_mut(),
        lock_first: std::ptr::null_mut(),
    };

    /// The thread holds the lock that guards `queue`.
    #[inline]
    pub fn held(queue: NonNull<PortQueue>) -> QueueAccess {
        QueueAccess {
            queue: queue.as_ptr(),
            lock_first: std::ptr::null_mut(),
        }
    }

    /// The thread may use `queue` once it holds `pdl` (a live lock).
    #[inline]
    pub fn lock_first(queue: NonNull<PortQueue>, pdl: NonNull<drv_queue::ErlDrvPdlData>) -> Self {
        QueueAccess {
            queue: queue.as_ptr(),
            lock_first: pdl.as_ptr(),
        }
    }

    /// The granted queue, `None` when refused.
    #[inline]
    pub fn queue(&self) -> Option<NonNull<PortQueue>> {
        NonNull::new(self.queue)
    }

    /// The lock to take before using the queue, if any.
    #[inline]
    pub fn lock_first_pdl(&self) -> Option<ErlDrvPDL> {
        (!self.lock_first.is_null()).then_some(self.lock_first)
    }
}

/// The part of [`Host`](crate::Host) behind the driver queue and port data locks (issue #4).
///
/// The host owns one [`PortQueue`] per port and decides who may touch it: the C contract says
/// a queue call comes from a callback of the port, or from any thread holding the port's data
/// lock (PDL) once the port has one. The queue operations themselves are done by this crate.
pub trait QueueHost {
    /// Whether and how the calling thread may use the driver queue of `port`. A granted queue
    /// stays allocated, and is used by no other thread, for as long as the grant says; the
    /// host refuses ports that are not live (never opened, or terminated).
    fn queue_access(&self, port: ErlDrvPort) -> QueueAccess;

    /// `driver_pdl_create`: gives `port` a port data lock, or `None` when the port is not live,
    /// already has one, or the caller is not running one of its callbacks. The port keeps the
    /// lock's first reference (until it terminates); the returned handle borrows it.
    fn pdl_create(&self, port: ErlDrvPort) -> Option<ErlDrvPDL>;
}
