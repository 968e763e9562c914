//! The host mode: a child process that runs one isolated driver on an ordinary [`Runtime`]
//! and answers its parent's requests (see `mod.rs` for the protocol).
//!
//! Each parent process that opens or drives a port has a mirror process here (it owns the
//! port, or is `driver_caller`); whatever reaches a mirror's mailbox goes to the parent with
//! mirror pids replaced by the parent's. Messages made during a request travel in its reply,
//! so they arrive before the request returns; the rest (driver threads, timers, async jobs,
//! select events) are sent by a pump thread that looks at the mailboxes every millisecond.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drv_term::{Pid, Term};
use parking_lot::Mutex;

use super::frame::{self, Frame};
use crate::id_hash::IdHashMap;
use crate::options::{PortOptions, RuntimeOptions};
use crate::process::Process;
use crate::runtime::{atom, Runtime};

/// How often the pump looks for messages made outside requests.
const PUMP_INTERVAL: Duration = Duration::from_millis(1);

/// Exit status of a host whose parent spoke nonsense or whose runtime could not start.
pub(crate) const PROTOCOL_FAILURE: i32 = 70;

/// The parent's processes as seen here, and the way back to them.
struct Mirrors {
    by_parent: IdHashMap<Pid, Arc<Process>>,
    to_parent: IdHashMap<Pid, Pid>,
}

struct Host {
    runtime: Runtime,
    /// Holds the driver's erl_ddll reference.
    loader: Arc<Process>,
    /// The driver, once loaded: whether it has work in flight (async jobs, timers) is news
    /// for the parent, whose erl_ddll holds the driver loaded meanwhile.
    /// (Weak: a strong reference would hold up the driver's unload, which waits for them.)
    /// (Set once: a host loads one driver; no lock for a drain to take.)
    driver: std::sync::OnceLock<std::sync::Weak<crate::drivers::LoadedDriver>>,
    /// What the parent was last told of the driver's work in flight.
    in_flight_told: std::sync::atomic::AtomicBool,
    mirrors: Mutex<Mirrors>,
    /// The ports the parent opened that are still open here: one that closes on its own
    /// (`driver_exit`, which sends no exit signal) is news for the parent.
    /// Each with whether the parent was last told it is busy (`set_busy_port`).
    open_ports: Mutex<Vec<(u64, bool)>>,
    /// The event channel and the batches sent on it; held while a batch of messages is taken
    /// (by the pump, or for a reply), so that the parent can keep each mailbox's order.
    events: Mutex<Events>,
}

struct Events {
    out: UnixStream,
    /// `{msgs, ...}` batches written so far; a reply carries the count.
    sent: u64,
    /// Where [`Host::drain`] takes a mailbox's messages to, kept from one drain to the next.
    taken: Vec<crate::process::Message>,
}

