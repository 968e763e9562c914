//! The runtime: processes, drivers (through `ddll-core`), and ports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddll_core::{DdllCore, DriverHost, Effect, Notification};
use drv_abi::driver::{ControlReply, DriverData, StartError};
use drv_abi::types::{
    ERL_DRV_FLAG_SOFT_BUSY, ERL_DRV_FLAG_USE_INIT_ACK, ERL_DRV_FLAG_USE_PORT_LOCKING,
    PORT_CONTROL_FLAG_BINARY,
};
use drv_abi::PortFailure;
use drv_queue::BinaryRef;
use drv_term::{Atom, FlatTerm, Pid, Ref, Term};
use parking_lot::Mutex;

use crate::busy::Admission;
use crate::drivers::{Drivers, DriversLock, Loader};
use crate::error::Exception;
use crate::init_ack::InitAck;
use crate::options::{CommandOptions, PortOptions, RuntimeOptions};
use crate::port::{self, NewPort, PortCell, PortData};
use crate::process::{Message, Process};

/// How long the scheduled unload work waits for in-flight callbacks of a closed port.
const CALLBACK_DRAIN_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Inner {
    procs: Mutex<HashMap<u64, Arc<Process>>>,
    drivers: DriversLock,
    /// This runtime's open ports, by handle.
    pub(crate) ports: Mutex<HashMap<u64, Arc<PortCell>>>,
    base_dir: PathBuf,
    /// Timers of this runtime's ports.
    pub(crate) timers: crate::timer::RuntimeTimers,
    /// The async pool of this runtime's drivers.
    pub(crate) async_pool: crate::async_pool::RuntimeAsync,
    /// The descriptors this runtime's ports select, and the poll thread.
    pub(crate) select: crate::select::RuntimeSelect,
    /// Which drivers load isolated.
    pub(crate) isolate: crate::isolate::IsolationSettings,
}

/// The next pid/ref number, unique in this OS process (pids of all runtimes differ).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What became of a command offered to a port.
enum Offered {
    /// It ran.
    Done,
    /// The port (or its message queue) is busy: nothing was sent.
    Busy(Arc<PortCell>),
}

/// Settles its runtime ([`Runtime::settle`]) when dropped: taken first by every public
/// operation that can run driver callbacks ([`Runtime::settle_at_end`]), so no path out of it
/// forgets to. The operation's result is a local or moved out, so it holds no port by then.
#[must_use = "settles when dropped: keep it until the operation ends"]
pub(crate) struct Settle<'a>(&'a Runtime);

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        // Unwinding out of an operation runs no erl_ddll work (nor driver code).
        if !std::thread::panicking() {
            self.0.settle();
        }
    }
}

/// A runtime: processes, loaded drivers and their ports. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

