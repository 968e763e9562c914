//! What the runtime provides for term output (issue #5).

use std::sync::atomic::{AtomicUsize, Ordering};

use drv_term::{FlatLog, FlatTerm, LoggedSpec, Pid, Port};

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

/// Receivers for which a host may take terms into logs ([`TermHost::log_term`]), as hosts
/// count them: term output asks [`TermHost::log_term`] only while there are some, so that the
/// usual case (none) costs one load and no call.
static TERM_LOG_RECEIVERS: AtomicUsize = AtomicUsize::new(0);

/// Counts a receiver for which the host may from now on take terms into a log
/// ([`TermHost::log_term`]); [`term_log_receiver_removed`] counts it off. Until a host counts
/// one, term output does not ask it.
pub fn term_log_receiver_added() {
    TERM_LOG_RECEIVERS.fetch_add(1, Ordering::Relaxed);
}

/// Counts off a receiver counted by [`term_log_receiver_added`] (never below none).
pub fn term_log_receiver_removed() {
    let _ =
        TERM_LOG_RECEIVERS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

/// Whether a host counts any receiver it may take terms into a log for: a hint (a receiver
/// counted a moment ago may be missed, and the term is then built as usual).
#[inline]
pub(crate) fn term_log_receivers() -> bool {
    TERM_LOG_RECEIVERS.load(Ordering::Relaxed) != 0
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

    /// Sends a term from `port` to `to` by building it straight into a log at the end of the
    /// receiver's mailbox, when the receiver has a deep backlog that keeps one: `write` builds
    /// it there ([`FlatLog::push_spec`]), and a host calls it once for each log it offers. A
    /// term so sent costs no buffer of its own.
    ///
    /// `Ok(false)` when it did not send it (no such backlog, or `write` gave anything but
    /// [`LoggedSpec::Logged`] for the last log offered): the caller builds the term and calls
    /// [`deliver_term`](Self::deliver_term). An undelivered term is the same: the caller goes on
    /// the same way, so that its result is the one the spec's errors and the order of the
    /// runtime's checks give. By default, `Ok(false)`. Asked only while the host counts
    /// receivers with [`term_log_receiver_added`].
    fn log_term(
        &self,
        port: TermPort,
        to: Receiver,
        write: &mut dyn FnMut(&mut FlatLog) -> LoggedSpec,
    ) -> Result<bool, Undeliverable> {
        let _ = (port, to, write);
        Ok(false)
    }

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

#[cfg(test)]
mod tests {
    use super::{term_log_receiver_added, term_log_receiver_removed, term_log_receivers};

    /// The count term output reads: each receiver counted until it is counted off, and a
    /// removal too many does not leave the count wrapped around to "many".
    #[test]
    fn term_log_receivers_are_counted_and_never_below_none() {
        assert!(!term_log_receivers());
        term_log_receiver_added();
        term_log_receiver_added();
        term_log_receiver_removed();
        assert!(term_log_receivers(), "one is left");
        term_log_receiver_removed();
        assert!(!term_log_receivers());
        term_log_receiver_removed();
        assert!(!term_log_receivers(), "a removal too many wrapped around");
        term_log_receiver_added();
        assert!(term_log_receivers());
        term_log_receiver_removed();
        assert!(!term_log_receivers());
    }
}
