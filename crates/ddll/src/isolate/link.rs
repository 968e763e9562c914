//! The parent's side of an isolated driver: its host process, the requests that callbacks
//! send it, the messages it sends back, and what happens when it dies.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use drv_abi::driver::Driver;
use drv_term::Term;
use parking_lot::{Condvar, Mutex};

use super::{frame, shm, Isolation};
use crate::port;
use crate::runtime::{atom, Inner, Runtime};

/// How long a new host has to say hello: past that, the program did not enter host mode.
const HELLO_WAIT: Duration = Duration::from_secs(10);
/// How long a host has to finish its driver on unload before it is killed.
const UNLOAD_WAIT: Duration = Duration::from_secs(5);
/// How long a host that closed its end has to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// The isolated drivers loaded, by the address of their proxy entry.
static LINKS: Mutex<Vec<(usize, Arc<Link>)>> = Mutex::new(Vec::new());

/// How long a public operation waits for the handling of a host's death to end (it is bounded
/// already: the reap kills a lingering host; this only guards against a stuck port).
const CRASH_HANDLING_WAIT: Duration = Duration::from_secs(10);

/// Hosts whose end is being handled (from the end of their stream until their ports have
/// exited and the driver is unloaded), with `CRASH_HANDLED` signalled when one is done.
static CRASHES_PENDING: Mutex<usize> = Mutex::new(0);
static CRASH_HANDLED: Condvar = Condvar::new();
/// The count without the lock: the fast path of [`await_crash_handling`].
static CRASHES_PENDING_HINT: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// Set on a link's reader thread, which does the handling: it never waits for it.
    static HANDLING_CRASH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The buffer this thread reads replies into, kept from one request to the next (a round
    /// trip allocates none); a compact reply holds it until its outputs are delivered.
    static REPLY_FRAME: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Gives `buf` back to this thread for its next reply (unless a large frame made it large).
fn keep_reply_frame(buf: Vec<u8>) {
    if buf.capacity() <= frame::BUFFER_KEPT {
        REPLY_FRAME.set(buf);
    }
}

/// Waits until the death of every isolated host noticed so far has been handled: its ports
/// have exited and its driver is unloaded. The public erl_ddll and port operations call it
/// first, so that once any operation has seen a crash (a callback that failed, an exit
/// signal received), the next one sees the driver gone and its name free to load again.
/// Inside a driver callback (which may hold a lock the handling needs) it returns at once.
pub(crate) fn await_crash_handling() {
    if CRASHES_PENDING_HINT.load(Ordering::Acquire) == 0 {
        return;
    }
    if HANDLING_CRASH.with(std::cell::Cell::get) || port::in_callback() {
        return;
    }
    let deadline = Instant::now() + CRASH_HANDLING_WAIT;
    let mut pending = CRASHES_PENDING.lock();
    while *pending > 0 {
        if CRASH_HANDLED.wait_until(&mut pending, deadline).timed_out() {
            return;
        }
    }
}

/// Counts a host's end as being handled until dropped.
struct CrashHandling;

impl CrashHandling {
    fn begin() -> CrashHandling {
        let mut pending = CRASHES_PENDING.lock();
        *pending += 1;
        CRASHES_PENDING_HINT.store(*pending, Ordering::Release);
        CrashHandling
    }
}

impl Drop for CrashHandling {
    fn drop(&mut self) {
        let mut pending = CRASHES_PENDING.lock();
        *pending -= 1;
        CRASHES_PENDING_HINT.store(*pending, Ordering::Release);
        CRASH_HANDLED.notify_all();
    }
}

/// One of the driver's ports as the child knows it.
#[derive(Debug, Clone, Copy)]
struct PortLink {
    /// The parent's handle.
    parent: u64,
    /// Still open in the child (its later messages are translated but an exit is not news).
    open: bool,
    /// Exited, but closing in the child with data in its driver queue: the parent's port
    /// lingers, closing, until the child's ends.
    lingering: bool,
}

/// An isolated driver's host process and the way to it.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) name: String,
    runtime: Weak<Inner>,
    child: Mutex<Option<Child>>,
    /// The request channel, held for a whole request: the caller writes it and reads the
    /// reply itself (no other thread wakes on the way), one request at a time.
    channel: Mutex<shm::Channel>,
    /// To close the channel while a request holds it: its waits end at once.
    channel_closer: shm::Closer,
    /// The channel's socket, to shut it down while a request holds `channel`.
    channel_handle: UnixStream,
    /// The host's death, once known (`Why`), and how many event batches have been
    /// delivered; signalled on `changed`.
    state: Mutex<LinkState>,
    changed: Condvar,
    timed_out: AtomicBool,
    /// The unload asked the host to go: its end is no crash.
    leaving: AtomicBool,
    /// The driver's ports, by the child's handle.
    ports: Mutex<crate::id_hash::IdHashMap<u64, PortLink>>,
    /// The host said its driver has work in flight: this runtime's erl_ddll holds a reference
    /// on the driver for it, as for an in-process driver's (see `in_flight.rs`). Held while
    /// the reference is taken or dropped, so that news of work in flight delivered on another
    /// thread as the host dies cannot take a reference after the crash dropped it.
    in_flight: Mutex<InFlight>,
}

/// The host's work in flight as this runtime's erl_ddll counts it.
#[derive(Debug, Default)]
struct InFlight {
    /// A reference is held for it.
    held: bool,
    /// The host died: no reference is taken again.
    ended: bool,
}