impl Runtime {
    /// A runtime whose relative paths are relative to the current directory.
    pub fn new() -> Result<Runtime, crate::Error> {
        Self::with_base_dir(std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")))
    }

    /// A runtime whose relative driver paths are relative to `base_dir`.
    pub fn with_base_dir(base_dir: impl Into<PathBuf>) -> Result<Runtime, crate::Error> {
        Self::with_options(base_dir, RuntimeOptions::default())
    }

    /// A runtime with `options`, whose relative driver paths are relative to `base_dir`.
    pub fn with_options(
        base_dir: impl Into<PathBuf>,
        options: RuntimeOptions,
    ) -> Result<Runtime, crate::Error> {
        if options.async_threads > drv_async::MAX_THREADS {
            return Err(crate::Error::AsyncThreads(options.async_threads));
        }
        crate::host::install()?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                procs: Mutex::new(HashMap::new()),
                drivers: DriversLock::default(),
                ports: Mutex::new(HashMap::new()),
                base_dir: base_dir.into(),
                timers: Default::default(),
                async_pool: crate::async_pool::RuntimeAsync::new(options.async_threads),
                select: Default::default(),
                isolate: crate::isolate::IsolationSettings::new(options.isolate),
            }),
        })
    }

    /// Starts a process (it traps exits, so port exits arrive as messages).
    pub fn spawn(&self, name: Option<&str>) -> Arc<Process> {
        let pid = Pid::local(next_id());
        let process = Arc::new(Process::new(pid, name.map(str::to_owned)));
        self.inner
            .procs
            .lock()
            .insert(pid_key(&pid), process.clone());
        process
    }

    fn process(&self, pid: &Pid) -> Option<Arc<Process>> {
        self.inner.procs.lock().get(&pid_key(pid)).cloned()
    }

    pub(crate) fn process_of(&self, pid: &Pid) -> Option<Arc<Process>> {
        self.process(pid)
    }

    /// Whether `pid` is a live process of this runtime. erl_ddll calls check it under the
    /// driver table's lock: `exit` marks a process dead before it cleans its entries under
    /// that lock, so a dead process can never leave an entry behind.
    pub(crate) fn is_alive(&self, pid: &Pid) -> bool {
        self.process(pid).is_some_and(|p| p.is_alive())
    }

    /// The pid of a process key (processes of this runtime are local pids).
    pub(crate) fn pid_of(&self, key: u64) -> Pid {
        Pid::local(key)
    }

    /// Runs `f` on the erl_ddll state with a loader for real loads.
    pub(crate) fn with_core<R>(
        &self,
        f: impl FnOnce(&mut DdllCore<u64>, &mut dyn DriverHost) -> R,
    ) -> R {
        let mut drivers = self.inner.drivers.lock();
        let Drivers {
            core,
            loaded,
            closing,
            ..
        } = &mut *drivers;
        // Driver code run from here (`init`, `finish`) may ask driver_system_info.
        crate::async_pool::with_pool_size(self.inner.async_pool.threads(), || {
            f(
                core,
                &mut Loader {
                    loaded,
                    closing,
                    base_dir: &self.inner.base_dir,
                    isolate: self.isolate_for_loader(),
                },
            )
        })
    }

    /// Runs `f` on the driver tables.
    pub(crate) fn with_drivers<R>(&self, f: impl FnOnce(&mut Drivers) -> R) -> R {
        f(&mut self.inner.drivers.lock())
    }

    /// Carries out the effects of a `ddll-core` call, then its scheduled work (final unloads,
    /// reloads), repeating until nothing is left.
    ///
    /// The scheduled work runs only at a *safe point*: not inside a driver callback (it is left
    /// queued, and the operation that made the callback settles it when the callback has
    /// returned), and, like BEAM's scheduled "no more references" operation, after the
    /// current operation's own messages (a port's `'EXIT'` comes before the `'UP'` of the
    /// reload it allowed). Callers must hold no port of their own here.
    pub(crate) fn apply(&self, mut effects: Vec<Effect<u64>>) {
        if effects.is_empty() && !self.inner.drivers.maybe_scheduled() {
            return;
        }
        let mut drain_deadline = None;
        loop {
            for effect in effects.drain(..) {
                match effect {
                    Effect::Notify(n) => self.notify(&n),
                    Effect::KillPorts { driver } => {
                        // As driver_failure_atom(Port, "driver_unloaded"): this also ends
                        // ports that are closing with data queued.
                        for port in self.ports_of(&driver) {
                            self.driver_failure(&port, PortFailure::Atom("driver_unloaded"));
                        }
                    }
                }
            }
            if port::in_callback() {
                return;
            }
            let mut drivers = self.inner.drivers.lock();
            if !drivers.core.has_scheduled() {
                return;
            }
            if drivers.unload_blocked() {
                // Another thread is still unwinding out of a callback of a port it closed:
                // let it leave the driver's code before `finish` and the close.
                let deadline =
                    *drain_deadline.get_or_insert_with(|| Instant::now() + CALLBACK_DRAIN_WAIT);
                if Instant::now() < deadline {
                    drop(drivers);
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                }
            }
            let Drivers {
                core,
                loaded,
                closing,
                ..
            } = &mut *drivers;
            effects = core.run_scheduled(&mut Loader {
                loaded,
                closing,
                base_dir: &self.inner.base_dir,
                isolate: self.isolate_for_loader(),
            });
        }
    }

    /// Settles: runs the scheduled erl_ddll work left by this thread's last operation (see
    /// [`Runtime::apply`]) at a safe point. Public operations settle through [`Settle`];
    /// the runtime's own callback sources (timers, async completions, select events, driver
    /// threads) call this once they have let go of the port.
    pub(crate) fn settle(&self) {
        self.apply(Vec::new());
    }

    /// The guard every public operation that can run driver callbacks takes first: it settles
    /// when dropped, at the end of the operation (after its own messages), on every path out.
    pub(crate) fn settle_at_end(&self) -> Settle<'_> {
        Settle(self)
    }

    fn notify(&self, n: &Notification<u64>) {
        self.notify_named(n, atom(&n.driver));
    }

    /// Sends `n`, naming the driver by `driver` (the atom, or the caller's own term).
    pub(crate) fn notify_named(&self, n: &Notification<u64>, driver: Term) {
        let Some(to) = self.inner.procs.lock().get(&n.to).cloned() else {
            return;
        };
        let tag = match n.tag {
            ddll_core::Tag::LoadFailure(e) => {
                Term::Tuple(vec![atom("load_failure"), load_error_term(e)])
            }
            other => atom(other.atom()),
        };
        to.deliver(Term::Tuple(vec![
            atom(n.kind.atom()),
            Term::Ref(Ref::local(n.monitor.0)),
            atom("driver"),
            driver,
            tag,
        ]));
    }

    /// The runtime's ports (open or closing).
    pub(crate) fn open_ports(&self) -> Vec<Arc<PortCell>> {
        self.inner.ports.lock().values().cloned().collect()
    }

    /// `erlang:ports()`: this runtime's ports, in the order they opened.
    pub fn ports(&self) -> Vec<drv_term::Port> {
        crate::isolate::settle_crashes();
        let mut ports: Vec<Arc<PortCell>> = self
            .inner
            .ports
            .lock()
            .values()
            .filter(|p| !p.is_closed())
            .cloned()
            .collect();
        ports.sort_by_key(|p| p.opened);
        ports.iter().map(|p| p.id()).collect()
    }

    /// The open ports of `driver`, in port-table order.
    fn ports_of(&self, driver: &str) -> Vec<Arc<PortCell>> {
        let Some(driver) = self.inner.drivers.lock().loaded.get(driver).cloned() else {
            return Vec::new();
        };
        let mut ports: Vec<Arc<PortCell>> = self
            .inner
            .ports
            .lock()
            .values()
            .filter(|p| Arc::ptr_eq(&p.driver, &driver))
            .cloned()
            .collect();
        // In port-table order, as BEAM walks its table: the order of the `'EXIT'`s of killed
        // ports is visible. BEAM hands out every free table index in turn before reusing one,
        // so its table order is the order ports opened in (ddll reuses slots at once).
        ports.sort_by_key(|p| p.opened);
        ports
    }
}

