//! Term output from drivers (issue #5): the terms that `erl_drv_output_term` and friends build
//! go to the port's owner or to any process of the port's runtime.

use drv_abi::{Receiver, TermHost, TermPort, Undeliverable};
use drv_term::Term;

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
        TermPort::Handle(handle) => handle as usize as u64,
        TermPort::Id(id) => id.local_id().ok_or(Undeliverable::NoPort)?,
    };
    port::with_port_number(handle, f).unwrap_or(Err(Undeliverable::NoPort))
}

/// The live process `to` names, seen from `port`.
fn receiver(port: &PortCell, to: Receiver) -> Result<std::sync::Arc<Process>, Undeliverable> {
    let process = match to {
        Receiver::Owner => Some(port.state.lock().owner.clone()),
        // Processes of other runtimes are out of reach, as other nodes' would be.
        Receiver::Process(pid) => Runtime::upgrade(port).and_then(|rt| rt.process_of(&pid)),
    };
    process
        .filter(|p| p.is_alive())
        .ok_or(Undeliverable::NoReceiver)
}

impl TermHost for GlobalHost {
    fn deliver_term(&self, port: TermPort, to: Receiver, term: Term) -> Result<(), Undeliverable> {
        with_term_port(port, |cell| {
            receiver(cell, to)?.deliver(term);
            Ok(())
        })
    }

    fn check_term_delivery(
        &self,
        port: TermPort,
        to: Option<Receiver>,
    ) -> Result<(), Undeliverable> {
        with_term_port(port, |cell| match to {
            Some(to) => receiver(cell, to).map(drop),
            None => Ok(()),
        })
    }
}
