//! The runtime as the C API's [`drv_abi::Host`]: one process-wide host that finds the port
//! (and through it, the runtime) behind each handle a driver passes.

use std::ffi::c_int;

use drv_abi::types::{ErlDrvPort, PORT_FLAG_BINARY};
use drv_abi::{Host, OutputBody, PortFailure, RuntimeFacts};
use drv_term::{DataPiece, Pid};

use crate::port;
use crate::runtime::{Runtime, Settle};

/// The process-wide host.
#[derive(Debug)]
pub(crate) struct GlobalHost;

static GLOBAL_HOST: GlobalHost = GlobalHost;

/// Installs the host and the C API shim, and the message arena's huge page advice (once per
/// process).
pub(crate) fn install() -> Result<(), drv_abi::ShimError> {
    crate::huge_pages::install();
    drv_abi::install_host(&GLOBAL_HOST).map(|_| ())
}

impl Host for GlobalHost {
    fn output(&self, handle: ErlDrvPort, header: &[u8], body: OutputBody<'_>) -> c_int {
        port::with_port(port::number(handle), |port| {
            let body_len = match &body {
                OutputBody::Bytes(b) => b.len(),
                OutputBody::Binary { len, .. } => *len,
                OutputBody::Vector(pieces) => pieces.iter().map(|p| p.bytes().len()).sum(),
            };
            // What a closing port drops is not counted (BEAM does not deliver it either).
            if !port.queue.is_closing() {
                port.bytes.add_input(header.len() + body_len);
            }
            match body {
                OutputBody::Bytes(b) => Runtime::output(port, header, &[DataPiece::Borrowed(b)]),
                OutputBody::Binary {
                    binary,
                    offset,
                    len,
                } => {
                    let piece = if len <= drv_term::INLINE_BINARY_LIMIT {
                        DataPiece::Borrowed(&binary.as_bytes()[offset..offset + len])
                    } else {
                        DataPiece::Shared(binary.to_bytes(offset..offset + len))
                    };
                    Runtime::output(port, header, &[piece]);
                }
                OutputBody::Vector(pieces) => Runtime::output(port, header, pieces),
            }
            0
        })
        .unwrap_or(-1)
    }

    fn failure(&self, handle: ErlDrvPort, how: PortFailure<'_>) -> c_int {
        let Some(port) = port::lookup(port::number(handle)) else {
            return -1;
        };
        let Some(runtime) = Runtime::upgrade(&port) else {
            return -1;
        };
        // A thread outside the port's callbacks while another thread is inside one (maybe
        // joining this thread): left to that thread, not waited for.
        let rc = if port.lock.is_owned_by_current_thread() || port.lock.try_lock().is_some() {
            runtime.driver_failure(&port, how)
        } else {
            runtime.defer_failure(&port, how)
        };
        // From a driver thread (not a callback) this is the end of the operation: settle it
        // once the port is out of hand (inside a callback, settling waits for its end).
        drop(port);
        drop(Settle::owning(runtime));
        rc
    }

    fn set_control_flags(&self, handle: ErlDrvPort, flags: c_int) {
        port::with_port(port::number(handle), |port| {
            Runtime::set_control_binary(port, flags)
        });
    }

    fn port_flags(&self, handle: ErlDrvPort) -> c_int {
        port::with_port(port::number(handle), |port| {
            if port.binary.load(std::sync::atomic::Ordering::Relaxed) {
                PORT_FLAG_BINARY
            } else {
                0
            }
        })
        .unwrap_or(0)
    }

    fn connected(&self, handle: ErlDrvPort) -> Option<Pid> {
        port::with_port(port::number(handle), |port| *port.owner.pid())
    }

    fn caller(&self, handle: ErlDrvPort) -> Option<Pid> {
        port::with_port(port::number(handle), |port| port.caller()).flatten()
    }

    fn consume_timeslice(&self, handle: ErlDrvPort, percent: c_int) -> c_int {
        port::with_port(port::number(handle), |port| port.consume_timeslice(percent)).unwrap_or(-1)
    }

    fn port_id(&self, handle: ErlDrvPort) -> Option<drv_term::Port> {
        port::with_port(port::number(handle), |port| port.id())
    }

    fn set_busy(&self, handle: ErlDrvPort, on: bool) {
        port::with_port(port::number(handle), |port| port.busy.set_port(on));
    }

    fn busy_msgq_limits(
        &self,
        handle: ErlDrvPort,
        low: usize,
        high: usize,
    ) -> Option<(usize, usize)> {
        port::with_port(port::number(handle), |port| {
            port.busy.msgq_limits(low, high, port.driver.driver.flags())
        })
    }

    fn lock_driver(&self, handle: ErlDrvPort) -> c_int {
        let Some(port) = port::lookup(port::number(handle)) else {
            return -1;
        };
        let Some(runtime) = Runtime::upgrade(&port) else {
            return -1;
        };
        if port.driver.driver.file().is_none() {
            // An entry added with add_driver_entry: linked in, it cannot be locked.
            return -1;
        }
        let name = port.driver.driver.name().to_owned();
        // Not held while the driver table is locked: an unload may be waiting for this port
        // to let go.
        drop(port);
        let locked = runtime.lock_driver(&name);
        if locked == 0 {
            crate::isolate::driver_locked();
        }
        locked
    }

    fn async_port_key(&self, handle: ErlDrvPort) -> u32 {
        // The port's slot number: stable for the port's life, spread across ports.
        (handle as usize as u64 & 0xffff_ffff) as u32
    }

    fn set_os_pid(&self, handle: ErlDrvPort, pid: isize) {
        port::with_port(port::number(handle), |port| {
            port.state.lock().set_os_pid(pid)
        });
    }

    fn facts(&self) -> RuntimeFacts {
        RuntimeFacts {
            async_threads: c_int::try_from(crate::async_pool::reported_pool_size())
                .unwrap_or(c_int::MAX),
            scheduler_threads: 1,
            dirty_scheduler_support: true,
        }
    }
}
