//! Term output from drivers (issue #5): the terms that `erl_drv_output_term` and friends build
//! go to the port's owner or to any process of the port's runtime.

use drv_abi::{Receiver, TermHost, TermPort, Undeliverable};
use drv_term::{FlatLog, FlatTerm, LoggedSpec};

use crate::host::GlobalHost;
use crate::port::{self, PortCell};
use crate::process::Process;
use crate::runtime::Runtime;

/// Runs `f` with the port a term output call names; `NoPort` once the port has closed (a port
/// whose `stop` is running is still in the table and still sends, as in BEAM).
fn with_term_port<R>(
    port: TermPort,
    f: impl FnOnce(&PortCell) -> Result<R, Undeliverable>,
) -> Result<R, Undeliverable> {
    let handle = match port {
        TermPort::Handle(handle) => port::number(handle),
        TermPort::Id(id) => id.local_id().ok_or(Undeliverable::NoPort)?,
    };
    port::with_port(handle, f).unwrap_or(Err(Undeliverable::NoPort))
}

/// Whether a closed port has also left the table: its `stop` has run (a driver may still reach
/// it as the current port of the callback that failed it). Until then it may still send.
fn gone(port: &PortCell) -> bool {
    port::lookup(port.handle).is_none()
}

/// Whether `port` may send: not once it has left the table, nor while it is closing with data
/// queued (BEAM drops that port's output, terms too).
#[inline]
fn may_send(port: &PortCell) -> Result<(), Undeliverable> {
    if port.is_closed() && gone(port) {
        return Err(Undeliverable::NoPort);
    }
    if port.queue.is_closing() {
        return Err(Undeliverable::PortClosing);
    }
    Ok(())
}

/// Calls `f` with the live process `to` names, seen from `port`.
#[inline]
fn with_receiver<R>(
    port: &PortCell,
    to: Receiver,
    f: impl FnOnce(&Process) -> R,
) -> Result<R, Undeliverable> {
    may_send(port)?;
    let alive = |p: &Process| p.is_alive().then(|| f(p));
    match to {
        // The connected process is one atomic load: no lock, no reference count traffic.
        Receiver::Owner => alive(&port.owner),
        // Processes of other runtimes are out of reach, as other nodes' would be.
        Receiver::Process(pid) => Runtime::upgrade(port)
            .and_then(|rt| rt.process(&pid))
            .and_then(|p| alive(&p)),
    }
    .ok_or(Undeliverable::NoReceiver)
}

impl TermHost for GlobalHost {
    fn deliver_term(
        &self,
        port: TermPort,
        to: Receiver,
        term: &mut Option<FlatTerm>,
    ) -> Result<(), Undeliverable> {
        with_term_port(port, |cell| {
            with_receiver(cell, to, |p| {
                p.deliver(term.take().expect("a term to deliver"))
            })
        })
    }

    fn log_term(
        &self,
        port: TermPort,
        to: Receiver,
        write: &mut dyn FnMut(&mut FlatLog) -> LoggedSpec,
    ) -> Result<bool, Undeliverable> {
        with_term_port(port, |cell| with_receiver(cell, to, |p| p.log_term(write)))
    }

    fn check_term_delivery(
        &self,
        port: TermPort,
        to: Option<Receiver>,
    ) -> Result<(), Undeliverable> {
        with_term_port(port, |cell| match to {
            Some(to) => with_receiver(cell, to, |_| ()),
            None => may_send(cell),
        })
    }
}
