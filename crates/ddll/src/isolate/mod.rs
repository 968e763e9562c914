//! Isolated drivers: a driver whose library runs in a child host process, so that a driver
//! that crashes, aborts, exits or hangs takes only its own ports down.
//!
//! With [`crate::RuntimeOptions::isolate`] set, every driver the runtime loads (`erl_ddll`)
//! is opened in a host process of its own: the same program started again, which enters host
//! mode in [`run_host_if_requested`] — call it first in `main` (the `ddll` binary does), or
//! name another program that does with [`set_host_program`]. The runtime keeps erl_ddll's
//! state, the processes and their mailboxes; in its tables the driver is a proxy whose
//! callbacks forward to the child over shared memory (`shm.rs`: a ring per direction, each
//! side spinning for [`Isolation::spin`] before it sleeps) in frames of terms in the external
//! term format, or compact ones for a command and its data output (`frame.rs`); what the host
//! sends on its own comes on a socket whose end is the host's death. In the child the driver runs on an ordinary [`crate::Runtime`], so its
//! threads, timers, async jobs, select, queues and term output work as in process.
//!
//! When the child dies, each of the driver's ports exits and its owner gets
//! `{'EXIT', Port, {driver_crashed, Why}}` (`Why`: `sigsegv`, `sigabrt`, `sigbus`, `sigfpe`,
//! `sigill`, `sigkill`, ... or `{exit, Status}`; `callback_timeout` when a callback overran
//! [`Isolation::callback_timeout`] and the child was killed); then the driver is unloaded as
//! by `kill_ports`: every process's load references go, `unloaded` monitors fire, and the name
//! can be loaded again. The port whose callback saw the death is closed before that callback
//! returns; the other ports and the unload follow on the link's reader thread.
//!
//! What crosses besides requests: a parent process's exit (its mirrors exit first, so the
//! driver's process monitors fire and its terms find no receiver); a port the host closes
//! without an exit signal (`driver_exit`); `driver_lock_driver` (the parent's entry becomes
//! permanent); `port_info`'s `input`, `output`, `queue_size` and `monitors`, which the host
//! keeps; the segments of an `outputv` driver's command (the proxy has an `outputv` then); a
//! port's busy state (`set_busy_port`: the parent's port holds up its senders); whether the
//! driver has work in flight (async jobs, timers: the parent's erl_ddll holds the driver
//! meanwhile); a port closing with data in its driver queue (the parent's lingers until the
//! host's ends); a new connected process (`port_connect`, `{connect, Pid}`); ports the driver
//! creates (`driver_create_port`: the parent makes its own, in a callback the parent asked for
//! or one the host runs on its own, such as a timeout or an accept in `ready_input`).
//!
//! What does not cross: a linked-in driver that the driver adds (`add_driver_entry`), which
//! has no library of its own to isolate (`ddll test` runs `ddll_linked_in` in process, saying
//! so); pids and ports of the host in terms other than the mirrors of parent processes and
//! the ports the parent knows. All of a driver's callbacks go through one request at a time,
//! whatever its locking, and while one is in flight what the host sends on its own waits for
//! its reply.

mod child;
pub(crate) mod frame;
mod link;
mod proxy;
mod shm;
pub(crate) mod watchdog;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;
use std::time::Duration;

use drv_term::Term;

pub(crate) use link::{
    await_crash_handling, load, port_connected, port_counts, port_exiting, port_lingers,
    port_monitors, process_exited, unloading,
};

/// Which drivers a runtime loads isolated: [`crate::RuntimeOptions::isolate`] for all, unless
/// [`crate::Runtime::set_driver_isolation`] said otherwise for the driver's name.
#[derive(Debug)]
pub(crate) struct IsolationSettings {
    default: Option<Isolation>,
    by_name: parking_lot::Mutex<HashMap<String, Option<Isolation>>>,
}

impl IsolationSettings {
    pub(crate) fn new(default: Option<Isolation>) -> IsolationSettings {
        IsolationSettings {
            default,
            by_name: parking_lot::Mutex::new(HashMap::new()),
        }
    }
}