/// Serves the parent's requests on `channel` (on this thread: a request runs on the thread that
/// read it), and sends what happens outside them on `events`, until the parent says `unload`
/// or goes away; the exit status. A callback that runs past `callback_timeout` ends the host
/// (`watchdog.rs`) after telling the parent why.
pub(crate) fn serve(
    mut channel: super::shm::Channel,
    events: UnixStream,
    async_threads: usize,
    callback_timeout: Option<Duration>,
) -> i32 {
    let options = RuntimeOptions::default().async_threads(async_threads);
    let Ok(runtime) = Runtime::with_options("/", options) else {
        return PROTOCOL_FAILURE;
    };
    let loader = runtime.spawn(Some("isolate_loader"));
    let host = Arc::new(Host {
        runtime,
        loader,
        driver: std::sync::OnceLock::new(),
        in_flight_told: std::sync::atomic::AtomicBool::new(false),
        mirrors: Mutex::new(Mirrors {
            by_parent: IdHashMap::default(),
            to_parent: IdHashMap::default(),
        }),
        open_ports: Mutex::new(Vec::new()),
        events: Mutex::new(Events {
            out: events,
            sent: 0,
            taken: Vec::new(),
        }),
    });
    let hello = Term::Tuple(vec![
        atom("hello"),
        Term::Int(i64::from(std::process::id())),
    ]);
    // On the socket: the parent reads it with a timeout, before it uses the channel.
    if frame::write(&mut channel.peer(), &hello).is_err() {
        return PROTOCOL_FAILURE;
    }
    if let Some(limit) = callback_timeout {
        let watcher = host.clone();
        let watching = super::watchdog::start(limit, move || {
            // Bounded: a writer stuck on a full socket must not keep the host alive.
            if let Some(mut events) = watcher.events.try_lock_for(Duration::from_millis(100)) {
                let _ = frame::write(
                    &mut events.out,
                    &Term::Tuple(vec![atom("callback_timeout")]),
                );
            }
        });
        if watching.is_err() {
            return PROTOCOL_FAILURE;
        }
    }
    let pump = host.clone();
    let parent = std::os::unix::process::parent_id();
    let pumping = std::thread::Builder::new()
        .name("ddll-isolate-pump".into())
        .spawn(move || loop {
            std::thread::sleep(PUMP_INTERVAL);
            // A parent that died while a request is stuck in the driver (which then never
            // reads the end of the stream): nothing is left to serve, and an orphan would
            // keep the parent's standard output open for whoever waits on it.
            if std::os::unix::process::parent_id() != parent {
                // SAFETY: ends the process at once; no destructor or exit handler is owed
                // to a driver whose parent has gone.
                unsafe { libc::_exit(0) };
            }
            let mut events = pump.events.lock();
            let (mut messages, mut outputs) = (Vec::new(), Vec::new());
            pump.drain(&mut events.taken, &mut outputs, &mut messages);
            if messages.is_empty() {
                continue;
            }
            let mut terms = Vec::with_capacity(messages.len());
            for message in messages {
                message.into_terms(&outputs, &mut terms);
            }
            let messages = terms;
            let batch = Term::Tuple(vec![atom("msgs"), Term::List(messages)]);
            if frame::write(&mut events.out, &batch).is_err() {
                return;
            }
            events.sent += 1;
        });
    if pumping.is_err() {
        return PROTOCOL_FAILURE;
    }
    // Kept from one request to the next: a round trip allocates none of them.
    let mut messages = Vec::new();
    let mut outputs = Vec::new();
    let mut request_frame = Vec::new();
    // The mirror of the last compact command's caller: a loop of commands from one process
    // looks it up once. Forgotten at any other request (an `exit` removes mirrors).
    let mut last_caller: Option<(u64, Arc<Process>)> = None;
    loop {
        let Ok(request) = frame::read_frame(&mut channel, &mut request_frame) else {
            // The parent has gone: nothing is left to serve.
            return 0;
        };
        // `None`: a compact command that succeeded, whose reply may be compact too.
        let (reply, last) = match request {
            Frame::Term(request) => {
                last_caller = None;
                let (reply, last) = host.handle(&request);
                (Some(reply), last)
            }
            Frame::Command { port, caller, data } => {
                let port = drv_term::Port::local(port);
                let mirror = match &last_caller {
                    Some((pid, mirror)) if *pid == caller => mirror,
                    _ => {
                        &last_caller
                            .insert((caller, host.mirror(&Pid::local(caller))))
                            .1
                    }
                };
                let done = host.command(&port, mirror, data, None);
                (done.err().map(error), false)
            }
            Frame::Outputs { .. } => (Some(error(atom("badarg"))), false),
        };
        let sent = {
            let mut events = host.events.lock();
            host.drain(&mut events.taken, &mut outputs, &mut messages);
            events.sent
        };
        let written = match reply {
            None if messages.iter().all(|m| matches!(m, Drained::Output { .. })) => {
                let written = frame::write_outputs(&mut channel, sent, &outputs);
                messages.clear();
                outputs.clear();
                written
            }
            reply => {
                let mut terms = Vec::with_capacity(messages.len());
                for message in messages.drain(..) {
                    message.into_terms(&outputs, &mut terms);
                }
                let reply = Term::Tuple(vec![
                    atom("reply"),
                    reply.unwrap_or_else(|| atom("ok")),
                    Term::List(terms),
                    Term::Int(i64::try_from(sent).unwrap_or(i64::MAX)),
                ]);
                outputs.clear();
                frame::write(&mut channel, &reply)
            }
        };
        if written.is_err() || channel.flush().is_err() {
            return PROTOCOL_FAILURE;
        }
        for buf in [&mut request_frame, &mut outputs] {
            buf.shrink_to(frame::BUFFER_KEPT);
        }
        if last {
            return 0;
        }
    }
}