/// The reason `open_port` fails with when `start` (or its acknowledgement) returns an
/// `ERL_DRV_ERROR_*` value.
pub(crate) fn start_error_term(error: StartError) -> Term {
    match error {
        StartError::General => atom("einval"),
        StartError::BadArg => atom("badarg"),
        StartError::Errno(errno) => atom(&drv_abi::errno_id(errno).to_string_lossy()),
    }
}

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

/// A pid's table key.
pub(crate) fn pid_key(pid: &Pid) -> u64 {
    pid.local_id().expect("runtime pids are local")
}

pub(crate) fn atom(name: &str) -> Term {
    Term::Atom(Atom::new(name))
}

/// The runtime's term for a load error: its atom, or `{open_error, Code}`.
pub(crate) fn load_error_term(e: ddll_core::LoadError) -> Term {
    match e.atom() {
        Some(a) => atom(a),
        None => Term::Tuple(vec![atom("open_error"), Term::Int(i64::from(e.to_code()))]),
    }
}

/// Port operations (the `erlang:open_port/2`, `port_command/2`, ... of the runtime).
impl Runtime {
    /// `open_port({spawn_driver, Command}, Options)`: the first word of `command` names a
    /// loaded driver; the whole string goes to its `start`.
    pub fn open_port(
        &self,
        owner: &Pid,
        command: &str,
        options: PortOptions,
    ) -> Result<drv_term::Port, Exception> {
        crate::isolate::settle_crashes();
        let _settle = self.settle_at_end();
        self.open_port_unsettled(owner, command, options)
    }

    fn open_port_unsettled(
        &self,
        owner: &Pid,
        command: &str,
        options: PortOptions,
    ) -> Result<drv_term::Port, Exception> {
        let owner = self.process(owner).ok_or(Exception::badarg())?;
        let name = command.split(' ').next().unwrap_or("");
        let driver = {
            let mut drivers = self.inner.drivers.lock();
            if drivers.core.driver_ok(name) != Some(true) {
                return Err(Exception::badarg());
            }
            let Some(driver) = drivers.named(name) else {
                return Err(Exception::badarg());
            };
            drivers
                .core
                .port_opened(name)
                .map_err(|_| Exception::badarg())?;
            driver
        };
        let init_ack =
            (driver.driver.flags() & ERL_DRV_FLAG_USE_INIT_ACK != 0).then(Box::<InitAck>::default);
        let port = port::insert(|handle| {
            PortCell::new(
                handle,
                NewPort {
                    runtime: Arc::downgrade(&self.inner),
                    lock: driver.port_lock(),
                    driver: driver.clone(),
                    owner,
                    // BEAM names a port by its whole command, arguments included.
                    name: command.into(),
                    binary: options.binary,
                    eof: options.eof,
                    data: PortData::default(),
                    init_ack,
                },
            )
        });
        self.inner.ports.lock().insert(port.handle, port.clone());
        // The callback lock is held until the port's data is in place: a timeout or an async
        // completion that the driver set up in `start` must find it.
        let started = {
            let _serial = port.lock.lock();
            let started = port::with_current(&port, || driver.driver.start(port.handle, command));
            match started {
                // Unless the driver failed the port inside `start`.
                Ok(data) if !port.is_closed() => {
                    port.data.set(data);
                    port.binary.store(port.binary_option, Ordering::Relaxed);
                    // Only now: an acknowledgement inside `start` is ignored, as in BEAM.
                    if let Some(ack) = &port.init_ack {
                        ack.await_from_now();
                    }
                }
                Ok(_) => {}
                // A port that never started is closed, like any port out of the table.
                Err(_) => port.closed.store(true, Ordering::Release),
            }
            // A driver thread's failure while `start` ran, now that the port has its data.
            self.run_deferred_failure(&port);
            started
        };
        match started {
            Ok(_) => match &port.init_ack {
                // Holding no lock: the acknowledgement comes from a callback or a thread of
                // the driver's.
                Some(ack) => ack.wait().map(|()| port.id()).map_err(Exception::new),
                None => Ok(port.id()),
            },
            Err(e) => {
                self.forget_port(&port);
                Err(Exception::new(start_error_term(e)))
            }
        }
    }