/// What a runtime's loader needs to load drivers isolated.
pub(crate) struct LoaderIsolation<'a> {
    pub(crate) settings: &'a IsolationSettings,
    /// The runtime the links deliver to.
    pub(crate) runtime: Weak<crate::runtime::Inner>,
    /// The host runtime's async pool: the same as this one's.
    pub(crate) async_threads: usize,
}

impl LoaderIsolation<'_> {
    /// How driver `name` loads: isolated as this says, or in process (`None`).
    pub(crate) fn for_driver(&self, name: &str) -> Option<Isolation> {
        match self.settings.by_name.lock().get(name) {
            Some(chosen) => *chosen,
            None => self.settings.default,
        }
    }
}

impl crate::Runtime {
    /// Loads driver `name` isolated as `isolation` (`None`: in this process) from its next
    /// real load on, whatever [`crate::RuntimeOptions::isolate`] says for the others. The
    /// per-load choice: erl_ddll's load options are BEAM's and have no such setting, so it is
    /// made by name before the load. A load in progress or done keeps how it was loaded;
    /// [`crate::Runtime::clear_driver_isolation`] goes back to the runtime's default.
    pub fn set_driver_isolation(&self, name: &str, isolation: Option<Isolation>) {
        self.inner
            .isolate
            .by_name
            .lock()
            .insert(name.to_owned(), isolation);
    }

    /// Driver `name` loads as [`crate::RuntimeOptions::isolate`] says again.
    pub fn clear_driver_isolation(&self, name: &str) {
        self.inner.isolate.by_name.lock().remove(name);
    }
}

/// Set in a host process: see [`driver_locked`].
static IN_HOST: AtomicBool = AtomicBool::new(false);
/// Set in a host when its driver called `driver_lock_driver`: the parent's entry is made
/// permanent too (the news travels with the next batch of messages).
static DRIVER_LOCKED: AtomicBool = AtomicBool::new(false);

/// Ports the driver of this host created (`driver_create_port`), not yet told to the parent:
/// `(port, creator)` handles.
static CREATED: parking_lot::Mutex<Vec<(u64, u64)>> = parking_lot::Mutex::new(Vec::new());
/// Set when `CREATED` may hold ports: a drain looks at this first, and takes the lock only
/// then.
static CREATED_ANY: AtomicBool = AtomicBool::new(false);

/// The ports created since the last look, in the order they were created.
fn take_created() -> Vec<(u64, u64)> {
    if !CREATED_ANY.load(Ordering::Acquire) {
        return Vec::new();
    }
    // Cleared before the take: a port pushed meanwhile sets it again.
    CREATED_ANY.store(false, Ordering::Release);
    std::mem::take(&mut *CREATED.lock())
}

/// The driver of this process created the port `handle` in a callback of `creator`
/// (`driver_create_port`): in a host, the parent makes a port of its own for it (with the next
/// batch of messages, or the reply of the request whose callback created it).
pub(crate) fn port_created(handle: u64, creator: u64) {
    if IN_HOST.load(Ordering::Relaxed) {
        CREATED.lock().push((handle, creator));
        CREATED_ANY.store(true, Ordering::Release);
    }
}

/// The driver of this process called `driver_lock_driver` and is now permanent.
pub(crate) fn driver_locked() {
    if IN_HOST.load(Ordering::Relaxed) {
        DRIVER_LOCKED.store(true, Ordering::Release);
    }
}

/// How drivers are isolated ([`crate::RuntimeOptions::isolate`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Isolation {
    /// A callback (or load, or start) of an isolated driver that runs longer than this is
    /// ended by killing its host process: its ports exit with
    /// `{driver_crashed, callback_timeout}`. `None` waits as long as the driver takes.
    pub callback_timeout: Option<Duration>,
    /// How long a side of the channel to the host (the parent waiting for a reply, the host
    /// waiting for a request) spins on the shared memory before it sleeps: a reply or
    /// request that comes within it costs no system call and no wake-up. `None`: the
    /// `DDLL_ISOLATE_SPIN_US` environment variable (microseconds; 0 never spins), else
    /// [`DEFAULT_SPIN`]. Each spin is bounded by it (an idle host sleeps), and a side whose
    /// waits outlast it spins less (halved each time, down to a sixteenth) until one does not.
    pub spin: Option<Duration>,
}