impl Host {
    /// The mirror of parent process `pid`, made on first use.
    fn mirror(&self, pid: &Pid) -> Arc<Process> {
        let mut mirrors = self.mirrors.lock();
        if let Some(mirror) = mirrors.by_parent.get(pid) {
            return mirror.clone();
        }
        // Its binary data output is recorded for the reply as it is made (no message).
        let mirror = match pid.local_id() {
            Some(parent) => self.runtime.spawn_recording_outputs(parent),
            None => self.runtime.spawn(None),
        };
        mirrors.by_parent.insert(*pid, mirror.clone());
        mirrors.to_parent.insert(*mirror.pid(), *pid);
        mirror
    }

    /// Every message waiting in a mirror's mailbox, as `{ParentPid, Message}` with mirror pids
    /// replaced by their parents' (a binary port's data output kept apart, for a compact
    /// reply: its record appended to `outputs`), and the news for the parent; appended to `out`
    /// (`taken`: room for a mailbox's messages, left empty).
    fn drain(
        &self,
        taken: &mut Vec<crate::process::Message>,
        outputs: &mut Vec<u8>,
        out: &mut Vec<Drained>,
    ) {
        use std::sync::atomic::Ordering;
        let mirrors = self.mirrors.lock();
        // Looked at before it is taken: a drain makes no atomic write for news that is not
        // there (each is a cache line the driver's threads may write).
        if super::DRIVER_LOCKED.load(Ordering::Relaxed)
            && super::DRIVER_LOCKED.swap(false, Ordering::AcqRel)
        {
            out.push(Drained::Term(atom("lock_driver")));
        }
        // Work in flight starts before the messages (the parent holds the driver first) and
        // ends after them (what the work sent arrives before an unload it held back).
        let in_flight = self
            .driver
            .get()
            .and_then(std::sync::Weak::upgrade)
            .is_some_and(|driver| !driver.in_flight.is_empty());
        // Drains take turns (under the events lock): a plain look and a store on change.
        let told = self.in_flight_told.load(Ordering::Acquire);
        if told != in_flight {
            self.in_flight_told.store(in_flight, Ordering::Release);
        }
        let in_flight_news = (in_flight != told).then(|| {
            Term::Tuple(vec![
                atom("in_flight"),
                atom(if in_flight { "true" } else { "false" }),
            ])
        });
        if let Some(news) = in_flight_news.clone().filter(|_| in_flight) {
            out.push(Drained::Term(news));
        }
        // Looked at before the mailboxes, told after them: a port's exit signal, if it sent
        // one, comes first, and then the parent knows the port is gone already.
        // Ports the driver created: the parent makes its own before their messages arrive.
        for (handle, creator) in super::take_created() {
            let Some(port) = crate::port::lookup(handle) else {
                continue;
            };
            let owner = to_parent(Term::Pid(*port.owner.pid()), &mirrors.to_parent);
            out.push(Drained::Term(Term::Tuple(vec![
                atom("created"),
                Term::Port(drv_term::Port::local(handle)),
                owner,
                Term::Binary(Bytes::copy_from_slice(port.name.as_bytes())),
                Term::Port(drv_term::Port::local(creator)),
            ])));
            self.open_ports.lock().push((handle, false));
        }
        // Busy news too: a port made busy holds up the parent's senders before what it sent
        // is delivered; one no longer busy lets them go after that.
        let mut gone = Vec::new();
        let mut not_busy = Vec::new();
        self.open_ports.lock().retain_mut(|(handle, told_busy)| {
            let port = crate::port::lookup(*handle).filter(|port| !port.is_closed());
            let Some(port) = port else {
                gone.push(Drained::Term(Term::Tuple(vec![
                    atom("port_gone"),
                    Term::Port(drv_term::Port::local(*handle)),
                ])));
                return false;
            };
            let busy = port.busy.is_port_busy();
            if busy != *told_busy {
                *told_busy = busy;
                let news = Term::Tuple(vec![
                    atom("busy"),
                    Term::Port(drv_term::Port::local(*handle)),
                    atom(if busy { "true" } else { "false" }),
                ]);
                if busy {
                    out.push(Drained::Term(news));
                } else {
                    not_busy.push(Drained::Term(news));
                }
            }
            true
        });
        for (parent, mirror) in &mirrors.by_parent {
            // Those there now (those that come meanwhile go with the next batch): the output
            // it recorded first, then its messages.
            let recorded = outputs.len();
            mirror.take_all(outputs, taken);
            if outputs.len() > recorded {
                out.push(Drained::Output(recorded..outputs.len()));
            }
            for message in taken.drain(..) {
                // Its record made at once: the compact reply is written from it.
                if let (Some((port, data)), Some(to)) = (binary_output(&message), parent.local_id())
                {
                    if let Some(record) = frame::push_output(outputs, to, port, data) {
                        out.push(Drained::Output(record));
                        continue;
                    }
                }
                let message = to_parent(message.into_term(), &mirrors.to_parent);
                out.push(Drained::Term(Term::Tuple(vec![
                    Term::Pid(*parent),
                    message,
                ])));
            }
        }
        out.append(&mut not_busy);
        out.append(&mut gone);
        if let Some(news) = in_flight_news.filter(|_| !in_flight) {
            out.push(Drained::Term(news));
        }
    }

