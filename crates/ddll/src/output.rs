//! Data output from drivers (`driver_output*`, through [`drv_abi::Host::output`]): the
//! `{Port, {data, Data}}` messages to a port's owner. Terms (`erl_drv_output_term`) are
//! [`crate::term_output`]'s.

use std::sync::atomic::Ordering;

use drv_term::Atom;

use crate::port::{self, PortCell};
use crate::runtime::Runtime;

impl Runtime {
    /// Output from a driver to its port's owner, `{Port, {data, Data}}` (see
    /// [`drv_term::FlatTerm::port_data`] for `Data`, as BEAM 25 builds it for
    /// `driver_output*`), unless the port has closed: a message in one buffer, or, behind
    /// other messages, a record in the owner's data log (issue 16).
    #[inline]
    pub(crate) fn output(port: &PortCell, header: &[u8], pieces: &[drv_term::DataPiece<'_>]) {
        // Interning takes a lock; the atom of every data message is looked up once.
        static DATA: std::sync::OnceLock<Atom> = std::sync::OnceLock::new();
        let data_atom = *DATA.get_or_init(|| Atom::new("data"));
        // A port closing with data queued sends nothing more (BEAM drops it). A terminating
        // port still sends from its `stop` (after the owner's 'EXIT', as in BEAM); once it has
        // left the table it sends nothing.
        if port.queue.is_closing() {
            return;
        }
        if !port.is_closed() || port::lookup(port.handle).is_some() {
            let binary = port.binary.load(Ordering::Relaxed);
            let owner = port.owner.get();
            // A binary `{Port, {data, <<Data>>}}` to a mirror in an isolated driver's host:
            // recorded as the host's reply carries it, no message made.
            if let ([], [piece], true) = (header, pieces, binary) {
                let data = piece.bytes();
                if owner.record_output(|records, to| {
                    crate::isolate::frame::push_output(records, to, port.handle, data).is_some()
                }) {
                    return;
                }
            }
            owner.deliver_port_data(port.id(), data_atom, header, pieces, binary);
        }
    }
}
