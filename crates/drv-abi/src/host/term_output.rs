//! What the runtime provides for term output (issue #5).

use drv_term::{FlatTerm, Pid, Port};

use crate::types::ErlDrvPort;

/// The port a term is sent from, as the C function named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermPort {
    /// The port handle (`driver_output_term`, `driver_send_term`).
    Handle(ErlDrvPort),
    /// The port's identity, from `driver_mk_port` (`erl_drv_output_term`,
    /// `erl_drv_send_term`; these may be called from any thread).
    Id(Port),
}

/// Who is to receive a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// The port's owner (connected process): the `*_output_term` functions.
    Owner,
    /// Any process of the runtime: the `*_send_term` functions.
    Process(Pid),
}

/// Why a term was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undeliverable {
    /// The port does not exist (never did, or it has closed): the C call returns -1.
    NoPort,
    /// The receiver does not exist or is not alive: the C call returns 0.
    NoReceiver,
    /// The port is closing with data in its driver queue: BEAM drops what it sends, and the
    /// C call returns 0 whatever the spec (a closing port is checked before the spec).
    PortClosing,
}

/// The part of [`Host`](crate::Host) behind term output (issue #5).
///
/// The C functions build the term from the driver's spec (rejecting a bad spec with -1 before
/// the host sees anything) and then ask the host to deliver it. Pids and ports reach the host
/// decoded with `drv_term`'s encodings ([`Pid::from_local_term_data`],
/// [`Port::from_local_term_data`]), which the host's `connected`, `caller` and `port_id`
/// answers are encoded with.
pub trait TermHost {
    /// Sends the term in `term` from `port` to `to`, as the last step of a successful term
    /// output call. The term comes in its one-buffer form, as it was built from the spec.
    ///
    /// The host takes the term out of `term` once it has found the receiver; an undelivered
    /// term stays for the caller. Moving the term by value through the host's calls would
    /// copy it through the stack right after it was built, and such a copy waits for the
    /// stores that built it: in the term output benchmark that cost more than building the
    /// term's records. Taken late, it is copied after other work (a port lookup, a lock's
    /// atomic instruction) has let those stores through.
    ///
    /// A port whose `stop` callback is running still sends (as in BEAM); a port that has
    /// closed is [`Undeliverable::NoPort`].
    fn deliver_term(
        &self,
        port: TermPort,
        to: Receiver,
        term: &mut Option<FlatTerm>,
    ) -> Result<(), Undeliverable>;

    /// Checks, without sending anything, what [`deliver_term`](Self::deliver_term) would find:
    /// the port, and the receiver when one is given. Asked where the runtime checks the port
    /// and receiver before it has finished with the spec (a receiver that is no pid, duplicate
    /// map keys, and for a rejected spec whether the port is closing), so that the return
    /// value is the runtime's.
    fn check_term_delivery(
        &self,
        port: TermPort,
        to: Option<Receiver>,
    ) -> Result<(), Undeliverable>;
}