    /// Runs a command from `caller` (a mirror; `lengths`: its segments as the parent's port cut
    /// them, `None`: one); the error's reason.
    fn command(
        &self,
        port: &drv_term::Port,
        caller: &Process,
        data: &[u8],
        lengths: Option<&[usize]>,
    ) -> Result<(), Term> {
        let one = [data.len()];
        let lengths = lengths.unwrap_or(if data.is_empty() { &[] } else { &one });
        self.runtime
            .port_command_segments(caller.pid(), port, data, lengths)
            .map_err(|e| e.0)
    }

    /// Runs one request: its reply, and whether it was the last.
    fn handle(&self, request: &Term) -> (Term, bool) {
        let Term::Tuple(items) = request else {
            return (error(atom("badarg")), false);
        };
        let ok = |t: Term| Term::Tuple(vec![atom("ok"), t]);
        let rt = &self.runtime;
        match items.as_slice() {
            [tag, dir, file_name, name] if *tag == atom("load") => {
                let (Some(dir), Some(file_name), Some(name)) =
                    (text(dir), text(file_name), text(name))
                else {
                    return (error(atom("badarg")), false);
                };
                let loaded = rt.try_load(self.loader.pid(), &dir, &file_name, Default::default());
                let reply = match loaded {
                    // The library's driver is called `file_name`, not the `name` the parent
                    // asked for (which reaches into another folder).
                    Ok(_) if file_name != name => error(atom("bad_driver_name")),
                    Ok(_) => match rt.with_drivers(|d| d.loaded.get(&file_name).cloned()) {
                        Some(driver) => {
                            let _ = self.driver.set(Arc::downgrade(&driver));
                            Term::Tuple(vec![
                                atom("ok"),
                                Term::Int(i64::from(driver.driver.flags())),
                                atom(if driver.driver.has_outputv() {
                                    "true"
                                } else {
                                    "false"
                                }),
                            ])
                        }
                        None => error(atom("unspecified_error")),
                    },
                    Err(ddll_core::DdllError::Load(ddll_core::LoadError::OpenError(code))) => {
                        let message = ddll_sys::dynamic_error_message(code);
                        error(Term::Tuple(vec![
                            atom("open_error"),
                            Term::Binary(Bytes::copy_from_slice(message.as_bytes())),
                        ]))
                    }
                    Err(e) => error(atom(e.atom().unwrap_or("unspecified_error"))),
                };
                (reply, false)
            }
            [tag, owner, command, binary, eof] if *tag == atom("open") => {
                let (Term::Pid(owner), Some(command)) = (owner, text(command)) else {
                    return (error(atom("badarg")), false);
                };
                let mirror = self.mirror(owner);
                let options = PortOptions::new()
                    .binary(*binary == atom("true"))
                    .eof(*eof == atom("true"));
                let opened = rt.open_port(mirror.pid(), &command, options);
                let reply = match opened {
                    Ok(port) => {
                        if let Some(handle) = port.local_id() {
                            self.open_ports.lock().push((handle, false));
                        }
                        ok(Term::Port(port))
                    }
                    Err(e) => error(e.0),
                };
                (reply, false)
            }
            [tag, Term::Port(port), Term::Pid(caller), Term::Binary(data)]
                if *tag == atom("command") =>
            {
                let reply = self.command(port, &self.mirror(caller), data, None);
                (reply.map_or_else(error, |()| atom("ok")), false)
            }
            [tag, Term::Port(port), Term::Pid(caller), Term::Binary(data), Term::List(lengths)]
                if *tag == atom("commandv") =>
            {
                let lengths: Option<Vec<usize>> = lengths
                    .iter()
                    .map(|l| match l {
                        Term::Int(n) => usize::try_from(*n).ok(),
                        _ => None,
                    })
                    .collect();
                let Some(lengths) = lengths else {
                    return (error(atom("badarg")), false);
                };
                let reply = self.command(port, &self.mirror(caller), data, Some(&lengths));
                (reply.map_or_else(error, |()| atom("ok")), false)
            }
            [tag, Term::Port(port), Term::Pid(caller), Term::Int(op), data]
                if *tag == atom("control") || *tag == atom("call") =>
            {
                let caller = self.mirror(caller);
                let Ok(op) = u32::try_from(*op) else {
                    return (error(atom("badarg")), false);
                };
                let result = if *tag == atom("control") {
                    rt.port_control(caller.pid(), port, op, data)
                } else {
                    rt.port_call(caller.pid(), port, op, data)
                };
                let reply = match result {
                    Ok(reply) => {
                        let mirrors = self.mirrors.lock();
                        ok(to_parent(reply, &mirrors.to_parent))
                    }
                    Err(e) => error(e.0),
                };
                (reply, false)
            }
            [tag, Term::Port(port), reason] if *tag == atom("close") => {
                // The parent's port exits with `reason`; this one too, lingering while its
                // driver queue holds data: the reply says whether it does.
                let lingers = match port.local_id().and_then(crate::port::lookup) {
                    Some(cell) => {
                        rt.close_port(&cell, reason.clone());
                        !cell.is_closed()
                    }
                    None => false,
                };
                (ok(atom(if lingers { "true" } else { "false" })), false)
            }
            [tag, Term::Pid(pid), reason] if *tag == atom("exit") => {
                // The mirror's pid stays translated: the driver may name it in what it sends
                // on its death (a monitor's `process_exit`).
                let mirror = self.mirrors.lock().by_parent.remove(pid);
                if let Some(mirror) = mirror {
                    rt.exit(mirror.pid(), reason.clone());
                }
                (atom("ok"), false)
            }
            [tag, Term::Port(port)] if *tag == atom("port_info") => {
                let reply = match port.local_id().and_then(crate::port::lookup) {
                    Some(cell) => {
                        let (input, output) = cell.bytes.get();
                        let queue = crate::queue::size(&cell);
                        ok(Term::Tuple(vec![
                            Term::from(input),
                            Term::from(output),
                            Term::from(queue as u64),
                        ]))
                    }
                    None => error(atom("badarg")),
                };
                (reply, false)
            }
            [tag, Term::Port(port), Term::Pid(pid), linked] if *tag == atom("connect") => {
                let mirror = self.mirror(pid);
                let reply = if *linked == atom("true") {
                    match rt.port_connect(port, mirror.pid()) {
                        Ok(()) => atom("ok"),
                        Err(e) => error(e.0),
                    }
                } else {
                    match port.local_id().and_then(crate::port::lookup) {
                        Some(cell) => {
                            rt.connect(&cell, mirror.pid());
                            atom("ok")
                        }
                        None => error(atom("badarg")),
                    }
                };
                (reply, false)
            }
            [tag, Term::Port(port)] if *tag == atom("port_monitors") => {
                let reply = match port.local_id().and_then(crate::port::lookup) {
                    Some(cell) => {
                        let pids: Vec<Term> = cell
                            .state
                            .lock()
                            .monitors
                            .iter()
                            .map(|(_, pid)| Term::Pid(*pid))
                            .collect();
                        let mirrors = self.mirrors.lock();
                        ok(to_parent(Term::List(pids), &mirrors.to_parent))
                    }
                    None => error(atom("badarg")),
                };
                (reply, false)
            }
            [tag] if *tag == atom("unload") => {
                // Every process goes: the ports close and the driver's `finish` runs.
                let mirrors: Vec<Arc<Process>> =
                    self.mirrors.lock().by_parent.values().cloned().collect();
                for mirror in mirrors {
                    rt.exit(mirror.pid(), atom("kill"));
                }
                rt.exit(self.loader.pid(), atom("kill"));
                (atom("ok"), true)
            }
            _ => (error(atom("badarg")), false),
        }
    }
}

