//! Drivers that acknowledge their start later (`ERL_DRV_FLAG_USE_INIT_ACK`,
//! `erl_drv_init_ack`).
//!
//! `open_port` on such a driver runs `start` as for any driver: an error it returns fails the
//! open at once, and the data it returns is the port's until the acknowledgement (a `timeout`
//! or `ready_async` before then gets that data). Then, holding no lock, `open_port` waits for
//! the driver to call `erl_drv_init_ack` — from a later callback of any source (they run on
//! other threads, so none waits for the opener) or from a thread of its own. The
//! acknowledgement's data replaces the port's; an `ERL_DRV_ERROR_*` value fails the open as
//! the same value from `start` would, and closes the port without an exit signal (BEAM
//! unlinks the opener first), `stop` getting the data `start` returned.
//!
//! As in BEAM 25, an acknowledgement inside `start` is ignored (BEAM arms its wait after
//! `start` returns), as is every acknowledgement after the first.
//!
//! A port that ends before acknowledging (its driver failed it, an unload killed it, its owner
//! died) completes the open as BEAM 25 does: `open_port` returns the port, whose exit signal is
//! already in the owner's mailbox.

use std::sync::Arc;

use drv_abi::driver::{DriverData, StartError};
use drv_abi::types::ErlDrvPort;
use drv_term::Term;
use parking_lot::{Condvar, Mutex};

use crate::host::GlobalHost;
use crate::port::{self, PortCell};
use crate::runtime::{start_error_term, Runtime, Settle};

/// The acknowledgement a port's `open_port` waits for. Its state changes only under the
/// port's callback lock; the opener reads it under its own mutex.
#[derive(Debug, Default)]
pub(crate) struct InitAck {
    state: Mutex<AckState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
enum AckState {
    /// `start` has not returned (an acknowledgement now is ignored), or nothing waits.
    #[default]
    NotAwaited,
    /// `open_port` waits.
    Awaited,
    /// An error acknowledgement is closing the port; `open_port` learns it once it is gone.
    Refusing,
    /// What `open_port` returns.
    Done(Result<(), Term>),
}

impl InitAck {
    /// `start` has returned data: from now on an acknowledgement completes the open.
    pub(crate) fn await_from_now(&self) {
        *self.state.lock() = AckState::Awaited;
    }

    /// Waits for the outcome of the open: `Err` with the reason `open_port` fails with.
    pub(crate) fn wait(&self) -> Result<(), Term> {
        let mut state = self.state.lock();
        loop {
            match &*state {
                AckState::NotAwaited => return Ok(()),
                AckState::Done(outcome) => return outcome.clone(),
                AckState::Awaited | AckState::Refusing => self.changed.wait(&mut state),
            }
        }
    }

    /// The port is gone: an open still waiting completes with it.
    pub(crate) fn port_ended(&self) {
        let mut state = self.state.lock();
        if matches!(*state, AckState::Awaited) {
            *state = AckState::Done(Ok(()));
            self.changed.notify_all();
        }
    }

    /// Whether an acknowledgement now would complete the open.
    fn is_awaited(&self) -> bool {
        matches!(*self.state.lock(), AckState::Awaited)
    }

    /// The open is refused; the port is about to close.
    fn refuse(&self) {
        *self.state.lock() = AckState::Refusing;
    }

    /// Hands `outcome` to the waiting `open_port`.
    fn finish(&self, outcome: Result<(), Term>) {
        *self.state.lock() = AckState::Done(outcome);
        self.changed.notify_all();
    }
}

impl drv_abi::InitAckHost for GlobalHost {
    fn init_ack(&self, handle: ErlDrvPort, result: Result<DriverData, StartError>) {
        let Some(port) = port::owned(handle) else {
            return;
        };
        let Some(runtime) = Runtime::upgrade(&port) else {
            return;
        };
        acknowledge(&runtime, &port, result);
        // From a driver thread this ends the operation (a refused port closed): settle it,
        // holding no port (inside a callback, settling waits for the callback's end).
        drop(port);
        drop(Settle::owning(runtime));
    }
}

/// `erl_drv_init_ack` on `port`, under its callback lock (taken here: the driver may call from
/// a thread of its own).
fn acknowledge(runtime: &Runtime, port: &Arc<PortCell>, result: Result<DriverData, StartError>) {
    let Some(ack) = port.init_ack() else {
        return;
    };
    let _serial = port.lock.lock();
    if port.is_closed() || !ack.is_awaited() {
        return;
    }
    match result {
        Ok(data) => {
            port.set_data(data);
            ack.finish(Ok(()));
        }
        Err(error) => {
            ack.refuse();
            // BEAM unlinks the opener, then fails the port with `normal`: no exit signal, no
            // flush, `stop` with the data `start` returned.
            crate::queue::clear(port);
            runtime.close_port_quietly(port);
            ack.finish(Err(start_error_term(error)));
        }
    }
}
