//! Work in flight that keeps a driver loaded: pending port timers and async jobs.
//!
//! BEAM takes a reference on the driver handle for each such item; ddll takes one `ddll-core`
//! reference per driver while any item is in flight, counting the items itself, so the common
//! case (items come and go while others are pending) touches only an atomic counter and not
//! the runtime's driver table.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::port::PortCell;
use crate::runtime::{Runtime, Settle};

/// The work in flight of one loaded driver (a field of the runtime's `LoadedDriver`).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// Items in flight. While non-zero, the driver holds one extra `ddll-core` reference.
    count: AtomicUsize,
    /// Serialises the 0 → 1 and 1 → 0 transitions with the reference they take or drop, so
    /// the core sees `reference` and `dereference` in the same order as the counter.
    transition: Mutex<()>,
}

impl InFlight {
    /// One more item of `port`'s driver is in flight. Call it while `port` is open (the port's
    /// own reference guarantees the driver is still loaded).
    pub(crate) fn hold(&self, port: &PortCell) {
        let more = |n: usize| (n > 0).then_some(n + 1);
        if self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, more)
            .is_ok()
        {
            return;
        }
        let _transition = self.transition.lock();
        if self.count.load(Ordering::Acquire) == 0 {
            if let Some(runtime) = Runtime::upgrade(port) {
                // A port of the driver is open, so the driver is in the core's table.
                let _ = runtime.with_core(|core, _| core.reference(port.driver.driver.name()));
            }
        }
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether no item is in flight (an isolated driver's host tells its parent, whose
    /// erl_ddll then holds the driver as this one does).
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// An item of `port`'s driver is done. The last one gives the reference back and returns
    /// the runtime, whose settling (a [`Settle`] the caller drops once it has let go of the
    /// port) may unload the driver.
    fn release(&self, port: &PortCell) -> Option<Runtime> {
        let fewer = |n: usize| (n > 1).then(|| n - 1);
        if self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, fewer)
            .is_ok()
        {
            return None;
        }
        let _transition = self.transition.lock();
        if self.count.fetch_sub(1, Ordering::AcqRel) != 1 {
            return None;
        }
        // Without a runtime (it is being dropped) there is no table to update.
        let runtime = Runtime::upgrade(port)?;
        let _ = runtime.with_core(|core, _| core.dereference(port.driver.driver.name()));
        Some(runtime)
    }
}

/// A port with one item of its driver's work in flight: taken by [`InFlightPort::new`], given
/// back when dropped. The release settles the runtime's erl_ddll work only after letting go of
/// the port, since an unload waits for threads still holding cells of the driver's ports.
#[derive(Debug)]
pub(crate) struct InFlightPort(Option<Arc<PortCell>>);

impl InFlightPort {
    /// One more item in flight for `port`'s driver; `port` must be open.
    pub(crate) fn new(port: Arc<PortCell>) -> InFlightPort {
        port.driver.in_flight.hold(&port);
        InFlightPort(Some(port))
    }
}

impl std::ops::Deref for InFlightPort {
    type Target = Arc<PortCell>;

    fn deref(&self) -> &Arc<PortCell> {
        self.0
            .as_ref()
            .expect("the port is held until the item is dropped")
    }
}

impl Drop for InFlightPort {
    fn drop(&mut self) {
        let Some(port) = self.0.take() else {
            return;
        };
        let settle = port.driver.in_flight.release(&port).map(Settle::owning);
        drop(port);
        drop(settle);
    }
}