    /// `driver_create_port` from a callback of `creator` (this thread holds its callback
    /// lock): a port of the same driver instance with `data` (no `start`), named `name`, owned
    /// by (linked to) `owner`. Its handle, or `None` when `owner` is not a live process of this
    /// runtime or the driver is being unloaded.
    ///
    /// With driver-level locking the new port shares the driver's lock, which this thread
    /// holds; with port-level locking it gets its own, which this thread holds until the
    /// creator's callback returns (as BEAM hands the new port over locked). BEAM 25 itself
    /// deadlocks in the driver-level case: its new port takes the driver lock again.
    pub(crate) fn create_port(
        &self,
        creator: &Arc<PortCell>,
        owner: &Pid,
        name: &str,
        data: DriverData,
    ) -> Option<u64> {
        let owner = self.process(owner).filter(|p| p.is_alive())?;
        let driver = creator.driver.clone();
        self.inner
            .drivers
            .lock()
            .core
            .port_opened(driver.driver.name())
            .ok()?;
        let lock = driver.port_lock();
        let own_lock = (!Arc::ptr_eq(&lock, &creator.lock)).then(|| lock.lock_arc());
        let port = port::insert(|handle| {
            PortCell::new(
                handle,
                NewPort {
                    runtime: Arc::downgrade(&self.inner),
                    driver,
                    lock,
                    owner: owner.clone(),
                    name: name.into(),
                    // BEAM's created ports send lists whatever their creator does.
                    binary: false,
                    eof: false,
                    data: PortData::new(data),
                    init_ack: None,
                },
            )
        });
        self.inner.ports.lock().insert(port.handle, port.clone());
        // Checked again now that the port is in the table: a dying process is marked dead
        // before it looks for its ports there, so either this sees it dead or its exit finds
        // (and closes) the new port.
        if !owner.is_alive() {
            // No port then, as in BEAM, and no `stop`: the driver keeps its data.
            let _serial = port.lock.lock();
            port.closed.store(true, Ordering::Release);
            self.forget_port(&port);
            return None;
        }
        if let Some(own_lock) = own_lock {
            port::hold_until_callback_returns(port.clone(), own_lock);
        }
        Some(port.handle)
    }

    fn port(&self, id: &drv_term::Port) -> Result<Arc<PortCell>, Exception> {
        // The global handle table (an index, no hashing) rather than this runtime's map: this
        // is on every command's path. A port of another runtime is no port here.
        let handle = id.local_id().ok_or_else(Exception::badarg)?;
        port::lookup_recent(handle)
            .filter(|port| {
                std::ptr::eq(port.runtime.as_ptr(), Arc::as_ptr(&self.inner)) && !port.is_closed()
            })
            .ok_or_else(Exception::badarg)
    }

    /// Runs a callback of `port` serialised with its others; `None` if the port has closed.
    /// Afterwards a port closing with data queued terminates if the queue is now empty (BEAM
    /// checks this after every port task).
    #[inline]
    fn callback<R>(
        &self,
        port: &Arc<PortCell>,
        caller: &Pid,
        f: impl FnOnce(drv_abi::driver::DriverData) -> R,
    ) -> Option<R> {
        let _serial = port.lock.lock();
        Self::locked_callback(port, Some(caller), f)
    }

    /// [`Runtime::callback`] for a caller that holds the port's callback lock.
    #[inline]
    /// `caller` is the process making the call (`driver_caller`); `None` for the runtime's own
    /// callbacks, which have none.
    fn locked_callback<R>(
        port: &Arc<PortCell>,
        caller: Option<&Pid>,
        f: impl FnOnce(drv_abi::driver::DriverData) -> R,
    ) -> Option<R> {
        if port.is_closed() {
            return None;
        }
        let data = port.data.get()?;
        port.set_caller(caller);
        port.reductions.store(0, Ordering::Relaxed);
        let result = port::with_current(port, || f(data));
        Self::after_callback(port);
        Some(result)
    }

    /// After any callback: a port closing with data queued terminates if its queue is now
    /// empty (BEAM checks this after every port task).
    #[inline]
    pub(crate) fn after_callback(port: &Arc<PortCell>) {
        if port.failure_deferred.load(Ordering::Acquire) {
            if let Some(runtime) = Runtime::upgrade(port) {
                runtime.run_deferred_failure(port);
            }
        }
        if port.queue.is_closing() {
            if let Some(runtime) = Runtime::upgrade(port) {
                runtime.terminate_if_drained(port);
            }
        }
    }