impl Isolation {
    /// A callback of an isolated driver that runs longer than `timeout` kills its host
    /// process (`None`, the default: no limit).
    #[must_use]
    pub fn callback_timeout(mut self, timeout: Option<Duration>) -> Isolation {
        self.callback_timeout = timeout;
        self
    }

    /// Each side of the channel to the host spins up to `spin` for the other before it
    /// sleeps (`None`, the default: `DDLL_ISOLATE_SPIN_US`, else [`DEFAULT_SPIN`]).
    #[must_use]
    pub fn spin(mut self, spin: Option<Duration>) -> Isolation {
        self.spin = spin;
        self
    }

    /// The spin budget this isolation uses (see [`Isolation::spin`]).
    fn spin_budget(&self) -> Duration {
        self.spin.unwrap_or_else(env_spin)
    }
}

/// The spin budget of the channel to a host when neither [`Isolation::spin`] nor
/// `DDLL_ISOLATE_SPIN_US` sets one: long enough for a short callback's reply (and the next
/// request of a caller in a loop) to come without a sleep, short enough that a waiting side
/// gives its core back within tens of microseconds: an idle host sleeps, and a harness running
/// many hosts on few cores loses at most this per request.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

/// The spin budget variable, in microseconds: the default of [`Isolation::spin`], and how the
/// parent tells its host the budget.
const SPIN_ENV: &str = "DDLL_ISOLATE_SPIN_US";

/// `DDLL_ISOLATE_SPIN_US`, else [`DEFAULT_SPIN`].
fn env_spin() -> Duration {
    std::env::var(SPIN_ENV)
        .ok()
        .and_then(|us| us.parse().ok())
        .map_or(DEFAULT_SPIN, Duration::from_micros)
}

/// Set in a host process's environment: it serves its parent on standard input.
const HOST_ENV: &str = "DDLL_ISOLATED_HOST";
/// The async pool size of the runtime in the host.
const ASYNC_ENV: &str = "DDLL_ISOLATED_ASYNC_THREADS";
/// The callback timeout in the host, in milliseconds (unset: none).
const TIMEOUT_ENV: &str = "DDLL_ISOLATED_CALLBACK_TIMEOUT_MS";

/// The program started as host; `None`: this program.
static HOST_PROGRAM: parking_lot::Mutex<Option<PathBuf>> = parking_lot::Mutex::new(None);

/// In a host process started for an isolated driver, serves the parent and exits (it never
/// returns then); otherwise returns at once. Call it first in `main` of any program that
/// loads isolated drivers, before anything else that reads standard input or starts threads.
pub fn run_host_if_requested() {
    let Some(flag) = std::env::var_os(HOST_ENV) else {
        return;
    };
    if flag != "1" {
        return;
    }
    // Not inherited by anything the driver starts.
    std::env::remove_var(HOST_ENV);
    IN_HOST.store(true, Ordering::Relaxed);
    let async_threads = std::env::var(ASYNC_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(crate::async_pool::DEFAULT_ASYNC_THREADS);
    let callback_timeout = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    std::env::remove_var(TIMEOUT_ENV);
    let spin = env_spin();
    std::env::remove_var(SPIN_ENV);
    use std::os::fd::FromRawFd;
    let Some(request_socket) = keep_from_programs(0) else {
        std::process::exit(child::PROTOCOL_FAILURE);
    };
    let Some(event_socket) = keep_from_programs(frame::EVENT_FD) else {
        std::process::exit(child::PROTOCOL_FAILURE);
    };
    // SAFETY: the parent made descriptor 0 (now `request_socket`) this process's end of the
    // socket pair of the request channel, `EVENT_FD` (now `event_socket`) its end of the
    // event channel and `SHM_FD` the request channel's shared region; in host mode nothing
    // else owns them.
    let (stream, events, region) = unsafe {
        (
            std::os::unix::net::UnixStream::from_raw_fd(request_socket),
            std::os::unix::net::UnixStream::from_raw_fd(event_socket),
            std::os::fd::OwnedFd::from_raw_fd(shm::SHM_FD),
        )
    };
    let Ok(channel) = shm::Channel::open(&region, shm::Side::Host, stream, spin) else {
        std::process::exit(child::PROTOCOL_FAILURE);
    };
    drop(region);
    std::process::exit(child::serve(
        channel,
        events,
        async_threads,
        callback_timeout,
    ));
}

/// Moves the host's end of a channel, descriptor `fd`, to one that programs the driver starts
/// do not inherit (close on exec), and puts `/dev/null` where it was: a program that kept the
/// channel open would outlive the host with it, and the parent would not see the host die
/// (its end of stream and hang-up are how it does). The new descriptor, `None` on failure.
fn keep_from_programs(fd: std::os::fd::RawFd) -> Option<std::os::fd::RawFd> {
    // SAFETY: `fcntl` and `dup2` on descriptors this process owns; `open` of a constant
    // NUL-terminated path. Called before any driver is loaded, so no thread uses `fd` meanwhile.
    unsafe {
        let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 16);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if moved == -1 || null == -1 || libc::dup2(null, fd) == -1 {
            return None;
        }
        libc::close(null);
        Some(moved)
    }
}