#[derive(Debug, Default)]
struct LinkState {
    death: Option<Term>,
    /// `{msgs, ...}` batches of the event channel delivered so far: a reply that says the
    /// host had sent `n` is delivered after the first `n`, keeping each mailbox's order.
    events_delivered: u64,
    /// Requests whose reply is not delivered yet (a request's turn lasts from its write until
    /// its [`Reply`]'s messages are in their mailboxes): the reader leaves the batches it reads
    /// meanwhile in `pending`. The requester delivers those the host sent before its reply
    /// first, on its own thread (where an exit of the port whose callback runs closes it at
    /// once); the thread that ends the last turn delivers the rest after its reply's messages.
    /// Were the turn to end at the reply, a batch read just then would overtake the reply's
    /// messages and the batches before it.
    turns: u32,
    /// Batches read during a turn, each with its number on the event channel (from 1).
    pending: VecDeque<(u64, Vec<Term>)>,
}

fn open_error(message: &str) -> ddll_core::LoadError {
    ddll_core::LoadError::OpenError(ddll_sys::intern_dynamic_error(message))
}

/// Loads driver `name` from `library` (absolute, `Path/Name` as erl_ddll joins them; the
/// file has `.so` added) in a new host process: the proxy driver the runtime keeps in its
/// tables.
pub(crate) fn load(
    library: &Path,
    name: &str,
    isolation: Isolation,
    loader: &super::LoaderIsolation<'_>,
) -> Result<Driver, ddll_core::LoadError> {
    // The host's erl_ddll loads the file by its own name from its folder, and the driver
    // must be called `name`: a `name` with a `/` in it reaches into another folder, and
    // the library there is `bad_driver_name`, as in process.
    // Split as text: a last part of `..` is a file name here (`DriverDir/...so`).
    let library = library.to_string_lossy();
    let (dir, file_name) = library.rsplit_once('/').unwrap_or(("", &library));
    let dir = if dir.is_empty() { "/" } else { dir };
    let link = Link::start(
        name,
        isolation,
        loader.runtime.clone(),
        loader.async_threads,
    )
    .map_err(|e| open_error(&format!("cannot start the isolated driver's host: {e}")))?;
    let request = Term::Tuple(vec![
        atom("load"),
        binary(dir),
        binary(file_name),
        binary(name),
    ]);
    let loaded = match link.request(&request) {
        Ok(mut replied) => {
            let reply = replied.take_reply();
            replied.deliver(None);
            reply
        }
        Err(why) => {
            return Err(open_error(&format!(
                "the isolated driver's host died loading it: {why}"
            )))
        }
    };
    let failed = |e: ddll_core::LoadError| {
        link.shut_down();
        Err(e)
    };
    match loaded {
        Term::Tuple(t) if t.len() == 3 && t[0] == atom("ok") => {
            let Term::Int(flags) = t[1] else {
                return failed(ddll_core::LoadError::UnspecifiedError);
            };
            let has_outputv = t[2] == atom("true");
            let Ok(driver) = super::proxy::driver(name, flags as i32, has_outputv) else {
                return failed(ddll_core::LoadError::UnspecifiedError);
            };
            LINKS.lock().push((driver.entry_address(), link.clone()));
            Ok(driver)
        }
        Term::Tuple(t) if t.len() == 2 && t[0] == atom("error") => failed(load_error(&t[1])),
        _ => failed(ddll_core::LoadError::UnspecifiedError),
    }
}

/// The load error the host reported.
fn load_error(reason: &Term) -> ddll_core::LoadError {
    use ddll_core::LoadError as L;
    match reason {
        Term::Tuple(t) if t.len() == 2 && t[0] == atom("open_error") => match &t[1] {
            Term::Binary(message) => open_error(&String::from_utf8_lossy(message)),
            _ => L::UnspecifiedError,
        },
        Term::Atom(a) => match a.as_str() {
            "no_driver_init" => L::NoDriverInit,
            "driver_init_failed" => L::DriverInitFailed,
            "bad_driver_name" => L::BadDriverName,
            "driver_incorrect_version" => L::DriverIncorrectVersion,
            _ => L::UnspecifiedError,
        },
        _ => L::UnspecifiedError,
    }
}

/// The driver is being unloaded: if it is isolated, its host finishes it and exits.
pub(crate) fn unloading(driver: &Driver) {
    let address = driver.entry_address();
    let link = {
        let mut links = LINKS.lock();
        let index = links.iter().position(|(a, _)| *a == address);
        index.map(|i| links.swap_remove(i).1)
    };
    if let Some(link) = link {
        link.shut_down();
    }
}

/// The reply of `port`'s host to `{What, ChildPort}` (the messages that came with it are
/// delivered); `None` for a port of an in-process driver or a host that is gone.
fn ask_host(port: &port::PortCell, what: &str) -> Option<Term> {
    let link = of_entry(port.driver.driver.entry_address())?;
    let child = link.child_of(port.handle)?;
    let request = Term::Tuple(vec![atom(what), Term::Port(drv_term::Port::local(child))]);
    let mut replied = link.request(&request).ok()?;
    let reply = replied.take_reply();
    replied.deliver(None);
    Some(reply)
}

