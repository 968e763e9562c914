//! `port_command`: a command from a process to a port, run in the sender's thread under the
//! port's callback lock by the driver's `output` or `outputv`, and held up while the port (or
//! its message queue) is busy (the state is [`crate::busy`]'s). `Port ! {Pid, {command, Data}}`
//! ([`crate::port_signal`]) dispatches through the same code.

use std::sync::Arc;

use drv_abi::types::ERL_DRV_FLAG_SOFT_BUSY;
use drv_queue::BinaryRef;
use drv_term::{Pid, Term};

use crate::busy::Admission;
use crate::error::Exception;
use crate::options::CommandOptions;
use crate::port::{self, PortCell};
use crate::runtime::{atom, Runtime};

/// What became of a command offered to a port.
pub(crate) enum Offered {
    /// It ran.
    Done,
    /// The port (or its message queue) is busy: nothing was sent.
    Busy(Arc<PortCell>),
}

/// A command's data as the port's driver takes it.
enum Command {
    /// All bytes, for `output`.
    Flat(Vec<u8>),
    /// BEAM's segments, for `outputv`.
    Vector(crate::iodata::IoVector),
}

impl Command {
    /// `None` when `data` is not iodata.
    fn of(port: &PortCell, data: &Term) -> Option<Command> {
        if port.driver.driver.has_outputv() {
            crate::iodata::io_vector(data).map(Command::Vector)
        } else {
            crate::iodata::flatten_port_data(data).map(Command::Flat)
        }
    }
}

/// Port commands (`erlang:port_command/2,3`).
impl Runtime {
    /// `port_command(Port, Data)`: the driver's `outputv` when it has one (with the data cut
    /// into segments as BEAM cuts it: see [`crate::iodata::io_vector`]), else `output`. While
    /// the port is busy (`set_busy_port`, or its message queue) the caller waits, as BEAM
    /// suspends it, until the driver clears busy; a port that closes meanwhile gives `badarg`.
    pub fn port_command(
        &self,
        caller: &Pid,
        id: &drv_term::Port,
        data: &Term,
    ) -> Result<(), Exception> {
        self.port_command_with(caller, id, data, CommandOptions::default())
            .map(|_| ())
    }

    /// `erlang:port_command(Port, Data, Options)`: `Ok(false)` when the port is busy and
    /// `options.nosuspend` is set (nothing is sent), else as [`Runtime::port_command`] with
    /// `Ok(true)`. `force` on a driver without `ERL_DRV_FLAG_SOFT_BUSY` raises `notsup`.
    pub fn port_command_with(
        &self,
        caller: &Pid,
        id: &drv_term::Port,
        data: &Term,
        options: CommandOptions,
    ) -> Result<bool, Exception> {
        let _settle = self.settle_at_end();
        self.command_term(caller, id, data, options, |_| Err(Exception::badarg()))
    }

    /// A command of `data` from `caller` to the port `id`, as `port_command` and
    /// `Port ! {Pid, {command, Data}}` both send it: waits while the port is busy (see
    /// [`Runtime::command_unless_busy`]), then cuts `data` as the driver takes it and runs the
    /// driver's `output` or `outputv`. Data that is not iodata is the caller's `not_iodata`.
    pub(crate) fn command_term(
        &self,
        caller: &Pid,
        id: &drv_term::Port,
        data: &Term,
        options: CommandOptions,
        not_iodata: impl Fn(&Arc<PortCell>) -> Result<(), Exception>,
    ) -> Result<bool, Exception> {
        let size = || crate::iodata::flatten_port_data(data).map_or(0, |bytes| bytes.len());
        self.command_unless_busy(id, options, size, |port| match Command::of(port, data) {
            Some(command) => self.run_command(caller, port, &command),
            None => not_iodata(port),
        })
    }

    /// `port_command` with the data already flat (the fast path of the echo benchmark); an
    /// `outputv` driver gets it as one segment, as BEAM gives a binary. Waits while the port is
    /// busy, as `port_command`.
    pub fn port_command_bytes(
        &self,
        caller: &Pid,
        id: &drv_term::Port,
        bytes: &[u8],
    ) -> Result<(), Exception> {
        let _settle = self.settle_at_end();
        self.command_unless_busy(
            id,
            CommandOptions::default(),
            || bytes.len(),
            |port| self.command_bytes(caller, port, bytes),
        )
        .map(|_| ())
    }

    /// `port_command` with the data already cut into `outputv`'s segments (`lengths`, which
    /// add up to `bytes.len()`): an isolated driver's host gets a command so from its parent.
    /// A driver without `outputv` gets the bytes. The parent's port admitted the command, busy
    /// or not (it knows the busy state the host tells it): it runs now.
    pub(crate) fn port_command_segments(
        &self,
        caller: &Pid,
        id: &drv_term::Port,
        bytes: &[u8],
        lengths: &[usize],
    ) -> Result<(), Exception> {
        if lengths
            .iter()
            .try_fold(0usize, |sum, &l| sum.checked_add(l))
            != Some(bytes.len())
        {
            return Err(Exception::badarg());
        }
        let _settle = self.settle_at_end();
        let run = |port: &Arc<PortCell>| {
            if port.is_closed() {
                return Err(Exception::badarg());
            }
            if port.driver.driver.has_outputv() {
                let command = Command::Vector(crate::iodata::IoVector {
                    data: bytes.to_vec(),
                    segments: lengths.to_vec(),
                });
                self.run_command(caller, port, &command)
            } else {
                self.command_bytes(caller, port, bytes)
            }
        };
        // The port borrowed under its callback lock when this thread ran the last command on
        // it, as `port_command` does (no table look-up, no count taken); else looked up.
        let handle = id.local_id().ok_or_else(Exception::badarg)?;
        let locked = port::with_locked(handle, |port| {
            let ours = std::ptr::eq(port.runtime.as_ptr(), Arc::as_ptr(&self.inner));
            (ours && !port.queue.is_closing()).then(|| run(port))
        });
        if let Some(Some(done)) = locked {
            return done;
        }
        let port = self.open_port_of(id)?;
        port::remember_lock(&port);
        let _serial = port.lock.lock();
        run(&port)
    }