/// Starts `program` as the host of isolated drivers instead of this program (which then need
/// not call [`run_host_if_requested`]); `program` must call it first in its `main`, as the
/// `ddll` binary does.
pub fn set_host_program(program: impl Into<PathBuf>) {
    *HOST_PROGRAM.lock() = Some(program.into());
}

/// How the host program is started: under `prefix` (a memory checker such as `valgrind
/// --tool=memcheck`, which gets the host program and runs it) and with `env` added to its
/// environment (e.g. `LD_PRELOAD` of a library the driver resolves symbols from).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostLauncher {
    /// The command, and its arguments, that the host program's path is appended to.
    pub prefix: Vec<std::ffi::OsString>,
    /// Variables added to the host's environment.
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

impl HostLauncher {
    /// Starts hosts under `prefix` (`[]`: directly), with `env` added to their environment.
    pub fn new(
        prefix: Vec<std::ffi::OsString>,
        env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    ) -> HostLauncher {
        HostLauncher { prefix, env }
    }
}

/// How hosts are started from now on, process-wide like [`set_host_program`]; `None`: the
/// host program directly, with this process's environment.
pub fn set_host_launcher(launcher: Option<HostLauncher>) {
    *HOST_LAUNCHER.lock() = launcher;
}

static HOST_LAUNCHER: parking_lot::Mutex<Option<HostLauncher>> = parking_lot::Mutex::new(None);

fn host_launcher() -> Option<HostLauncher> {
    HOST_LAUNCHER.lock().clone()
}

fn host_program() -> std::io::Result<PathBuf> {
    match &*HOST_PROGRAM.lock() {
        Some(program) => Ok(program.clone()),
        None => std::env::current_exe(),
    }
}

/// `term` with every pid and port (at any depth) passed through `f`.
fn map_idents(term: Term, f: &mut impl FnMut(Term) -> Term) -> Term {
    match term {
        Term::Pid(_) | Term::Port(_) => f(term),
        Term::List(items) => Term::List(items.into_iter().map(|t| map_idents(t, f)).collect()),
        Term::ImproperList(items, tail) => Term::ImproperList(
            items.into_iter().map(|t| map_idents(t, f)).collect(),
            Box::new(map_idents(*tail, f)),
        ),
        Term::Tuple(items) => Term::Tuple(items.into_iter().map(|t| map_idents(t, f)).collect()),
        Term::Map(pairs) => Term::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (map_idents(k, f), map_idents(v, f)))
                .collect(),
        ),
        other => other,
    }
}

/// The atom `data` of a port's data output (`{Port, {data, Data}}`), interned once: interning
/// takes a lock.
fn data_atom() -> drv_term::Atom {
    static DATA: std::sync::OnceLock<drv_term::Atom> = std::sync::OnceLock::new();
    *DATA.get_or_init(|| drv_term::Atom::new("data"))
}