/// What [`Host::drain`] found: a term for the parent, or binary ports' data output (see
/// [`frame::Output`]), by where their records lie in the drain's outputs.
enum Drained {
    Term(Term),
    Output(std::ops::Range<usize>),
}

impl Drained {
    /// The terms for the parent, appended to `terms` (`outputs`: the drain's output records).
    fn into_terms(self, outputs: &[u8], terms: &mut Vec<Term>) {
        let records = match self {
            Drained::Term(term) => return terms.push(term),
            Drained::Output(records) => outputs.get(records).unwrap_or_default(),
        };
        // Records this host made: whole.
        for frame::Output { to, port, data } in frame::outputs(records).into_iter().flatten() {
            terms.push(Term::Tuple(vec![
                Term::Pid(Pid::local(to)),
                Term::Tuple(vec![
                    Term::Port(drv_term::Port::local(port)),
                    Term::Tuple(vec![
                        atom("data"),
                        Term::Binary(Bytes::copy_from_slice(data)),
                    ]),
                ]),
            ]));
        }
    }
}

/// `{Port, {data, Binary}}` of a local port: the port's number and the bytes.
fn binary_output(message: &crate::process::Message) -> Option<(u64, &[u8])> {
    let mut outer = message.view().tuple()?;
    let (port, inner) = (outer.next()?, outer.next()?);
    if outer.next().is_some() {
        return None;
    }
    let mut inner = inner.tuple()?;
    let (tag, data) = (inner.next()?, inner.next()?);
    if inner.next().is_some() || tag.atom() != Some(super::data_atom()) {
        return None;
    }
    Some((port.port()?.local_id()?, data.binary()?))
}

fn error(reason: Term) -> Term {
    Term::Tuple(vec![atom("error"), reason])
}

fn text(term: &Term) -> Option<String> {
    match term {
        Term::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// `term` with each mirror pid replaced by its parent's pid.
fn to_parent(term: Term, to_parent: &IdHashMap<Pid, Pid>) -> Term {
    super::map_idents(term, &mut |term| match term {
        Term::Pid(pid) => to_parent
            .get(&pid)
            .map_or(Term::Pid(pid), |p| Term::Pid(*p)),
        other => other,
    })
}
