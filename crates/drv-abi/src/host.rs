//! The runtime behind the C API.
//!
//! The exported functions in [`crate::api`] turn C arguments into safe Rust values and ask the
//! installed [`Host`] to act. The facade crate `ddll` implements it; a test or an alternative
//! runtime can implement it too. Port handles reach the host as the opaque [`ErlDrvPort`]
//! values the host itself handed to drivers: this crate never dereferences them.

use std::ffi::c_int;
use std::sync::OnceLock;

use crate::types::ErlDrvPort;
use drv_queue::BinaryRef;
use drv_term::{Pid, Port};

mod async_pool;
mod create_port;
mod init_ack;
mod linked_in;
mod monitor;
mod queue;
mod select;
mod term_output;
mod timer;

pub use async_pool::{AsyncFn, AsyncHost, AsyncJob};
pub use create_port::CreatePortHost;
pub use init_ack::InitAckHost;
pub use linked_in::LinkedInHost;
pub use monitor::MonitorHost;
pub(crate) use queue::granted_queue;
pub use queue::{forget_granted_queue, remember_granted_queue, QueueAccess, QueueHost};
pub use select::SelectHost;
pub(crate) use term_output::term_log_receivers;
pub use term_output::{
    term_log_receiver_added, term_log_receiver_removed, Receiver, TermHost, TermPort, Undeliverable,
};
pub use timer::TimerHost;

/// What a driver sends with one of the `driver_output*` calls.
#[derive(Debug)]
pub enum OutputBody<'a> {
    /// Bytes to copy (`driver_output`, `driver_output2`).
    Bytes(&'a [u8]),
    /// A slice of a driver binary, shared without copying (`driver_output_binary`).
    Binary {
        /// The binary (one reference held for the duration of the call).
        binary: &'a BinaryRef,
        /// Offset of the slice in the binary.
        offset: usize,
        /// Length of the slice.
        len: usize,
    },
    /// Pieces of an I/O vector, after `skip` (`driver_outputv`); a piece larger than
    /// [`drv_term::INLINE_BINARY_LIMIT`] is shared when it lies in a binary, the others are
    /// lent. A binary-mode port receives them as separate binaries, the last one as the list's
    /// tail; no piece at all means no body (also `driver_output*` with a NULL buffer).
    Vector(&'a [drv_term::DataPiece<'a>]),
}

/// How a driver asks for its port to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortFailure<'a> {
    /// `driver_failure(port, n)`: exit with the integer reason.
    Code(c_int),
    /// `driver_failure_atom(port, "a")`: exit with the atom.
    Atom(&'a str),
    /// `driver_failure_posix(port, errno)`: exit with the errno's atom (`eio`, ...).
    Posix(c_int),
    /// `driver_failure_eof(port)`: end of file.
    Eof,
    /// `driver_exit(port, errno)`: `normal` for 0, else the errno's atom.
    Exit(c_int),
}

/// The facts `driver_system_info` reports that depend on the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeFacts {
    /// Threads in the async pool.
    pub async_threads: c_int,
    /// Threads that run callbacks ("schedulers").
    pub scheduler_threads: c_int,
    /// Dirty scheduler support (always on in OTP 25).
    pub dirty_scheduler_support: bool,
}

/// The runtime a driver talks to. All methods are called from driver code, possibly from
/// several threads; they must not panic (the callers catch it, but a panic is a bug).
///
/// Each later capability has its own part ([`QueueHost`], [`TermHost`], [`TimerHost`],
/// [`AsyncHost`], [`LinkedInHost`], [`SelectHost`], [`MonitorHost`], [`CreatePortHost`],
/// [`InitAckHost`]) so that it can be read, and implemented, on its own.
pub trait Host:
    QueueHost
    + TermHost
    + TimerHost
    + AsyncHost
    + LinkedInHost
    + SelectHost
    + MonitorHost
    + CreatePortHost
    + InitAckHost
    + Send
    + Sync
    + 'static
{
    /// `driver_output*`: send `header` (as list elements) then `body` to the port's owner.
    /// Returns 0, or -1 for an invalid/closed port.
    fn output(&self, port: ErlDrvPort, header: &[u8], body: OutputBody<'_>) -> c_int;
    /// `driver_failure*` / `driver_exit`. Returns 0, or -1 for an invalid port.
    fn failure(&self, port: ErlDrvPort, how: PortFailure<'_>) -> c_int;
    /// `set_port_control_flags`.
    fn set_control_flags(&self, port: ErlDrvPort, flags: c_int);
    /// `get_port_flags`: `PORT_FLAG_BINARY` / `PORT_FLAG_LINE` bits, 0 for a bad port.
    fn port_flags(&self, port: ErlDrvPort) -> c_int;
    /// `driver_connected`: the connected process (`None` for a bad port). The C API encodes
    /// it with [`Pid::to_local_term_data`], the encoding term specs are read with.
    fn connected(&self, port: ErlDrvPort) -> Option<Pid>;
    /// `driver_caller`: the process that made the current call into the driver.
    fn caller(&self, port: ErlDrvPort) -> Option<Pid>;
    /// `erl_drv_consume_timeslice`: charge `percent` (already clamped to 1..=100) of a time
    /// slice to the current callback of `port`; 1 once the slice is used up, else 0; -1 for a
    /// bad port.
    fn consume_timeslice(&self, port: ErlDrvPort, percent: c_int) -> c_int;
    /// `driver_mk_port`: the port's identity (encoded with [`Port::to_local_term_data`]).
    fn port_id(&self, port: ErlDrvPort) -> Option<Port>;
    /// `set_busy_port`.
    fn set_busy(&self, port: ErlDrvPort, on: bool);
    /// `erl_drv_busy_msgq_limits` with the values the driver passed
    /// (`ERL_DRV_BUSY_MSGQ_READ_ONLY` for a NULL pointer): the values to write back, `None`
    /// for a bad port.
    fn busy_msgq_limits(&self, port: ErlDrvPort, low: usize, high: usize)
        -> Option<(usize, usize)>;
    /// `driver_lock_driver`: make the port's driver permanent. 0, or -1.
    fn lock_driver(&self, port: ErlDrvPort) -> c_int;
    /// `driver_async_port_key`: a per-port key for `driver_async`.
    fn async_port_key(&self, port: ErlDrvPort) -> u32;
    /// `erl_drv_set_os_pid`.
    fn set_os_pid(&self, port: ErlDrvPort, pid: isize);
    /// Runtime facts for `driver_system_info`.
    fn facts(&self) -> RuntimeFacts;
}

static HOST: OnceLock<&'static dyn Host> = OnceLock::new();

/// Installs the host (once per process) and the API shim. Returns the host in force, which is
/// the first one installed.
pub fn install_host(host: &'static dyn Host) -> Result<&'static dyn Host, crate::ShimError> {
    let installed = *HOST.get_or_init(|| host);
    crate::shim::install()?;
    Ok(installed)
}

/// The installed host, if any.
pub(crate) fn host() -> Option<&'static dyn Host> {
    HOST.get().copied()
}