    /// Runs a callback of `port` for the runtime itself (a timeout, an async completion, a
    /// select event), serialised with its other callbacks; `None` (without calling `f`) if the
    /// port has closed or is about to: once its exit signal is on the way and no flush keeps it
    /// open, nothing of it may reach the owner after that signal but what `stop` sends.
    pub(crate) fn serialized<R>(
        port: &Arc<PortCell>,
        f: impl FnOnce(drv_abi::driver::DriverData) -> R,
    ) -> Option<R> {
        let _serial = port.lock.lock();
        if port.state.lock().exiting && !port.queue.is_closing() {
            return None;
        }
        Self::locked_callback(port, None, f)
    }

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
        let size = || crate::iodata::flatten(data).map_or(0, |bytes| bytes.len());
        self.command_unless_busy(id, options, size, |port| {
            let command = Command::of(port, data).ok_or_else(Exception::badarg)?;
            self.run_command(caller, port, &command)
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
        let command = Command::Vector(crate::iodata::IoVector {
            data: bytes.to_vec(),
            segments: lengths.to_vec(),
        });
        let port = self.open_port_of(id)?;
        let _serial = port.lock.lock();
        if port.is_closed() {
            return Err(Exception::badarg());
        }
        if port.driver.driver.has_outputv() {
            self.run_command(caller, &port, &command)
        } else {
            self.command_bytes(caller, &port, bytes)
        }
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
                port.busy.enqueue(size);
                let serial = port.lock.lock();
                port.busy.dequeue(size);
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

    /// `port_control(Port, Operation, Data)`: a list, or a binary when the driver set
    /// `PORT_CONTROL_FLAG_BINARY`.
    pub fn port_control(
        &self,
        caller: &Pid,
        id: &drv_term::Port,
        operation: u32,
        data: &Term,
    ) -> Result<Term, Exception> {
        let _settle = self.settle_at_end();
        let bytes = crate::iodata::flatten(data).ok_or(Exception::badarg())?;
        let reply = self.port(id).and_then(|port| {
            let driver = &port.driver.driver;
            self.callback(&port, caller, |d| {
                driver.control(d, operation, &bytes, || port.state.lock().control_binary)
            })
            .ok_or(Exception::badarg())
        });
        match reply? {
            Ok(Some(ControlReply::Nil)) => Ok(Term::List(Vec::new())),
            Ok(Some(ControlReply::Binary(reply))) => Ok(Term::Binary(reply)),
            Ok(Some(ControlReply::List(reply))) => Ok(bytes_list(&reply)),
            Ok(None) | Err(_) => Err(Exception::badarg()),
        }
    }

    /// `erlang:port_call(Port, Operation, Data)`: `Data` goes to the driver in external term
    /// format and its reply is decoded the same way.
    pub fn port_call(
        &self,
        caller: &Pid,
        id: &drv_term::Port,
        operation: u32,
        data: &Term,
    ) -> Result<Term, Exception> {
        let _settle = self.settle_at_end();
        let input = drv_term::encode(data);
        self.port(id).and_then(|port| {
            let driver = &port.driver.driver;
            // Decoded before the driver's buffer is released: BEAM frees it only after a
            // successful decode.
            self.callback(&port, caller, |d| {
                driver.call(d, operation, &input, |reply| drv_term::decode(reply).ok())
            })
            .flatten()
            .ok_or(Exception::badarg())
        })
    }

    /// A port that Erlang code may still command or close: not closing with data queued
    /// (such a port answers `port_control`, `port_call` and `port_info`, not these).
    fn open_port_of(&self, id: &drv_term::Port) -> Result<Arc<PortCell>, Exception> {
        let port = self.port(id)?;
        if port.queue.is_closing() {
            return Err(Exception::badarg());
        }
        Ok(port)
    }

    /// `port_close(Port)`: closes the port; a linked owner that traps exits gets
    /// `{'EXIT', Port, normal}`.
    pub fn port_close(&self, _caller: &Pid, id: &drv_term::Port) -> Result<(), Exception> {
        let _settle = self.settle_at_end();
        self.open_port_of(id)
            .map(|port| self.close_port(&port, atom("normal")))
    }

    /// The port exits with `reason` (BEAM's `erts_deliver_port_exit`): the owner gets its exit
    /// signal first; then, with data in the driver queue, the port stays, closing, until the
    /// driver has dequeued it all (`flush` is called once), else it terminates (`stop`).
    pub(crate) fn close_port(&self, port: &Arc<PortCell>, reason: Term) {
        self.exit_port(port, reason, true, None);
    }

    /// Closes `port` without any exit signal (its owner was unlinked).
    pub(crate) fn close_port_quietly(&self, port: &Arc<PortCell>) {
        self.exit_port(port, atom("normal"), false, None);
    }

    fn exit_port(
        &self,
        port: &Arc<PortCell>,
        reason: Term,
        signal: bool,
        closed_reply: Option<Arc<Process>>,
    ) {
        let (links, flush) = {
            let _serial = port.lock.lock();
            let links = {
                let mut state = port.state.lock();
                if port.is_closed() || state.exiting {
                    return;
                }
                state.exiting = true;
                state.closed_reply = closed_reply;
                // The port's links get its exit signal (the connected process only if linked).
                state.links.clone()
            };
            // `exit(Port, kill)` ends a port at once, queued data or not.
            let flush = reason != atom("kill") && crate::queue::size(port) != 0;
            if flush {
                port.queue.start_closing();
            }
            (links, flush)
        };
        // Senders waiting for the port to cease to be busy fail now (`badarg`), as in BEAM.
        port.busy.port_closed();
        // Outside the callback lock: the signal may close the linked processes' other ports.
        if signal {
            for linked in &links {
                self.exit_signal(linked, port.term(), reason.clone());
            }
        }
        // An isolated driver's queue is in its host, whose port exits now (after the signals,
        // as its `stop` or `flush` may send more) and says whether it stays, flushing.
        let flush = flush || reason != atom("kill") && crate::isolate::port_exiting(port, &reason);
        if !flush {
            self.terminate(port);
        } else if port.driver.driver.has_flush() {
            // The epilogue of `callback` terminates the port if flush emptied the queue.
            let driver = &port.driver.driver;
            let _ = self.callback(port, port.owner.pid(), |data| driver.flush(data));
        } else {
            self.terminate_if_drained(port);
        }
    }

    /// Terminates a closing port whose queue is empty.
    fn terminate_if_drained(&self, port: &Arc<PortCell>) {
        let _serial = port.lock.lock();
        if crate::queue::size(port) == 0 && !crate::isolate::port_lingers(port) {
            self.terminate(port);
        }
    }

    /// Ends the port: runs `stop`, drops its queue, forgets it (releasing the driver), and
    /// answers `{Port, closed}` if that was asked for. Nothing if already done.
    fn terminate(&self, port: &Arc<PortCell>) {
        let _serial = port.lock.lock();
        let closed_reply = {
            let mut state = port.state.lock();
            if port.is_closed() || state.terminating {
                return;
            }
            state.terminating = true;
            state.exiting = true;
            state.closed_reply.take()
        };
        if let Some(data) = port.data.get() {
            // Output from `stop` still reaches the owner (after its exit signal), as in BEAM.
            port::with_current(port, || port.driver.driver.stop(data));
        }
        port.closed.store(true, Ordering::Release);
        port.busy.port_closed();
        self.forget_port(port);
        if let Some(to) = closed_reply {
            to.deliver(Term::Tuple(vec![port.term(), atom("closed")]));
        }
    }

    /// Removes a port from the tables and releases its reference on the driver.
    fn forget_port(&self, port: &Arc<PortCell>) {
        // Its timer never fires; the driver hold of its wheel entry goes (the port's own
        // reference below is still there, so this cannot unload the driver).
        self.inner.timers.port_closed(port);
        // Its selections go (no stop_select, as in BEAM).
        self.inner.select.port_closed(port);
        // Before the cell can be freed: a thread holding the PDL may be using the queue.
        crate::queue::terminate(port);
        port::remove(port.handle);
        self.inner.ports.lock().remove(&port.handle);
        // An `open_port` still waiting for the port's acknowledgement returns it, as in BEAM.
        if let Some(ack) = &port.init_ack {
            ack.port_ended();
        }
        // The port's reference on the driver goes; the final unload, if due, is scheduled
        // work that the operation's `settle` runs once this port is out of its hands.
        let _ = self
            .inner
            .drivers
            .lock()
            .core
            .port_closed(port.driver.driver.name());
    }

    /// Sends an exit signal from a port to a linked process.
    fn exit_signal(&self, to: &Arc<Process>, from: Term, reason: Term) {
        if to.traps_exits() {
            to.deliver(Term::Tuple(vec![atom("EXIT"), from, reason]));
        } else if reason != atom("normal") {
            self.exit(to.pid(), reason);
        }
    }

    /// The process `pid` exits with `reason`: its ports close (they are linked to it) with
    /// the same reason, and its driver references are released.
    pub fn exit(&self, pid: &Pid, reason: Term) {
        let Some(process) = self.process(pid) else {
            return;
        };
        if !process.mark_dead() {
            return;
        }
        // The ports linked to the process get its exit signal: they exit with its reason, but
        // for `normal` from a process that is not the port's connected one (then only the
        // link goes), as BEAM.
        let linked: Vec<Arc<PortCell>> = self
            .inner
            .ports
            .lock()
            .values()
            .filter(|p| p.state.lock().links.iter().any(|l| l.pid() == pid))
            .cloned()
            .collect();
        // A process killed with `kill` exits with `killed`: that is what its ports get.
        let port_reason = if reason == atom("kill") {
            atom("killed")
        } else {
            reason
        };
        crate::isolate::process_exited(pid, &port_reason, &linked);
        for port in linked {
            port.state.lock().links.retain(|l| l.pid() != pid);
            if port_reason == atom("normal") && port.owner.pid() != pid {
                continue;
            }
            self.close_port(&port, port_reason.clone());
        }
        self.fire_monitors(pid);
        let outcome = self.inner.drivers.lock().core.process_died(pid_key(pid));
        self.apply(outcome.effects);
        // Forgotten last, once nothing of it is left to clean: every lookup of a dead pid
        // answers as for an unknown one (dead processes would otherwise pile up here).
        self.inner.procs.lock().remove(&pid_key(pid));
    }

    /// The next message of `pid`, waiting up to `timeout`.
    pub fn receive(&self, pid: &Pid, timeout: Option<Duration>) -> Option<Message> {
        self.process(pid)?.receive(timeout)
    }

    /// `driver_failure*` from a thread that does not hold the port's callback lock while
    /// another thread does — typically a callback joining that very thread, where BEAM (which
    /// takes no lock there) exits the port at once. Waiting for the lock would deadlock, so the
    /// failure is left to the holder, which runs it when its callback ends
    /// ([`Runtime::after_callback`]); a holder outside any callback lets the lock go soon, to
    /// a thread that waits for it and runs the failure then. Returns 0, as the failure would.
    pub(crate) fn defer_failure(&self, port: &Arc<PortCell>, how: PortFailure<'_>) -> i32 {
        port.state.lock().deferred_failure = Some(DeferredFailure::from(how));
        port.failure_deferred.store(true, Ordering::Release);
        let (runtime, port) = (self.clone(), port.clone());
        let waiter = std::thread::Builder::new()
            .name("ddll-failure".into())
            .spawn(move || {
                {
                    let _serial = port.lock.lock();
                    runtime.run_deferred_failure(&port);
                }
                runtime.settle();
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
        let deferred = port.state.lock().deferred_failure.take();
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

    /// Output from a driver to its port's owner, `{Port, {data, Data}}` (see
    /// [`FlatTerm::port_data`] for `Data`, as BEAM 25 builds it for `driver_output*`), unless
    /// the port has closed. Built in one buffer, as term output is: one allocation per message
    /// at an owner that does not receive yet (issue 16).
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
            let message = FlatTerm::port_data(port.id(), data_atom, header, pieces, binary);
            port.owner.deliver(message);
        }
    }

    /// The runtime of `inner` (an isolated driver's link holds it weakly).
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Runtime {
        Runtime { inner }
    }

    /// What a loader needs to load drivers isolated, when they are.
    fn isolate_for_loader(&self) -> crate::isolate::LoaderIsolation<'_> {
        crate::isolate::LoaderIsolation {
            settings: &self.inner.isolate,
            runtime: Arc::downgrade(&self.inner),
            async_threads: self.inner.async_pool.threads(),
        }
    }

    pub(crate) fn upgrade(port: &PortCell) -> Option<Runtime> {
        port.runtime.upgrade().map(|inner| Runtime { inner })
    }

    pub(crate) fn set_control_binary(port: &PortCell, flags: i32) {
        port.state.lock().control_binary = flags & PORT_CONTROL_FLAG_BINARY != 0;
    }
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
            crate::iodata::flatten(data).map(Command::Flat)
        }
    }
}

