//! `driver_failure*` and `driver_exit`: a driver ends its port, from a callback or from a
//! thread of its own (then possibly deferred to the thread in the port's callback).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use drv_abi::PortFailure;
use drv_term::Term;

use crate::port::PortCell;
use crate::runtime::{atom, Runtime};

/// A [`PortFailure`] kept until the thread holding its port's callback lock runs it.
#[derive(Debug)]
pub(crate) enum DeferredFailure {
    Code(i32),
    Atom(Box<str>),
    Posix(i32),
    Eof,
    Exit(i32),
}

impl From<PortFailure<'_>> for DeferredFailure {
    fn from(how: PortFailure<'_>) -> Self {
        match how {
            PortFailure::Code(n) => DeferredFailure::Code(n),
            PortFailure::Atom(a) => DeferredFailure::Atom(a.into()),
            PortFailure::Posix(e) => DeferredFailure::Posix(e),
            PortFailure::Eof => DeferredFailure::Eof,
            PortFailure::Exit(e) => DeferredFailure::Exit(e),
        }
    }
}

impl DeferredFailure {
    fn as_failure(&self) -> PortFailure<'_> {
        match self {
            DeferredFailure::Code(n) => PortFailure::Code(*n),
            DeferredFailure::Atom(a) => PortFailure::Atom(a),
            DeferredFailure::Posix(e) => PortFailure::Posix(*e),
            DeferredFailure::Eof => PortFailure::Eof,
            DeferredFailure::Exit(e) => PortFailure::Exit(*e),
        }
    }
}

impl Runtime {
    /// `driver_failure*` from a thread that does not hold the port's callback lock while
    /// another thread does — typically a callback joining that very thread, where BEAM (which
    /// takes no lock there) exits the port at once. Waiting for the lock would deadlock, so the
    /// failure is left to the holder, which runs it when its callback ends
    /// ([`Runtime::after_callback`]); a holder outside any callback lets the lock go soon, to
    /// a thread that waits for it and runs the failure then. Returns 0, as the failure would.
    pub(crate) fn defer_failure(&self, port: &Arc<PortCell>, how: PortFailure<'_>) -> i32 {
        port.state
            .lock()
            .set_deferred_failure(DeferredFailure::from(how));
        port.failure_deferred.store(true, Ordering::Release);
        let (runtime, port) = (self.clone(), port.clone());
        let waiter = std::thread::Builder::new()
            .name("ddll-failure".into())
            .spawn(move || {
                let _settle = runtime.settle_at_end();
                let _serial = port.lock.lock();
                runtime.run_deferred_failure(&port);
            });
        if waiter.is_err() {
            // No thread to wait with: the holder's callback end is then the only taker.
            eprintln!("ddll: driver_failure from a driver thread: no thread to wait for the port");
        }
        0
    }

    /// Runs the failure a driver thread left for this port, if any (the caller holds the
    /// port's callback lock).
    pub(crate) fn run_deferred_failure(&self, port: &Arc<PortCell>) {
        if !port.failure_deferred.swap(false, Ordering::AcqRel) {
            return;
        }
        let deferred = port.state.lock().take_deferred_failure();
        if let Some(deferred) = deferred {
            if !port.is_closed() {
                self.driver_failure(port, deferred.as_failure());
            }
        }
    }

    /// A port's driver asked to fail (from the C API). As in BEAM, a port closing with data
    /// queued just terminates; any other drops its queued data and exits without flushing.
    pub(crate) fn driver_failure(&self, port: &Arc<PortCell>, how: PortFailure<'_>) -> i32 {
        if port.queue.is_closing() {
            self.terminate(port);
            return 0;
        }
        let soft_eof = how == PortFailure::Eof && port.eof;
        if !soft_eof {
            crate::queue::clear(port);
        }
        let reason = match how {
            // driver_failure(port, 0) is a normal exit, as in the runtime.
            PortFailure::Code(0) => atom("normal"),
            PortFailure::Code(n) => Term::Int(i64::from(n)),
            PortFailure::Atom(a) => atom(a),
            PortFailure::Posix(e) => atom(&drv_abi::errno_id(e).to_string_lossy()),
            PortFailure::Exit(_) => {
                // driver_exit unlinks the connected process before closing: no exit signal
                // reaches it.
                let connected = *port.owner.pid();
                port.state.lock().links.retain(|l| *l.pid() != connected);
                self.close_port(port, atom("normal"));
                return 0;
            }
            PortFailure::Eof => {
                if port.eof {
                    port.owner
                        .deliver(Term::Tuple(vec![port.term(), atom("eof")]));
                    return 0;
                }
                atom("normal")
            }
        };
        self.close_port(port, reason);
        0
    }
}
