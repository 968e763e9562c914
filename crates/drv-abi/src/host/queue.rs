//! What the runtime provides for the driver queue and port data locks (issue #4).

use drv_queue::{ErlDrvPDL, PortQueue};

use crate::types::ErlDrvPort;

/// The part of [`Host`](crate::Host) behind the driver queue and port data locks (issue #4).
///
/// The host owns one [`PortQueue`] per port and decides who may touch it: the C contract says
/// a queue call comes from a callback of the port, or from any thread holding the port's data
/// lock (PDL) once the port has one. The queue operations themselves are done by this crate.
pub trait QueueHost {
    /// Runs `op` once with exclusive access to the driver queue of `port` and returns true; or
    /// returns false without running it when `port` is not a live port (never opened, or
    /// terminated) or the calling thread may not use its queue.
    ///
    /// `op` must not call back into the host.
    fn with_queue(&self, port: ErlDrvPort, op: &mut dyn FnMut(&mut PortQueue)) -> bool;

    /// `driver_pdl_create`: gives `port` a port data lock, or `None` when the port is not live,
    /// already has one, or the caller is not running one of its callbacks. The port keeps the
    /// lock's first reference (until it terminates); the returned handle borrows it.
    fn pdl_create(&self, port: ErlDrvPort) -> Option<ErlDrvPDL>;
}