fn port_locking(rt: &Runtime, id: &drv_term::Port) -> bool {
    rt.port(id)
        .map(|p| p.driver.driver.flags() & ERL_DRV_FLAG_USE_PORT_LOCKING != 0)
        .unwrap_or(false)
}

/// A byte string as an Erlang list of integers.
pub(crate) fn bytes_list(bytes: &[u8]) -> Term {
    Term::List(bytes.iter().map(|&b| Term::Int(i64::from(b))).collect())
}

impl Runtime {
    /// `driver_lock_driver`: the driver becomes permanent; monitors get `{'UP', ..., permanent}`.
    pub(crate) fn lock_driver(&self, name: &str) -> i32 {
        let outcome = self.with_core(|core, _| core.lock_driver(name));
        let rc = if outcome.result.is_ok() { 0 } else { -1 };
        self.apply(outcome.effects);
        rc
    }
}

impl Runtime {
    /// `erlang:port_info(Port, Item)`: `{Item, Value}`, or `undefined` for a closed port.
    pub fn port_info_item(&self, id: &drv_term::Port, item: &Term) -> Result<Term, Exception> {
        let known = [
            "name",
            "links",
            "id",
            "connected",
            "input",
            "output",
            "os_pid",
        ];
        if !matches!(item, Term::Atom(a) if known.contains(&a.as_str()) || ["registered_name", "memory", "queue_size", "locking", "monitors", "monitored_by", "parallelism"].contains(&a.as_str()))
        {
            return Err(Exception::badarg());
        }
        let Term::List(items) = self.port_info(id) else {
            return Ok(atom("undefined"));
        };
        Ok(items
            .into_iter()
            .find(|t| matches!(t, Term::Tuple(pair) if pair[0] == *item))
            .unwrap_or_else(|| match item {
                Term::Atom(a) if a.as_str() == "registered_name" => Term::List(vec![]),
                Term::Atom(a) if a.as_str() == "queue_size" => {
                    let size = self.port(id).map_or(0, |port| {
                        crate::isolate::port_counts(&port)
                            .map_or_else(|| crate::queue::size(&port), |(_, _, queue)| queue)
                            as i64
                    });
                    Term::Tuple(vec![item.clone(), Term::Int(size)])
                }
                Term::Atom(a) if a.as_str() == "monitors" => {
                    // The driver's process monitors (`driver_monitor_process`), as
                    // `{process, Pid}`. BEAM lists them in its monitor tree's order; ddll in the
                    // order they were made (the same for up to two).
                    // An isolated driver's monitors are in its host.
                    let monitors = self.port(id).map_or(vec![], |port| {
                        crate::isolate::port_monitors(&port)
                            .unwrap_or_else(|| {
                                port.state
                                    .lock()
                                    .monitors
                                    .iter()
                                    .map(|(_, pid)| *pid)
                                    .collect()
                            })
                            .into_iter()
                            .map(|pid| Term::Tuple(vec![atom("process"), Term::Pid(pid)]))
                            .collect()
                    });
                    Term::Tuple(vec![item.clone(), Term::List(monitors)])
                }
                Term::Atom(a) if a.as_str() == "locking" => Term::Tuple(vec![
                    item.clone(),
                    atom(if port_locking(self, id) {
                        "port_level"
                    } else {
                        "driver_level"
                    }),
                ]),
                _ => Term::Tuple(vec![item.clone(), Term::List(vec![])]),
            }))
    }