    /// Runs `command` on the port `id` unless it is busy: then waits, holding no lock, for the
    /// driver to clear busy and tries again, or with `nosuspend` returns `Ok(false)`. As BEAM,
    /// busy is checked before the data is looked at.
    fn command_unless_busy(
        &self,
        id: &drv_term::Port,
        options: CommandOptions,
        size: impl Fn() -> usize,
        command: impl Fn(&Arc<PortCell>) -> Result<(), Exception>,
    ) -> Result<bool, Exception> {
        loop {
            let offered = self.with_command_port(id, options.force, &size, |port, queued| {
                // A command that queued was admitted then: it runs, as BEAM runs a port's
                // queued tasks whether it is busy or not.
                if !queued && port.busy.admission(options.force) == Admission::Busy {
                    return Ok(Offered::Busy(port.clone()));
                }
                command(port).map(|()| Offered::Done)
            })?;
            match offered {
                Offered::Done => return Ok(true),
                Offered::Busy(_) if options.nosuspend => return Ok(false),
                Offered::Busy(port) => Self::wait_until_not_busy(&port),
            }
        }
    }

    /// Waits until `port` is not busy or no longer takes commands.
    fn wait_until_not_busy(port: &PortCell) {
        port.busy
            .wait_until_clear(|| port.is_closed() || port.queue.is_closing());
    }

    /// Runs a command on the port `id`: on the hot path of `port_command`, with the port
    /// borrowed under its callback lock rather than counted (see [`port::with_locked`]). A
    /// command that has to wait for the lock (another thread runs a callback of the port) is
    /// the port's message queue meanwhile: its `size()` counts there (see [`crate::busy`]).
    ///
    /// `force` on a driver without `ERL_DRV_FLAG_SOFT_BUSY` is `notsup`; a busy port (or
    /// message queue) is [`Offered::Busy`] at once, without waiting for the lock. `command`
    /// learns whether the command waited, queued.
    #[inline]
    fn with_command_port(
        &self,
        id: &drv_term::Port,
        force: bool,
        size: impl Fn() -> usize,
        command: impl Fn(&Arc<PortCell>, bool) -> Result<Offered, Exception>,
    ) -> Result<Offered, Exception> {
        let soft_busy = |port: &PortCell| {
            if force && port.driver.driver.flags() & ERL_DRV_FLAG_SOFT_BUSY == 0 {
                Err(Exception::new(atom("notsup")))
            } else {
                Ok(())
            }
        };
        let handle = id.local_id().ok_or_else(Exception::badarg)?;
        let locked = port::with_locked(handle, |port| {
            // A port closing with data queued refuses commands, as `open_port_of` does.
            if std::ptr::eq(port.runtime.as_ptr(), Arc::as_ptr(&self.inner))
                && !port.is_closed()
                && !port.queue.is_closing()
            {
                soft_busy(port)?;
                command(port, false)
            } else {
                Err(Exception::badarg())
            }
        });
        if let Some(done) = locked {
            return done;
        }
        let port = self.open_port_of(id)?;
        port::remember_lock(&port);
        soft_busy(&port)?;
        let (_serial, queued) = match port.lock.try_lock() {
            Some(serial) => (serial, false),
            None => {
                // Busy senders do not queue: they wait for the port before that.
                if port.busy.admission(force) == Admission::Busy {
                    return Ok(Offered::Busy(port.clone()));
                }
                let size = size();
                port.busy.enqueue(size, port.driver.driver.flags());
                let serial = port.lock.lock();
                port.busy.dequeue(size, port.driver.driver.flags());
                (serial, true)
            }
        };
        command(&port, queued)
    }

    /// A command with flat data, for a caller that holds the port's callback lock.
    #[inline]
    fn command_bytes(
        &self,
        caller: &Pid,
        port: &Arc<PortCell>,
        bytes: &[u8],
    ) -> Result<(), Exception> {
        port.bytes.add_output(bytes.len());
        let driver = &port.driver.driver;
        let done = if driver.has_outputv() {
            let binary = BinaryRef::from_slice(bytes).ok_or_else(Exception::badarg)?;
            let one = [bytes.len()];
            let segments: &[usize] = if bytes.is_empty() { &[] } else { &one };
            Self::locked_callback(port, Some(caller), |data| {
                driver.outputv(data, &binary, segments)
            })
        } else {
            Self::locked_callback(port, Some(caller), |data| driver.output(data, bytes))
        };
        match done {
            Some(true) => Ok(()),
            // No output callback: the runtime ignores the data, as BEAM does.
            Some(false) => Ok(()),
            None => Err(Exception::badarg()),
        }
    }

    /// A command, for a caller that holds the port's callback lock.
    fn run_command(
        &self,
        caller: &Pid,
        port: &Arc<PortCell>,
        command: &Command,
    ) -> Result<(), Exception> {
        match command {
            Command::Flat(bytes) => self.command_bytes(caller, port, bytes),
            Command::Vector(vector) => {
                port.bytes.add_output(vector.data.len());
                let driver = &port.driver.driver;
                let binary = BinaryRef::from_slice(&vector.data).ok_or_else(Exception::badarg)?;
                Self::locked_callback(port, Some(caller), |data| {
                    driver.outputv(data, &binary, &vector.segments)
                })
                .map(|_| ())
                .ok_or_else(Exception::badarg)
            }
        }
    }
}
