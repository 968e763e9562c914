//! The runtime: processes, drivers (through `ddll-core`), and ports.

use std::borrow::Borrow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddll_core::{DdllCore, DriverHost, Effect, Notification};
use drv_abi::driver::{ControlReply, StartError};
use drv_abi::types::{ERL_DRV_FLAG_USE_INIT_ACK, PORT_CONTROL_FLAG_BINARY};
use drv_abi::PortFailure;
use drv_term::{Atom, Pid, Ref, Term};
use parking_lot::Mutex;

use crate::drivers::{Drivers, DriversLock, Loader};
use crate::error::Exception;
use crate::init_ack::InitAck;
use crate::options::{PortOptions, RuntimeOptions};
use crate::port::{self, NewPort, PortCell};
use crate::process::{Message, Process};

/// How long the scheduled unload work waits for in-flight callbacks of a closed port.
const CALLBACK_DRAIN_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Inner {
    procs: Mutex<crate::id_hash::IdHashMap<u64, Arc<Process>>>,
    pub(crate) drivers: DriversLock,
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

/// Settles its runtime when dropped: runs the scheduled erl_ddll work left by the operation
/// (see [`Runtime::apply`]) at a safe point, after the operation's own messages. It is the only
/// way to settle, so no path out of a piece of code that can run driver callbacks forgets to:
/// every public operation that can takes one first ([`Runtime::settle_at_end`], or
/// [`Runtime::operation`]), and the runtime's own callback sources (timers, async completions,
/// select events, monitors) cannot run a callback without one ([`Runtime::serialized`] asks for
/// it: [`Settle::for_port`]); driver threads whose C calls end a port take one too. Its holder
/// lets go of its ports first: the operation's result is a local or moved out, and a callback
/// source takes it before it takes the port.
///
/// A public operation's guard borrows its runtime (`Settle<&Runtime>`: its drop is as small as
/// a call of `apply`, on the command path); a callback source's owns it (`Settle<Runtime>`).
#[must_use = "settles when dropped: keep it until the operation ends"]
pub(crate) struct Settle<R: Borrow<Runtime>>(Option<R>);

impl Settle<Runtime> {
    /// The guard of a callback source of `port`'s runtime (none if the runtime is being
    /// dropped: then there is nothing to settle).
    pub(crate) fn for_port(port: &PortCell) -> Settle<Runtime> {
        Settle(Runtime::upgrade(port))
    }

    /// The guard of code that holds `runtime` (a driver thread's call, a port's last item of
    /// work in flight).
    pub(crate) fn owning(runtime: Runtime) -> Settle<Runtime> {
        Settle(Some(runtime))
    }
}

impl<R: Borrow<Runtime>> Drop for Settle<R> {
    fn drop(&mut self) {
        // Unwinding out of an operation runs no erl_ddll work (nor driver code).
        if std::thread::panicking() {
            return;
        }
        if let Some(runtime) = &self.0 {
            runtime.borrow().apply(Vec::new());
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
                procs: Mutex::new(Default::default()),
                drivers: DriversLock::default(),
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
        self.register(Process::new(Pid::local(next_id()), name.map(str::to_owned)))
    }

    /// Starts a process as [`Runtime::spawn`] does, whose every arrival also calls
    /// `on_arrival`, on the sending thread once the message is queued: for a host that runs the
    /// process on threads of its own and must learn of a message without a receiver parked in
    /// the mailbox (a receiver that parks is woken as for any process). The sending thread may
    /// be inside a driver callback: `on_arrival` must be quick, must not block, and must not
    /// call into the runtime.
    pub fn spawn_with_arrival_hook(
        &self,
        name: Option<&str>,
        on_arrival: impl Fn() + Send + Sync + 'static,
    ) -> Arc<Process> {
        let hook = crate::process::ArrivalHook(Box::new(on_arrival));
        self.register(Process::with_arrival_hook(
            Pid::local(next_id()),
            name.map(str::to_owned),
            Some(hook),
        ))
    }

    /// Starts a mirror of the parent's process number `parent` in an isolated driver's host:
    /// a process whose binary data output is recorded for the host's reply (see
    /// [`Process::record_output`]).
    pub(crate) fn spawn_recording_outputs(&self, parent: u64) -> Arc<Process> {
        self.register(Process::recording_outputs(Pid::local(next_id()), parent))
    }

    fn register(&self, process: Process) -> Arc<Process> {
        let process = Arc::new(process);
        self.inner
            .procs
            .lock()
            .insert(pid_key(process.pid()), process.clone());
        process
    }

    pub(crate) fn process(&self, pid: &Pid) -> Option<Arc<Process>> {
        self.inner.procs.lock().get(&pid_key(pid)).cloned()
    }

    /// `To ! Message` from outside the runtime's processes (a message that came over a
    /// network, say): dropped when `to` is no live process, as Erlang drops it.
    pub fn send(&self, to: &Pid, message: Term) {
        if let Some(process) = self.process(to) {
            process.deliver(message);
        }
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

    /// The guard every public operation that can run driver callbacks takes first: it settles
    /// when dropped, at the end of the operation (after its own messages), on every path out.
    pub(crate) fn settle_at_end(&self) -> Settle<&Runtime> {
        Settle(Some(self))
    }

    /// The guard of a public operation that first waits until the death of every isolated host
    /// noticed so far has been handled ([`crate::isolate::await_crash_handling`]), so that it sees
    /// their drivers gone: the erl_ddll operations, `open_port` and `ports`.
    pub(crate) fn operation(&self) -> Settle<&Runtime> {
        crate::isolate::await_crash_handling();
        self.settle_at_end()
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

    /// The runtime's ports (open or closing), from the port table: a runtime keeps no
    /// table of its own (an idle port costs one entry, not two).
    pub(crate) fn open_ports(&self) -> Vec<Arc<PortCell>> {
        port::of_runtime(&self.inner)
    }

    /// `erlang:ports()`: this runtime's ports, in the order they opened.
    pub fn ports(&self) -> Vec<drv_term::Port> {
        let _settle = self.operation();
        let mut ports = self.open_ports();
        ports.retain(|p| !p.is_closed());
        ports.sort_by_key(|p| p.opened);
        ports.iter().map(|p| p.id()).collect()
    }

    /// The open ports of `driver`, in port-table order.
    fn ports_of(&self, driver: &str) -> Vec<Arc<PortCell>> {
        let Some(driver) = self.inner.drivers.lock().loaded.get(driver).cloned() else {
            return Vec::new();
        };
        let mut ports = self.open_ports();
        ports.retain(|p| Arc::ptr_eq(&p.driver, &driver));
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
        let _settle = self.operation();
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
            (driver.driver.flags() & ERL_DRV_FLAG_USE_INIT_ACK != 0).then(InitAck::default);
        let port = port::insert(|handle| {
            PortCell::new(
                handle,
                NewPort {
                    runtime: Arc::downgrade(&self.inner),
                    lock: driver.port_lock(),
                    driver: driver.clone(),
                    owner,
                    // BEAM names a port by its whole command, arguments included.
                    name: driver.port_name(command),
                    binary: options.binary,
                    eof: options.eof,
                    data: None,
                    init_ack,
                },
            )
        });
        // The callback lock is held until the port's data is in place: a timeout or an async
        // completion that the driver set up in `start` must find it.
        let started = {
            let _serial = port.lock.lock();
            let started = port::with_current(&port, || driver.driver.start(port.handle, command));
            match started {
                // Unless the driver failed the port inside `start`.
                Ok(data) if !port.is_closed() => {
                    port.set_data(data);
                    port.binary.store(port.binary_option, Ordering::Relaxed);
                    // Only now: an acknowledgement inside `start` is ignored, as in BEAM.
                    if let Some(ack) = port.init_ack() {
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
            Ok(_) => match port.init_ack() {
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

    pub(crate) fn port(&self, id: &drv_term::Port) -> Result<Arc<PortCell>, Exception> {
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
    pub(crate) fn locked_callback<R>(
        port: &Arc<PortCell>,
        caller: Option<&Pid>,
        f: impl FnOnce(drv_abi::driver::DriverData) -> R,
    ) -> Option<R> {
        if port.is_closed() {
            return None;
        }
        let data = port.data()?;
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
        _settle: &Settle<impl Borrow<Runtime>>,
        f: impl FnOnce(drv_abi::driver::DriverData) -> R,
    ) -> Option<R> {
        let _serial = port.lock.lock();
        if port.state.lock().exiting && !port.queue.is_closing() {
            return None;
        }
        Self::locked_callback(port, None, f)
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
        let bytes = match data {
            // BEAM hands the driver a bitstring's whole bytes, its trailing bits dropped
            // (`port_control(P, Op, <<65,1:7>>)` sends "A"); inside a list it is port data.
            Term::Bitstring(b) => b.bytes()[..b.bytes().len() - 1].to_vec(),
            _ => crate::iodata::flatten_port_data(data).ok_or(Exception::badarg())?,
        };
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
    pub(crate) fn open_port_of(&self, id: &drv_term::Port) -> Result<Arc<PortCell>, Exception> {
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

    pub(crate) fn exit_port(
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
                state.set_closed_reply(closed_reply);
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
    pub(crate) fn terminate(&self, port: &Arc<PortCell>) {
        let _serial = port.lock.lock();
        let closed_reply = {
            let mut state = port.state.lock();
            if port.is_closed() || state.terminating {
                return;
            }
            state.terminating = true;
            state.exiting = true;
            state.take_closed_reply()
        };
        if let Some(data) = port.data() {
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
    pub(crate) fn forget_port(&self, port: &Arc<PortCell>) {
        // Its timer never fires; the driver hold of its wheel entry goes (the port's own
        // reference below is still there, so this cannot unload the driver).
        self.inner.timers.port_closed(port);
        // Its selections go (no stop_select, as in BEAM).
        self.inner.select.port_closed(port);
        // Before the cell can be freed: a thread holding the PDL may be using the queue.
        crate::queue::terminate(port);
        port::remove(port.handle);
        // An `open_port` still waiting for the port's acknowledgement returns it, as in BEAM.
        if let Some(ack) = port.init_ack() {
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
    pub(crate) fn exit_signal(&self, to: &Arc<Process>, from: Term, reason: Term) {
        if to.traps_exits() {
            to.deliver(Term::Tuple(vec![atom("EXIT"), from, reason]));
        } else if reason != atom("normal") {
            self.exit(to.pid(), reason);
        }
    }

    /// The process `pid` exits with `reason`: its ports close (they are linked to it) with
    /// the same reason, and its driver references are released.
    pub fn exit(&self, pid: &Pid, reason: Term) {
        let settle = self.settle_at_end();
        let Some(process) = self.process(pid) else {
            return;
        };
        if !process.mark_dead() {
            return;
        }
        // The ports linked to the process get its exit signal: they exit with its reason, but
        // for `normal` from a process that is not the port's connected one (then only the
        // link goes), as BEAM.
        let mut linked = self.open_ports();
        linked.retain(|p| p.state.lock().links.iter().any(|l| l.pid() == pid));
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
        self.fire_monitors(pid, &settle);
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

/// A byte string as an Erlang list of integers.
pub(crate) fn bytes_list(bytes: &[u8]) -> Term {
    Term::List(bytes.iter().map(|&b| Term::Int(i64::from(b))).collect())
}