    /// `erlang:port_info(Port)`: `undefined` for a closed port, else BEAM's list of items.
    pub fn port_info(&self, id: &drv_term::Port) -> Term {
        let Ok(port) = self.port(id) else {
            return atom("undefined");
        };
        let owner = Term::Pid(*port.owner.pid());
        // A closing port has already dropped its links.
        let links = if port.queue.is_closing() {
            vec![]
        } else {
            port.state
                .lock()
                .links
                .iter()
                .map(|l| Term::Pid(*l.pid()))
                .collect()
        };
        let os_pid = port
            .state
            .lock()
            .os_pid
            .map_or(atom("undefined"), |p| Term::Int(p as i64));
        // An isolated driver's port counts in its host.
        let (input, output) = crate::isolate::port_counts(&port)
            .map_or_else(|| port.bytes.get(), |(input, output, _)| (input, output));
        Term::List(vec![
            Term::Tuple(vec![atom("name"), crate::erl_ddll::string_term(&port.name)]),
            Term::Tuple(vec![atom("links"), Term::List(links)]),
            Term::Tuple(vec![
                atom("id"),
                Term::Int((port.handle & 0xffff_ffff) as i64),
            ]),
            Term::Tuple(vec![atom("connected"), owner]),
            Term::Tuple(vec![atom("input"), Term::from(input)]),
            Term::Tuple(vec![atom("output"), Term::from(output)]),
            Term::Tuple(vec![atom("os_pid"), os_pid]),
        ])
    }