/// The byte counts and queue size of a port of an isolated driver, which its host keeps:
/// `(input, output, queue size)`; `None` for another port (or a host that is gone).
pub(crate) fn port_counts(port: &port::PortCell) -> Option<(u64, u64, usize)> {
    let Term::Tuple(reply) = ask_host(port, "port_info")? else {
        return None;
    };
    match reply.as_slice() {
        [tag, Term::Tuple(counts)] if *tag == atom("ok") => match counts.as_slice() {
            [Term::Int(input), Term::Int(output), Term::Int(queue)] => Some((
                u64::try_from(*input).ok()?,
                u64::try_from(*output).ok()?,
                usize::try_from(*queue).ok()?,
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Parent process `pid` exits with `reason` (its ports, `linked`, are about to get the
/// signal): its mirror in each host exits first, as the process is dead before its ports
/// close (their `stop` finds no receiver in it), and the driver's monitors of it fire. The
/// host closes the ports the mirror owns as this side closes the ones `pid` owns; those are
/// marked closed here first, so neither side tells the other.
pub(crate) fn process_exited(pid: &drv_term::Pid, reason: &Term, linked: &[Arc<port::PortCell>]) {
    let links: Vec<Arc<Link>> = {
        let links = LINKS.lock();
        if links.is_empty() {
            return;
        }
        links.iter().map(|(_, link)| link.clone()).collect()
    };
    for port in linked {
        // The same test as the runtime's exit: `normal` closes only the ports it owns.
        if *reason == atom("normal") && port.owner.pid() != pid {
            continue;
        }
        for link in &links {
            let mut ports = link.ports.lock();
            if let Some(open) = ports.values_mut().find(|p| p.parent == port.handle) {
                open.open = false;
            }
        }
    }
    let request = Term::Tuple(vec![atom("exit"), Term::Pid(*pid), reason.clone()]);
    for link in links {
        if let Ok(replied) = link.request(&request) {
            replied.deliver(None);
        }
    }
}

/// The processes the driver of `port` monitors (`driver_monitor_process`), which its host
/// keeps, in the order the monitors were made; `None` for a port of an in-process driver
/// (or a host that is gone).
pub(crate) fn port_monitors(port: &port::PortCell) -> Option<Vec<drv_term::Pid>> {
    match ask_host(port, "port_monitors")? {
        Term::Tuple(reply) => match reply.as_slice() {
            [tag, Term::List(pids)] if *tag == atom("ok") => pids
                .iter()
                .map(|pid| match pid {
                    Term::Pid(pid) => Some(*pid),
                    _ => None,
                })
                .collect(),
            _ => None,
        },
        _ => None,
    }
}

/// The parent's `port` exits with `reason` (not `kill`): so does the child's, which stays,
/// closing, while data is left in its driver queue (its `flush` called); whether it does. The
/// parent's port then lingers too, marked closing here, until the child's ends (see
/// [`port_lingers`]). `false` for a port of an in-process driver.
pub(crate) fn port_exiting(port: &port::PortCell, reason: &Term) -> bool {
    let Some(link) = of_entry(port.driver.driver.entry_address()) else {
        return false;
    };
    let child = {
        let mut ports = link.ports.lock();
        let Some((child, state)) = ports.iter_mut().find(|(_, p)| p.parent == port.handle) else {
            return false;
        };
        // Marked first: the child's exit signal and its end are old news from now on.
        state.open = false;
        *child
    };
    if link.death().is_some() {
        return false;
    }
    let request = Term::Tuple(vec![
        atom("close"),
        Term::Port(drv_term::Port::local(child)),
        reason.clone(),
    ]);
    let Ok(replied) = link.request(&request) else {
        return false;
    };
    // A child's port that ended within the request (its flush arranged a callback that ran at
    // once) lingers no more: the reply's messages say it is gone.
    let gone = Term::Tuple(vec![
        atom("port_gone"),
        Term::Port(drv_term::Port::local(child)),
    ]);
    let lingers = matches!(&replied.reply, Term::Tuple(t) if t.len() == 2 && t[0] == atom("ok") && t[1] == atom("true"))
        && !replied.messages.contains(&gone);
    if lingers {
        // Closing before the reader can see it linger: its end (`port_gone`) then finds the
        // port closing, to terminate.
        let _serial = port.lock.lock();
        port.queue.start_closing();
        if let Some(state) = link.ports.lock().get_mut(&child) {
            state.lingering = true;
        }
    }
    replied.deliver(None);
    lingers
}

/// Whether the parent's closing `port` waits for its isolated driver's port to end (its
/// driver queue to be emptied there).
pub(crate) fn port_lingers(port: &port::PortCell) -> bool {
    let Some(link) = of_entry(port.driver.driver.entry_address()) else {
        return false;
    };
    let lingers = link
        .ports
        .lock()
        .values()
        .any(|p| p.parent == port.handle && p.lingering);
    lingers
}

/// The parent's `port` (of an isolated driver, else nothing happens) is now connected to
/// `pid` (`linked`: by `port_connect`, which links it): so is the host's, so that the
/// driver's output and `driver_connected` go to `pid`'s mirror.
pub(crate) fn port_connected(port: &port::PortCell, pid: &drv_term::Pid, linked: bool) {
    let Some(link) = of_entry(port.driver.driver.entry_address()) else {
        return;
    };
    let Some(child) = link.child_of(port.handle) else {
        return;
    };
    let request = Term::Tuple(vec![
        atom("connect"),
        Term::Port(drv_term::Port::local(child)),
        Term::Pid(*pid),
        atom(if linked { "true" } else { "false" }),
    ]);
    let requested = link.request(&request);
    if let Ok(replied) = requested {
        replied.deliver(None);
    }
}

/// The link of the proxy entry at `address`.
pub(super) fn of_entry(address: usize) -> Option<Arc<Link>> {
    LINKS
        .lock()
        .iter()
        .find(|(a, _)| *a == address)
        .map(|(_, l)| l.clone())
}

/// `ok`, interned once (interning takes a lock).
pub(super) fn ok_atom() -> Term {
    static OK: std::sync::OnceLock<Term> = std::sync::OnceLock::new();
    OK.get_or_init(|| atom("ok")).clone()
}

pub(super) fn binary(text: &str) -> Term {
    Term::Binary(Bytes::copy_from_slice(text.as_bytes()))
}

/// A request's reply and the messages to deliver with it, holding the request's turn (see
/// `LinkState::turns`) until [`Reply::deliver`]; dropped undelivered, it delivers them.
#[derive(Debug)]
pub(crate) struct Reply<'a> {
    pub(super) reply: Term,
    /// The host's batches sent before the reply, then the reply's own messages.
    pub(super) messages: Vec<Term>,
    /// A compact reply's frame as `frame::parse` read it whole (empty for another reply),
    /// whose outputs are the reply's messages (`messages` then holds only batches).
    outputs: Vec<u8>,
    /// Borrowed from the requester (no count to take and drop per request).
    link: &'a Arc<Link>,
    /// Whether the request took a turn (the reader thread takes none) not ended yet.
    turn: bool,
    /// The host's and the parent's handles of the port whose callback delivers the reply.
    own_port: Option<(u64, u64)>,
    delivered: bool,
}

impl Reply<'_> {
    /// Takes the reply out (its messages stay, to deliver).
    pub(super) fn take_reply(&mut self) -> Term {
        std::mem::replace(&mut self.reply, Term::List(Vec::new()))
    }

    /// Delivers the messages (`current`: as [`Link::deliver`]) and ends the turn.
    pub(super) fn deliver(mut self, current: Option<u64>) {
        self.deliver_now(current);
    }

    /// [`Reply::deliver`] in a callback of the parent's port `parent`, the host's `child`
    /// (see [`Link::deliver_outputs`]).
    pub(super) fn deliver_in_callback(mut self, child: u64, parent: u64) {
        self.own_port = Some((child, parent));
        self.deliver_now(Some(parent));
    }

    fn deliver_now(&mut self, current: Option<u64>) {
        if std::mem::replace(&mut self.delivered, true) {
            return;
        }
        // A compact reply has no messages: no runtime to look up for them.
        if !self.messages.is_empty() {
            self.link
                .deliver(std::mem::take(&mut self.messages), current);
        }
        if !self.outputs.is_empty() {
            let compact = std::mem::take(&mut self.outputs);
            self.link
                .deliver_outputs(frame::Outputs::of_parsed(&compact), self.own_port);
            keep_reply_frame(compact);
        }
        if std::mem::take(&mut self.turn) {
            self.link.end_turn(current);
        }
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        self.deliver_now(None);
    }
}

impl Link {
    fn start(
        name: &str,
        isolation: Isolation,
        runtime: Weak<Inner>,
        async_threads: usize,
    ) -> std::io::Result<Arc<Link>> {
        let (mut ours, theirs) = UnixStream::pair()?;
        let (events, their_events) = UnixStream::pair()?;
        let region = shm::create()?;
        let spin = isolation.spin_budget();
        let program = super::host_program()?;
        let launcher = super::host_launcher().unwrap_or_default();
        let mut command = match launcher.prefix.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(program);
                command
            }
            None => Command::new(program),
        };
        command
            .envs(launcher.env.iter().map(|(k, v)| (k, v)))
            .env(super::HOST_ENV, "1")
            .env(super::ASYNC_ENV, async_threads.to_string())
            .env_remove(super::TIMEOUT_ENV)
            .env(super::SPIN_ENV, spin.as_micros().to_string())
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)));
        if let Some(limit) = isolation.callback_timeout {
            command.env(super::TIMEOUT_ENV, limit.as_millis().max(1).to_string());
        }
        let inherited = [
            (their_events.as_raw_fd(), frame::EVENT_FD),
            (region.as_raw_fd(), shm::SHM_FD),
        ];
        // SAFETY: runs in the forked child before exec and calls only `dup2` and `fcntl`,
        // which are async-signal-safe; the descriptors are open in the child (inherited).
        unsafe {
            command.pre_exec(move || {
                // Each first copied above the targets (close-on-exec), so that moving one
                // into place cannot overwrite another not moved yet; `dup2` clears
                // close-on-exec on the target.
                let mut copies = [0; 2];
                for (copy, (fd, _)) in copies.iter_mut().zip(inherited) {
                    *copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 16);
                    if *copy == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (copy, (_, target)) in copies.into_iter().zip(inherited) {
                    if libc::dup2(copy, target) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let pid = child.id();
        drop(their_events);
        // A launcher (a memory checker) may take many times longer to get the host going.
        let hello_wait = if launcher.prefix.is_empty() {
            HELLO_WAIT
        } else {
            HELLO_WAIT * 6
        };
        ours.set_read_timeout(Some(hello_wait))?;
        let hello = frame::read(&mut ours);
        if !matches!(&hello, Ok(Term::Tuple(t)) if t.first() == Some(&atom("hello"))) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(
                "the host program did not enter host mode (call \
                 ddll::isolate::run_host_if_requested() first in main, or name a program that \
                 does with ddll::isolate::set_host_program)",
            ));
        }
        ours.set_read_timeout(None)?;
        let channel_handle = ours.try_clone()?;
        let mut channel = shm::Channel::open(&region, shm::Side::Parent, ours, spin)?;
        // A reply later than the callback timeout ends the host (`request`).
        channel.set_read_timeout(isolation.callback_timeout);
        let link = Arc::new(Link {
            name: name.to_owned(),
            runtime,
            child: Mutex::new(Some(child)),
            channel_closer: channel.closer(),
            channel_handle,
            channel: Mutex::new(channel),
            state: Mutex::new(LinkState::default()),
            changed: Condvar::new(),
            timed_out: AtomicBool::new(false),
            leaving: AtomicBool::new(false),
            ports: Mutex::new(Default::default()),
            in_flight: Mutex::new(InFlight::default()),
        });
        let events = HostEvents::new(events, pid);
        let reader = link.clone();
        std::thread::Builder::new()
            .name(format!("ddll-isolate-{name}"))
            .spawn(move || reader.read_until_death(events))?;
        Ok(link)
    }

    /// Why the host died, if it has.
    pub(super) fn death(&self) -> Option<Term> {
        self.state.lock().death.clone()
    }

    /// Sends `request` and waits for its reply, or why the host died first. A wait past the
    /// callback timeout kills the host. The reply's messages (after the host's batches that
    /// preceded it) go to their mailboxes by [`Reply::deliver`], which ends the request's
    /// turn; until then later batches wait.
    pub(super) fn request(self: &Arc<Self>, request: &Term) -> Result<Reply<'_>, Term> {
        self.send(&frame::Request::Term(request))
    }

    /// [`Link::request`] of any request: a command in its compact form.
    pub(super) fn send(self: &Arc<Self>, request: &frame::Request<'_>) -> Result<Reply<'_>, Term> {
        let mut channel = self.channel.lock();
        // The reader thread delivers its batches itself, in order: it waits for none.
        let on_reader = HANDLING_CRASH.with(std::cell::Cell::get);
        {
            // One look at the state: the death, and the turn taken.
            let mut state = self.state.lock();
            if let Some(why) = &state.death {
                return Err(why.clone());
            }
            if !on_reader {
                state.turns += 1;
            }
        }
        let outcome = self.exchange(&mut channel, request);
        drop(channel);
        if on_reader {
            return outcome.map(|(reply, messages, outputs, _)| Reply {
                reply,
                messages,
                outputs,
                link: self,
                turn: false,
                own_port: None,
                delivered: false,
            });
        }
        match outcome {
            Ok((reply, messages, outputs, sent)) => {
                // The batches the host sent before the reply (waited for here) go first;
                // those after it wait for the end of the turn.
                let mut all = Vec::new();
                {
                    let mut state = self.state.lock();
                    self.await_events(&mut state, sent);
                    while state.pending.front().is_some_and(|(n, _)| *n <= sent) {
                        let (_, batch) = state.pending.pop_front().expect("a front batch");
                        all.extend(batch);
                    }
                }
                if all.is_empty() {
                    all = messages;
                } else {
                    all.extend(messages);
                }
                Ok(Reply {
                    reply,
                    messages: all,
                    outputs,
                    link: self,
                    turn: true,
                    own_port: None,
                    delivered: false,
                })
            }
            Err(why) => {
                // The host died: what it sent first still goes to its processes.
                self.end_turn(None);
                Err(why)
            }
        }
    }

    /// Ends a request's turn: the last one delivers what the reader parked meanwhile, on this
    /// thread, until none is left.
    fn end_turn(self: &Arc<Self>, current: Option<u64>) {
        loop {
            let parked = {
                let mut state = self.state.lock();
                if state.turns > 1 || state.pending.is_empty() {
                    state.turns -= 1;
                    return;
                }
                std::mem::take(&mut state.pending)
            };
            for (_, batch) in parked {
                self.deliver(batch, current);
            }
        }
    }

    /// [`Link::request`]'s exchange on the held `channel`.
    fn exchange(
        &self,
        channel: &mut shm::Channel,
        request: &frame::Request<'_>,
    ) -> Result<(Term, Vec<Term>, Vec<u8>, u64), Term> {
        if frame::write_request(channel, request).is_err() {
            return Err(self.wait_for_death());
        }
        let mut buf = REPLY_FRAME.take();
        let reply = match frame::read_frame(&mut *channel, &mut buf) {
            // Its outputs are delivered from the frame as read: it goes with the reply.
            Ok(frame::Frame::Outputs { sent, .. }) => {
                return Ok((ok_atom(), Vec::new(), buf, sent));
            }
            Ok(frame::Frame::Term(term)) => Ok(term),
            Ok(frame::Frame::Command { .. }) => Err(None),
            Err(e) => Err(Some(e)),
        };
        keep_reply_frame(buf);
        match reply {
            Ok(Term::Tuple(items)) => match <[Term; 4]>::try_from(items) {
                Ok([tag, reply, Term::List(messages), Term::Int(sent)]) if tag == atom("reply") => {
                    let sent = u64::try_from(sent).unwrap_or(0);
                    Ok((reply, messages, Vec::new(), sent))
                }
                _ => {
                    self.kill();
                    Err(self.wait_for_death())
                }
            },
            Err(Some(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.timed_out.store(true, Ordering::Release);
                self.kill();
                Err(self.wait_for_death())
            }
            _ => Err(self.wait_for_death()),
        }
    }

    /// Waits until the first `sent` event batches have been delivered (or the host died).
    fn await_events(&self, state: &mut parking_lot::MutexGuard<'_, LinkState>, sent: u64) {
        if state.events_delivered >= sent {
            return;
        }
        // Read only when waiting: the clock costs as much as the rest of a round trip's look.
        let deadline = Instant::now() + EXIT_WAIT;
        while state.events_delivered < sent && state.death.is_none() {
            if self.changed.wait_until(state, deadline).timed_out() {
                return;
            }
        }
    }

    /// Waits (boundedly: the reader sees the event channel close) for the host's death.
    fn wait_for_death(&self) -> Term {
        let deadline = Instant::now() + EXIT_WAIT * 2;
        let mut state = self.state.lock();
        loop {
            if let Some(why) = &state.death {
                return why.clone();
            }
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                drop(state);
                self.kill();
                return self.death().unwrap_or_else(|| atom("sigkill"));
            }
        }
    }

    fn kill(&self) {
        if let Some(child) = self.child.lock().as_mut() {
            let _ = child.kill();
        }
    }

    /// Asks the host to finish the driver and exit (the unload), killing it if it takes too
    /// long; then reaps it.
    pub(super) fn shut_down(&self) {
        self.leaving.store(true, Ordering::Release);
        let deadline = Instant::now() + UNLOAD_WAIT;
        if self.death().is_none() {
            // A request still in flight (a callback that hangs, no timeout) gets the kill.
            if let Some(mut channel) = self.channel.try_lock_until(deadline) {
                if frame::write(&mut *channel, &Term::Tuple(vec![atom("unload")])).is_ok() {
                    let mut state = self.state.lock();
                    while state.death.is_none() {
                        if self.changed.wait_until(&mut state, deadline).timed_out() {
                            break;
                        }
                    }
                }
            }
        }
        // The host exits after its last reply; unblock whoever still waits on it.
        self.channel_closer.close();
        let _ = self.channel_handle.shutdown(std::net::Shutdown::Both);
        self.reap();
    }

    /// The reader thread of the event channel: messages the host made outside requests to
    /// their processes; at the end of the stream, the death.
    fn read_until_death(self: Arc<Self>, mut input: HostEvents) {
        HANDLING_CRASH.with(|h| h.set(true));
        loop {
            let Ok(Term::Tuple(items)) = frame::read(&mut input) else {
                break;
            };
            match items.as_slice() {
                [tag, Term::List(messages)] if *tag == atom("msgs") => {
                    let mut state = self.state.lock();
                    if state.turns > 0 {
                        let number = state.events_delivered + 1;
                        state.pending.push_back((number, messages.clone()));
                    } else {
                        drop(state);
                        self.deliver(messages.clone(), None);
                        state = self.state.lock();
                    }
                    state.events_delivered += 1;
                    drop(state);
                    self.changed.notify_all();
                }
                // The host's watchdog is about to kill it: a callback it ran on its own (a
                // timeout, an async completion, a select event) overran.
                [tag] if *tag == atom("callback_timeout") => {
                    self.timed_out.store(true, Ordering::Release);
                }
                _ => {}
            }
        }
        // A request waiting for its reply learns at once that none will come.
        self.channel_closer.close();
        // Counted before anyone can learn of the death (`reap` records it): whoever does
        // and then looks at erl_ddll's state waits for the handling to end.
        let _handling = CrashHandling::begin();
        let why = self.reap();
        if !self.leaving.load(Ordering::Acquire) {
            self.crashed(why);
        }
    }

    /// Waits for the host to exit (killing it if it lingers) and records why it did.
    fn reap(&self) -> Term {
        let child = self.child.lock().take();
        let why = match child {
            Some(mut child) => {
                let deadline = Instant::now() + EXIT_WAIT;
                let status = loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break Some(status),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Ok(None) => {
                            let _ = child.kill();
                            break child.wait().ok();
                        }
                        Err(_) => break None,
                    }
                };
                if self.timed_out.load(Ordering::Acquire) {
                    atom("callback_timeout")
                } else {
                    status.map_or_else(|| atom("unknown"), exit_reason)
                }
            }
            None => self.death().unwrap_or_else(|| atom("unknown")),
        };
        let mut state = self.state.lock();
        let why = state.death.get_or_insert(why).clone();
        drop(state);
        self.changed.notify_all();
        why
    }

    /// The host died: each port of the driver exits with `{driver_crashed, Why}`, then the
    /// driver is unloaded as by `kill_ports`.
    fn crashed(&self, why: Term) {
        // Unloaded meanwhile: nothing of it is left to end.
        if !LINKS
            .lock()
            .iter()
            .any(|(_, l)| std::ptr::eq(Arc::as_ptr(l), self))
        {
            return;
        }
        let Some(inner) = self.runtime.upgrade() else {
            return;
        };
        let runtime = Runtime::from_inner(inner);
        self.end_in_flight(&runtime);
        let reason = Term::Tuple(vec![atom("driver_crashed"), why]);
        let ports: Vec<u64> = self.ports.lock().values().map(|p| p.parent).collect();
        for handle in ports {
            if let Some(cell) = port::lookup(handle) {
                runtime.close_port(&cell, reason.clone());
            }
        }
        unload_everywhere(&runtime, &self.name);
    }

    /// The child's handle of the parent's port `parent`, open or closing there.
    fn child_of(&self, parent: u64) -> Option<u64> {
        self.ports
            .lock()
            .iter()
            .find(|(_, p)| p.parent == parent && (p.open || p.lingering))
            .map(|(child, _)| *child)
    }

    /// Registers a port the child opened as `child` for the parent's `parent`.
    pub(super) fn port_opened(&self, child: u64, parent: u64) {
        self.ports.lock().insert(
            child,
            PortLink {
                parent,
                open: true,
                lingering: false,
            },
        );
    }

    /// The host's open for the parent's `parent` failed: a port of the child that `messages`
    /// name and this side does not know is the one that failed (its init acknowledgement
    /// refused the open after it sent them), closed already.
    pub(super) fn adopt_failed_open(&self, messages: &[Term], parent: u64) {
        let mut ports = self.ports.lock();
        for message in messages {
            super::map_idents(message.clone(), &mut |term| {
                if let Term::Port(port) = &term {
                    if let Some(child) = port.local_id() {
                        ports.entry(child).or_insert(PortLink {
                            parent,
                            open: false,
                            lingering: false,
                        });
                    }
                }
                term
            });
        }
    }

    /// The host's driver has work in flight (`busy`) or no longer: erl_ddll's reference for
    /// it is taken or dropped (then, unless a callback runs, `settle` may finish an unload it
    /// held back; else the operation's own settle does).
    fn set_in_flight(&self, runtime: &Runtime, busy: bool, settle: bool) {
        let mut in_flight = self.in_flight.lock();
        if in_flight.held == busy || busy && in_flight.ended {
            return;
        }
        in_flight.held = busy;
        let _ = runtime.with_core(|core, _| {
            if busy {
                core.reference(&self.name)
            } else {
                core.dereference(&self.name)
            }
        });
        drop(in_flight);
        if !busy && settle {
            drop(runtime.settle_at_end());
        }
    }

    /// The host died: its work in flight died with it, and news of more that is still on its
    /// way takes no reference.
    fn end_in_flight(&self, runtime: &Runtime) {
        let mut in_flight = self.in_flight.lock();
        in_flight.ended = true;
        if std::mem::take(&mut in_flight.held) {
            let _ = runtime.with_core(|core, _| core.dereference(&self.name));
        }
    }

    /// The host's driver created the port `child` for `owner`, named `name`, in a callback of
    /// its port `creator`: the parent's port for it is created the same way, as the parent's
    /// creator's. In a callback of `current` (the parent's port whose callback, the proxy's,
    /// runs on this thread) the new port is handed over locked until it returns, as in
    /// process; created in a callback the host ran on its own (a timeout, an accept in
    /// `ready_input`), it is created free.
    fn port_created(
        self: &Arc<Self>,
        runtime: &Runtime,
        current: Option<u64>,
        child: &drv_term::Port,
        owner: &drv_term::Pid,
        name: &[u8],
        creator: &drv_term::Port,
    ) {
        let creator = creator
            .local_id()
            .and_then(|creator| self.ports.lock().get(&creator).map(|p| p.parent));
        let (Some(creator), Some(child)) = (creator.and_then(port::lookup), child.local_id())
        else {
            return;
        };
        let in_creator_callback = current == Some(creator.handle);
        let name = String::from_utf8_lossy(name);
        if let Some(parent) = super::proxy::create_port(
            runtime,
            &creator,
            self,
            child,
            owner,
            &name,
            in_creator_callback,
        ) {
            self.port_opened(child, parent);
        }
    }

    /// The child's port `child` has ended: whether the parent's lingered, waiting for it.
    fn stop_lingering(&self, child: u64) -> bool {
        match self.ports.lock().get_mut(&child) {
            Some(link) => std::mem::replace(&mut link.lingering, false),
            None => false,
        }
    }

    /// Marks the child's port closed; whether it was open.
    pub(super) fn port_closing(&self, child: u64) -> bool {
        match self.ports.lock().get_mut(&child) {
            Some(link) => std::mem::replace(&mut link.open, false),
            None => false,
        }
    }

    /// Delivers `{ParentPid, Message}` items from the host, its ports made the parent's. An
    /// exit signal of an open port of the driver closes the parent's port with its reason
    /// instead: at once if it is `current` (whose callback this thread runs), else on a thread
    /// of its own (it takes the port's callback lock).
    pub(super) fn deliver(self: &Arc<Self>, messages: Vec<Term>, current: Option<u64>) {
        let Some(inner) = self.runtime.upgrade() else {
            return;
        };
        let runtime = Runtime::from_inner(inner);
        for item in messages {
            if item == atom("lock_driver") {
                runtime.lock_driver(&self.name);
                continue;
            }
            if let Term::Tuple(news) = &item {
                match news.as_slice() {
                    [tag, busy] if *tag == atom("in_flight") => {
                        self.set_in_flight(&runtime, *busy == atom("true"), current.is_none());
                        continue;
                    }
                    [tag, Term::Port(child), Term::Pid(owner), Term::Binary(name), Term::Port(creator)]
                        if *tag == atom("created") =>
                    {
                        self.port_created(&runtime, current, child, owner, name, creator);
                        continue;
                    }
                    // The host's port is busy (`set_busy_port`) or no longer: so is the
                    // parent's, which holds up (or lets go) its senders.
                    [tag, Term::Port(child), busy] if *tag == atom("busy") => {
                        let parent = child
                            .local_id()
                            .and_then(|child| self.ports.lock().get(&child).map(|p| p.parent));
                        if let Some(cell) = parent.and_then(port::lookup) {
                            cell.busy.set_port(*busy == atom("true"));
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            let Term::Tuple(mut pair) = item else {
                continue;
            };
            // The child's port closed with no exit signal (`driver_exit` unlinks its
            // connected process first): so does the parent's.
            let gone = match pair.as_slice() {
                [tag, Term::Port(port)] if *tag == atom("port_gone") => port.local_id(),
                _ => None,
            };
            let exit = match gone {
                Some(child) => Some((child, None)),
                None => {
                    let (Some(message), Some(Term::Pid(to))) = (pair.pop(), pair.pop()) else {
                        continue;
                    };
                    match port_exit(&message) {
                        Some((child, reason)) => Some((child, Some(reason))),
                        None => {
                            let message = self.to_parent(message);
                            if let Some(process) = runtime.process(&to) {
                                process.deliver(message);
                            }
                            None
                        }
                    }
                }
            };
            if let Some((child, reason)) = exit {
                let Some(link) = self.ports.lock().get(&child).copied() else {
                    continue;
                };
                let Some(cell) = port::lookup(link.parent) else {
                    continue;
                };
                // The child's closing port has ended: so does the parent's, which waited for
                // it (at the end of the callback running now, or here).
                if reason.is_none() && self.stop_lingering(child) {
                    if current != Some(link.parent) {
                        let _ = std::thread::Builder::new()
                            .name("ddll-isolate-exit".into())
                            .spawn(move || Runtime::after_callback(&cell));
                    }
                    continue;
                }
                // A port this side closed first: its exit is old news.
                if !self.port_closing(child) {
                    continue;
                }
                let lock = cell.lock.clone();
                let close = move |runtime: &Runtime| match reason {
                    Some(reason) => runtime.close_port(&cell, reason),
                    None => {
                        let connected = *cell.owner.pid();
                        cell.state.lock().links.retain(|l| *l.pid() != connected);
                        runtime.close_port(&cell, atom("normal"));
                    }
                };
                if current == Some(link.parent) {
                    close(&runtime);
                } else if let Some(_serial) = lock.try_lock() {
                    // Free (and reentrant): closed here, before the messages that follow its
                    // exit (its `stop`'s output) are delivered.
                    close(&runtime);
                    drop(runtime.settle_at_end());
                } else {
                    let runtime = runtime.clone();
                    let _ = std::thread::Builder::new()
                        .name("ddll-isolate-exit".into())
                        .spawn(move || {
                            let _settle = runtime.settle_at_end();
                            close(&runtime);
                        });
                }
            }
        }
    }

    /// Delivers a compact reply's data output, its ports made the parent's. Output of
    /// `own_port` (the host's and the parent's handles of the port whose callback runs on this
    /// thread) to that port's owner, an echo's, goes to the owner through the port: no
    /// runtime, port map or process table to look at.
    fn deliver_outputs(&self, outputs: frame::Outputs<'_>, own_port: Option<(u64, u64)>) {
        let data = super::data_atom();
        let message = |port: u64, output: &frame::Output<'_>| {
            let piece = drv_term::DataPiece::Borrowed(output.data);
            drv_term::FlatTerm::port_data(drv_term::Port::local(port), data, &[], &[piece], true)
        };
        let mut runtime = None;
        for output in outputs {
            if let Some((_, parent)) = own_port.filter(|(child, _)| *child == output.port) {
                let delivered = port::with_current_port(|cell| {
                    let owner = cell.owner.get();
                    let is_owner = owner.pid().local_id() == Some(output.to);
                    if cell.handle == parent && is_owner {
                        owner.deliver(message(parent, &output));
                    }
                    cell.handle == parent && is_owner
                });
                if delivered == Some(true) {
                    continue;
                }
            }
            if runtime.is_none() {
                let Some(inner) = self.runtime.upgrade() else {
                    return;
                };
                runtime = Some(Runtime::from_inner(inner));
            }
            let runtime = runtime.as_ref().expect("upgraded above");
            let port = self
                .ports
                .lock()
                .get(&output.port)
                .map_or(output.port, |p| p.parent);
            let Some(process) = runtime.process(&drv_term::Pid::local(output.to)) else {
                continue;
            };
            process.deliver(message(port, &output));
        }
    }

    /// `term` with the child's ports replaced by the parent's.
    pub(super) fn to_parent(&self, term: Term) -> Term {
        // An atom, a number or a binary (a command's `ok`) holds no port: no lock for it.
        if matches!(
            term,
            Term::Atom(_)
                | Term::Int(_)
                | Term::BigInt(_)
                | Term::Float(_)
                | Term::Binary(_)
                | Term::Bitstring(_)
                | Term::Pid(_)
                | Term::Ref(_)
        ) {
            return term;
        }
        let ports = self.ports.lock();
        super::map_idents(term, &mut |term| match term {
            Term::Port(p) => match p.local_id().and_then(|id| ports.get(&id)) {
                Some(link) => Term::Port(drv_term::Port::local(link.parent)),
                None => Term::Port(p),
            },
            other => other,
        })
    }
}

/// `{'EXIT', ChildPort, Reason}`: the child's port handle and the reason.
fn port_exit(message: &Term) -> Option<(u64, Term)> {
    let Term::Tuple(items) = message else {
        return None;
    };
    match items.as_slice() {
        [tag, Term::Port(port), reason] if *tag == atom("EXIT") => {
            Some((port.local_id()?, reason.clone()))
        }
        _ => None,
    }
}

/// `Why` for a host that exited with `status`: the signal's lower-case name, or
/// `{exit, Status}`.
fn exit_reason(status: std::process::ExitStatus) -> Term {
    if let Some(signal) = status.signal() {
        return atom(&signal_name(signal));
    }
    Term::Tuple(vec![
        atom("exit"),
        Term::Int(i64::from(status.code().unwrap_or(-1))),
    ])
}

fn signal_name(signal: i32) -> String {
    let known = [
        (libc::SIGSEGV, "sigsegv"),
        (libc::SIGABRT, "sigabrt"),
        (libc::SIGBUS, "sigbus"),
        (libc::SIGFPE, "sigfpe"),
        (libc::SIGILL, "sigill"),
        (libc::SIGKILL, "sigkill"),
        (libc::SIGTERM, "sigterm"),
        (libc::SIGPIPE, "sigpipe"),
        (libc::SIGTRAP, "sigtrap"),
        (libc::SIGSYS, "sigsys"),
        (libc::SIGXCPU, "sigxcpu"),
    ];
    known
        .iter()
        .find(|(n, _)| *n == signal)
        .map_or_else(|| format!("sig{signal}"), |(_, name)| (*name).to_owned())
}

/// Unloads driver `name` as `kill_ports` would, for every process holding it: each drops
/// all its load references (its ports are already gone).
fn unload_everywhere(runtime: &Runtime, name: &str) {
    let _settle = runtime.settle_at_end();
    let Ok(ddll_core::InfoValue::Processes(holders)) =
        runtime.driver_info(name, ddll_core::InfoItem::Processes)
    else {
        return;
    };
    let options = ddll_core::UnloadOptions {
        kill_ports: true,
        monitor: None,
    };
    for (key, count) in holders {
        let pid = runtime.pid_of(key);
        for _ in 0..count {
            let _ = runtime.try_unload(&pid, name, options);
        }
    }
}

/// The event channel as the reader sees it: its end of stream is the host's death, which the
/// socket alone shows only while nobody else holds the host's end. A process the driver forked
/// holds it on past the host's death (close on exec covers only programs it started), so the
/// host's exit is also watched through a `pidfd`: once the host has exited and what it sent
/// has been read, the stream ends. Without a `pidfd` (a kernel before 5.3), the socket alone.
struct HostEvents {
    socket: UnixStream,
    host_exit: Option<std::os::fd::OwnedFd>,
}

impl HostEvents {
    fn new(socket: UnixStream, pid: u32) -> HostEvents {
        use std::os::fd::FromRawFd;
        // SAFETY: `pidfd_open` takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let host_exit = i32::try_from(fd).ok().filter(|&fd| fd >= 0).map(|fd| {
            // SAFETY: a descriptor `pidfd_open` just returned, owned by nobody else.
            unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
        });
        HostEvents { socket, host_exit }
    }
}

impl std::io::Read for HostEvents {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(host_exit) = &self.host_exit else {
            return self.socket.read(buf);
        };
        let mut fds = [
            libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: host_exit.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            // SAFETY: two valid pollfds for the duration of the call.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if ready < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            // What the host sent before it died is read first.
            if fds[0].revents != 0 {
                return self.socket.read(buf);
            }
            if fds[1].revents != 0 {
                return Ok(0);
            }
        }
    }
}