    /// `Port ! Message` from `sender`, as BEAM takes it: `{Connected, {command, Data}}` is a
    /// command (waiting while the port is busy), `{Connected, close}` closes the port and
    /// answers `{Port, closed}` to the connected process, `{Connected, {connect, Pid}}` connects
    /// `Pid` (the old connected process gets `{Port, connected}`; links do not change). Any
    /// sender may send these, naming the connected process. Anything else — another pid, bad
    /// data, another shape — sends the connected process the exit signal `badsig` and the port
    /// lives on. A message to a closed port is dropped.
    pub fn port_message(
        &self,
        sender: &Pid,
        id: &drv_term::Port,
        message: &Term,
    ) -> Result<(), Exception> {
        self.port_send(sender, id, message, false).map(|_| ())
    }

    /// `erlang:send(Port, Message, Options)`: as [`Runtime::port_message`]; with `nosuspend`,
    /// a command to a busy port is dropped and `false` returned (`erlang:send/3` answers
    /// `nosuspend`).
    pub fn port_send(
        &self,
        sender: &Pid,
        id: &drv_term::Port,
        message: &Term,
        nosuspend: bool,
    ) -> Result<bool, Exception> {
        let _settle = self.settle_at_end();
        self.port_message_unsettled(sender, id, message, nosuspend)
    }

    fn port_message_unsettled(
        &self,
        sender: &Pid,
        id: &drv_term::Port,
        message: &Term,
        nosuspend: bool,
    ) -> Result<bool, Exception> {
        let _ = sender;
        let Ok(port) = self.port(id) else {
            // Sending to a dead port is silently dropped, as in Erlang.
            return Ok(true);
        };
        if port.queue.is_closing() {
            // So is sending to a port closing with data queued.
            return Ok(true);
        }
        let connected = *port.owner.pid();
        let Term::Tuple(items) = message else {
            self.bad_signal(&port);
            return Ok(true);
        };
        match items.as_slice() {
            [Term::Pid(from), Term::Tuple(cmd)]
                if *from == connected && cmd.len() == 2 && cmd[0] == atom("command") =>
            {
                let options = CommandOptions::new().nosuspend(nosuspend);
                let size = || crate::iodata::flatten(&cmd[1]).map_or(0, |bytes| bytes.len());
                let sent = self.command_unless_busy(id, options, size, |port| {
                    match Command::of(port, &cmd[1]) {
                        Some(command) => {
                            let _ = self.run_command(from, port, &command);
                        }
                        // BEAM also logs "Bad value on output port".
                        None => self.bad_signal(port),
                    }
                    Ok(())
                });
                // A port that closed meanwhile drops the message.
                Ok(sent.unwrap_or(true))
            }
            [Term::Pid(from), close] if *from == connected && *close == atom("close") => {
                // `{Port, closed}` comes when the port terminates, after any flushing.
                self.exit_port(&port, atom("normal"), true, self.process(from));
                Ok(true)
            }
            [Term::Pid(from), Term::Tuple(connect)]
                if *from == connected
                    && matches!(connect.as_slice(), [tag, Term::Pid(_)] if *tag == atom("connect")) =>
            {
                if let [_, Term::Pid(new)] = connect.as_slice() {
                    let old = port.owner.get().clone();
                    self.connect(&port, new);
                    old.deliver(Term::Tuple(vec![port.term(), atom("connected")]));
                }
                Ok(true)
            }
            _ => {
                self.bad_signal(&port);
                Ok(true)
            }
        }
    }

    /// A message the port cannot take: the connected process gets the exit signal `badsig`
    /// (a message if it traps exits, else it exits), and the port lives on, as in BEAM.
    fn bad_signal(&self, port: &Arc<PortCell>) {
        let connected = port.owner.get().clone();
        self.exit_signal(&connected, port.term(), atom("badsig"));
    }

    /// Makes `pid` the port's connected process (its output and `driver_connected` go there).
    /// A pid of no live process is connected all the same, as in BEAM: output to it is lost.
    pub(crate) fn connect(&self, port: &Arc<PortCell>, pid: &Pid) {
        let process = self.process(pid).unwrap_or_else(|| {
            let stranger = Arc::new(Process::new(*pid, None));
            stranger.mark_dead();
            stranger
        });
        // Under the callback lock, as BEAM connects in a port task: no callback sees it change.
        let _serial = port.lock.lock();
        port.owner.set(process);
        crate::isolate::port_connected(port, pid, false);
    }

    /// `erlang:port_connect(Port, Pid)`: `Pid` becomes the connected process and is linked
    /// to the port; the old one stays linked and gets no message. `badarg` for a closed port
    /// or a pid that is not a live process of this runtime.
    pub fn port_connect(&self, id: &drv_term::Port, pid: &Pid) -> Result<(), Exception> {
        let port = self.open_port_of(id)?;
        let process = self
            .process(pid)
            .filter(|p| p.is_alive())
            .ok_or_else(Exception::badarg)?;
        {
            let mut state = port.state.lock();
            if !state.links.iter().any(|l| l.pid() == pid) {
                state.links.push(process.clone());
            }
        }
        let _serial = port.lock.lock();
        port.owner.set(process);
        crate::isolate::port_connected(&port, pid, true);
        Ok(())
    }
}
