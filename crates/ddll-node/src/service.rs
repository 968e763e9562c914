//! The registered process `ddll`, the proxies of remote processes, and the translation of
//! identifiers between the runtime (local: `nonode@nohost`, creation 0) and the wire (this
//! node's name and creation).

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use ddll::{Exception, PortOptions, Process, Runtime};
use drv_term::{Atom, FlatRef, Node, Pid, Port, Ref, Term, TermRef};
use parking_lot::Mutex;

use crate::dist::{self, op, Connection, Incoming};

/// Bits of a pid's number in `NEW_PID_EXT`'s id (what OTP 25 accepts for an external pid);
/// the rest of a local number goes to the serial.
const PID_ID_BITS: u32 = 15;

/// How much a proxy's thread gathers for one write at most.
const BATCH_BYTES: usize = 64 * 1024;

/// A request of `ddll_remote`: `{Ref, Module, Function, Args}`.
type Request = (Term, Term, Term, Term);

/// The first element of a request delivered into a proxy's mailbox:
/// `{RequestTag, Ref, Module, Function, Args}`; a reference made at random, which no driver
/// can name.
fn request_tag() -> Term {
    let mut words = [0u32; 3];
    for word in &mut words {
        *word = crate::handshake::random_u32();
    }
    Term::Ref(Ref::new(drv_term::local_node(), 0, &words).expect("3 words"))
}

/// A runtime process standing for one remote process.
#[derive(Debug)]
struct Proxy {
    remote: Pid,
    local: Arc<Process>,
    connection: Arc<Connection>,
    /// The remote process's `ddll_remote` agent, which holds the link of its ports there
    /// (BEAM carries exit signals between pids only): port exits go to it.
    agent: Mutex<Option<Pid>>,
    /// Port exits sent to the agent that it has not yet reported dealt with: while there are
    /// any, the proxy's other messages go through the agent too, so that they reach the
    /// remote process after the exit, as they follow it here.
    exits_at_agent: AtomicU32,
    /// Who may take from the mailbox, run requests and write for the proxy.
    turn: Arc<Turn>,
}

/// The right to act for one proxy: to take from its mailbox (running requests, forwarding
/// the rest) and write what that sends, so that the proxy's messages leave in the order they
/// came. Its connection's reader takes it to run a request that finds the proxy idle (no
/// thread to wake: a BEAM peer's own echo wakes none either); otherwise the proxy's thread
/// takes it when woken by an arrival.
#[derive(Debug, Default)]
struct Turn {
    held: AtomicBool,
    /// Messages that arrived in the proxy's mailbox: a holder letting go looks whether any
    /// came since its last look (an arrival while the turn is held wakes nobody).
    arrivals: AtomicU64,
    /// The proxy's thread, which arrivals wake when nobody holds the turn.
    thread: OnceLock<Thread>,
}

impl Turn {
    fn try_take(&self) -> bool {
        self.held
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The proxy's arrival hook (on the sending thread, maybe inside a driver callback).
    fn arrived(&self) {
        // SeqCst with `release`'s: either the holder letting go sees this arrival, or this
        // sees the turn free and wakes the thread.
        self.arrivals.fetch_add(1, Ordering::SeqCst);
        if !self.held.load(Ordering::SeqCst) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
    }

    /// Lets go; whether messages arrived since the holder read `arrivals` as `seen` (then it
    /// must look again, if the turn is still free).
    fn release(&self, seen: u64) -> bool {
        self.held.store(false, Ordering::SeqCst);
        self.arrivals.load(Ordering::SeqCst) != seen
    }
}

/// The reading side of a connection. Any thread may read it (one at a time); the thread that
/// runs a request itself (see [`Turn`]) lets go of it meanwhile, and the connection's ticker
/// starts another reader when such a run holds up the connection (a driver callback that
/// blocks), so that one driver holds up its caller only, as a blocked BEAM scheduler does.
#[derive(Debug)]
struct Reading {
    stream: Mutex<io::BufReader<TcpStream>>,
    /// Requests being run by readers.
    runs_in_progress: AtomicU32,
    /// Requests readers began to run, ever: unchanged over a ticker period while one runs and
    /// nobody reads means a run that holds up the connection.
    runs_begun: AtomicU64,
    /// Whether the connection's end has been dealt with (by the first reader to see it).
    ended: AtomicBool,
}

#[derive(Debug)]
pub struct Service {
    runtime: Runtime,
    node: Atom,
    creation: u32,
    cookie: String,
    epmd_port: u16,
    /// The connection to each node, by its name.
    connections: Mutex<HashMap<Atom, Arc<Connection>>>,
    /// Proxies by the remote pid they stand for.
    proxies: Mutex<HashMap<Pid, Arc<Proxy>>>,
    /// The remote pid of each proxy, by the proxy's local pid.
    remote_of: Mutex<HashMap<Pid, Pid>>,
    /// What marks a request in a proxy's mailbox.
    request_tag: Term,
}

/// The atom `name` as a term, interned once per call site (a lookup in the atom table costs
/// a lock and a hash).
macro_rules! atom {
    ($name:literal) => {{
        static ATOM: OnceLock<Atom> = OnceLock::new();
        Term::Atom(*ATOM.get_or_init(|| Atom::new($name)))
    }};
}

/// A connection's end for an error.
fn no_connection(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, what)
}

impl Service {
    pub fn new(
        runtime: Runtime,
        node: Atom,
        creation: u32,
        cookie: String,
        epmd_port: u16,
    ) -> Service {
        Service {
            runtime,
            node,
            creation,
            cookie,
            epmd_port,
            connections: Mutex::new(HashMap::new()),
            proxies: Mutex::new(HashMap::new()),
            remote_of: Mutex::new(HashMap::new()),
            request_tag: request_tag(),
        }
    }

    /// Runs one accepted connection: the handshake, then [`Service::run`].
    pub fn serve(self: Arc<Self>, mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        match crate::handshake::accept(&mut stream, self.node.as_str(), self.creation, &self.cookie)
        {
            Ok(peer) => self.run(stream, &peer),
            // BEAM reports refused connections through its error logger.
            Err(e) => eprintln!("** {e} **"),
        }
    }

    /// The connection to `peer` (`alive@host`), made when there is none: EPMD on `host`
    /// gives its port, then this node runs the initiating side of the handshake, and the
    /// connection is served on a thread of its own as an accepted one is.
    pub fn connect(self: &Arc<Self>, peer: &str) -> io::Result<Arc<Connection>> {
        let name = Atom::try_new(peer)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "node name too long"))?;
        if let Some(connection) = self.connections.lock().get(&name).filter(|c| c.is_up()) {
            return Ok(connection.clone());
        }
        let (alive, host) = peer.split_once('@').ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a node name is alive@host")
        })?;
        let (address, port) = crate::epmd::port_please(host, alive, self.epmd_port)?;
        let mut stream =
            TcpStream::connect_timeout(&(address, port).into(), Duration::from_secs(10))?;
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        crate::handshake::initiate(
            &mut stream,
            self.node.as_str(),
            self.creation,
            &self.cookie,
            peer,
        )
        .map_err(|e| no_connection(e.to_string()))?;
        let (connection, reading) = self.connection_of(stream, name)?;
        let (service, served) = (self.clone(), connection.clone());
        std::thread::Builder::new()
            .name("ddll-node-conn".into())
            .spawn(move || service.read_until_down(&reading, &served))?;
        Ok(connection)
    }

    /// Sends `message` to `to` (a process of another node: connecting to it when needed), as
    /// `to ! message` from a process of this node does.
    pub fn send(self: &Arc<Self>, to: Pid, message: &Term) -> io::Result<()> {
        let connection = self.connect(to.node.as_str())?;
        let control = Term::Tuple(vec![Term::Int(op::SEND), atom!(""), Term::Pid(to)]);
        connection.send(&control, Some(&self.wire_term(message.clone())))
    }

    /// Sends `message` to the process registered as `name` on `node`, as
    /// `{Name, Node} ! Message` does.
    pub fn send_named(self: &Arc<Self>, node: &str, name: &str, message: &Term) -> io::Result<()> {
        let connection = self.connect(node)?;
        let name = Atom::try_new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        // The sender: a pid of this node no process has (OTP's C nodes send so too).
        let from = Pid {
            node: self.node,
            id: 0,
            serial: 0,
            creation: self.creation,
        };
        let control = Term::Tuple(vec![
            Term::Int(op::REG_SEND),
            Term::Pid(from),
            atom!(""),
            Term::Atom(name),
        ]);
        connection.send(&control, Some(&self.wire_term(message.clone())))
    }

    /// The sending half of a connection made on `stream` to `peer`, registered as the
    /// connection to it and ticked (the ticker also watches its readers); its reading side.
    fn connection_of(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: Atom,
    ) -> io::Result<(Arc<Connection>, Arc<Reading>)> {
        stream.set_read_timeout(Some(dist::TICK_TIMEOUT))?;
        let connection = Arc::new(Connection::new(stream.try_clone()?));
        let reading = Arc::new(Reading {
            stream: Mutex::new(io::BufReader::with_capacity(64 * 1024, stream)),
            runs_in_progress: AtomicU32::new(0),
            runs_begun: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        });
        let ticking = connection.clone();
        let watch = self.watch_readers(&connection, &reading);
        std::thread::Builder::new()
            .name("ddll-node-tick".into())
            .spawn(move || dist::tick_until_down(ticking, watch))?;
        if let Some(old) = self.connections.lock().insert(peer, connection.clone()) {
            old.shut_down();
        }
        Ok((connection, reading))
    }

    /// Runs a connection to `peer` after its handshake: its messages until it goes down.
    fn run(self: Arc<Self>, stream: TcpStream, peer: &str) {
        let Ok(peer) = Atom::try_new(peer) else {
            return;
        };
        if let Ok((connection, reading)) = self.connection_of(stream, peer) {
            self.read_until_down(&reading, &connection);
        }
    }

    /// What the ticker of `connection` does each step: when a request run by a reader has held
    /// up the connection for a step (nobody reading, no run begun since), another thread
    /// starts reading it.
    fn watch_readers(
        self: &Arc<Self>,
        connection: &Arc<Connection>,
        reading: &Arc<Reading>,
    ) -> impl FnMut() + Send + 'static {
        let (service, connection, reading) = (self.clone(), connection.clone(), reading.clone());
        let mut begun_when_seen_running = None;
        move || {
            let begun = reading.runs_begun.load(Ordering::Acquire);
            let running = reading.runs_in_progress.load(Ordering::Acquire) > 0;
            if running && begun_when_seen_running == Some(begun) && !reading.stream.is_locked() {
                begun_when_seen_running = None;
                let (service, connection, reading) =
                    (service.clone(), connection.clone(), reading.clone());
                let _ = std::thread::Builder::new()
                    .name("ddll-node-conn".into())
                    .spawn(move || service.read_until_down(&reading, &connection));
            } else {
                begun_when_seen_running = running.then_some(begun);
            }
        }
    }

    /// Handles what arrives on `connection` until it goes down (or, after running a request,
    /// until it finds another thread reading: see [`Reading`]). The first reader to see the end
    /// makes every proxy of the peer's processes exit with `noconnection` and forgets the
    /// connection.
    fn read_until_down(self: &Arc<Self>, reading: &Reading, connection: &Arc<Connection>) {
        let mut stream = reading.stream.lock();
        let mut packet = Vec::new();
        while connection.is_up() {
            if packet.capacity() > BATCH_BYTES {
                // A large message's buffer goes with it.
                packet = Vec::new();
            }
            let Ok(incoming) = dist::read(&mut *stream, &mut packet) else {
                break;
            };
            let Incoming::Message { control, message } = incoming else {
                continue;
            };
            let control = self.local_term(control);
            let message = message.map(|m| self.local_term(m));
            let Some((proxy, request)) = self.handle(connection, &control, message) else {
                continue;
            };
            // The request runs here; meanwhile another thread may read (see `watch_readers`).
            drop(stream);
            reading.runs_begun.fetch_add(1, Ordering::AcqRel);
            reading.runs_in_progress.fetch_add(1, Ordering::AcqRel);
            self.hold_turn(&proxy, Some(request));
            reading.runs_in_progress.fetch_sub(1, Ordering::AcqRel);
            match reading.stream.try_lock() {
                Some(again) => stream = again,
                // Another reader took over meanwhile.
                None => return,
            }
        }
        drop(stream);
        if reading.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        connection.shut_down();
        let gone: Vec<Arc<Proxy>> = self
            .proxies
            .lock()
            .values()
            .filter(|p| Arc::ptr_eq(&p.connection, connection))
            .cloned()
            .collect();
        for proxy in gone {
            self.proxy_exit(&proxy, atom!("noconnection"));
        }
        self.connections
            .lock()
            .retain(|_, c| !Arc::ptr_eq(c, connection));
    }

    /// Acts on one message from the peer. A request that finds its proxy idle comes back with
    /// the proxy's turn taken, for the reader to run; others go to the proxy's mailbox.
    fn handle(
        self: &Arc<Self>,
        connection: &Arc<Connection>,
        control: &Term,
        message: Option<Term>,
    ) -> Option<(Arc<Proxy>, Request)> {
        let Term::Tuple(items) = control else {
            return None;
        };
        match (items.as_slice(), message) {
            // `{ddll, Node} ! {call, From, Ref, {Module, Function, Args}}`, and
            // `{ddll, Node} ! {port_agent, Owner, Agent}`: where `Owner`'s port exits go.
            ([Term::Int(op::REG_SEND), _, _, Term::Atom(to)], Some(Term::Tuple(mut request)))
                if to.as_str() == "ddll" =>
            {
                if let Some((from, request)) = call_request(request.as_mut_slice()) {
                    let proxy = self.proxy(connection, from);
                    if proxy.turn.try_take() {
                        return Some((proxy, request));
                    }
                    // Into the proxy's mailbox, where the holder of its turn takes it in
                    // order.
                    let (reference, module, function, args) = request;
                    let request = Term::Tuple(vec![
                        self.request_tag.clone(),
                        reference,
                        module,
                        function,
                        args,
                    ]);
                    self.runtime.send(proxy.local.pid(), request);
                    return None;
                }
                match request.as_slice() {
                    [Term::Atom(tag), Term::Pid(owner), Term::Pid(agent)]
                        if tag.as_str() == "port_agent" =>
                    {
                        *self.proxy(connection, *owner).agent.lock() = Some(*agent);
                    }
                    [Term::Atom(tag), Term::Pid(owner)] if tag.as_str() == "port_exit_done" => {
                        if let Some(proxy) = self.proxies.lock().get(owner) {
                            let _ = proxy.exits_at_agent.fetch_update(
                                Ordering::AcqRel,
                                Ordering::Acquire,
                                |n| n.checked_sub(1),
                            );
                        }
                    }
                    _ => {}
                }
            }
            // The remote process of a proxy died: the proxy dies with its reason.
            ([Term::Int(op::MONITOR_P_EXIT), Term::Pid(remote), _, _, reason], _) => {
                let proxy = self.proxies.lock().get(remote).cloned();
                if let Some(proxy) = proxy {
                    self.proxy_exit(&proxy, reason.clone());
                }
            }
            // `Pid ! Message` to a process of the runtime.
            ([Term::Int(op::SEND), _, Term::Pid(to)], Some(message)) if to.local_id().is_some() => {
                self.runtime.send(to, message);
            }
            // Monitors of `ddll` itself: it lives as long as the node, so only the
            // connection's loss (which the peer notices itself) could fire them.
            ([Term::Int(op::MONITOR_P | op::DEMONITOR_P), ..], _) => {}
            // Other sends (to names other than `ddll`), links and exit signals have no
            // receiver here; dropped, as BEAM drops a message to a process that does not
            // exist.
            _ => {}
        }
        None
    }

    /// The proxy of `remote`, started (and monitoring `remote`) on first use.
    fn proxy(self: &Arc<Self>, connection: &Arc<Connection>, remote: Pid) -> Arc<Proxy> {
        let mut proxies = self.proxies.lock();
        if let Some(proxy) = proxies.get(&remote) {
            return proxy.clone();
        }
        let turn = Arc::new(Turn::default());
        let arrivals = turn.clone();
        let local = self
            .runtime
            .spawn_with_arrival_hook(None, move || arrivals.arrived());
        let proxy = Arc::new(Proxy {
            remote,
            local: local.clone(),
            connection: connection.clone(),
            agent: Mutex::new(None),
            exits_at_agent: AtomicU32::new(0),
            turn,
        });
        proxies.insert(remote, proxy.clone());
        self.remote_of.lock().insert(*local.pid(), remote);
        drop(proxies);
        let monitor = Ref::new(
            self.node,
            self.creation,
            &[ddll_next_word(), ddll_next_word(), 0],
        )
        .expect("3 words");
        let wire_pid = self.own_pid(local.pid());
        let _ = connection.send(
            &Term::Tuple(vec![
                Term::Int(op::MONITOR_P),
                Term::Pid(wire_pid),
                Term::Pid(remote),
                Term::Ref(monitor),
            ]),
            None,
        );
        let service = self.clone();
        let running = proxy.clone();
        let _ = std::thread::Builder::new()
            .name("ddll-node-proxy".into())
            .spawn(move || service.run_proxy(&running));
        proxy
    }

    /// Runs one request as the proxy and sends `{Ref, {ok, Result}}` or
    /// `{Ref, {error, Reason}}` (the exception `ddll_remote` raises) to the caller.
    fn execute(
        &self,
        proxy: &Proxy,
        (reference, module, function, args): Request,
        out: &mut Vec<u8>,
    ) {
        let result = match (&module, &function, &args) {
            (Term::Atom(m), Term::Atom(f), Term::List(args)) => call(
                &self.runtime,
                proxy.local.pid(),
                m.as_str(),
                f.as_str(),
                args,
            ),
            _ => Err(Exception::badarg()),
        };
        let reply = match result {
            Ok(value) => Term::Tuple(vec![atom!("ok"), value]),
            Err(Exception(reason)) => Term::Tuple(vec![atom!("error"), reason]),
        };
        let opened_port = function == atom!("open_port");
        if let (Term::Tuple(reply), Some(agent), true) = (&reply, *proxy.agent.lock(), opened_port)
        {
            if let [_, port @ Term::Port(_)] = reply.as_slice() {
                // Before the caller learns of the port, so before anything of the port.
                let opened = Term::Tuple(vec![atom!("opened"), port.clone()]);
                self.encode_send(agent, FlatRef::of_term(&opened), out);
            }
        }
        let reply = Term::Tuple(vec![reference, reply]);
        self.encode_send(proxy.remote, FlatRef::of_term(&reply), out);
    }

    /// The proxy's thread: woken by arrivals that find the turn free, it takes the turn and
    /// deals with the mailbox (see [`Service::hold_turn`]), until the proxy dies.
    fn run_proxy(&self, proxy: &Proxy) {
        let _ = proxy.turn.thread.set(std::thread::current());
        // The timeout only bounds how long the thread of a proxy that died lingers (a death
        // wakes no one); arrivals wake it at once.
        let linger = Duration::from_secs(1);
        while proxy.local.is_alive() && proxy.connection.is_up() {
            if proxy.turn.try_take() {
                self.hold_turn(proxy, None);
            }
            std::thread::park_timeout(linger);
        }
    }

    /// Acts for `proxy`, whose turn the caller has taken: runs `request` (one that found the
    /// proxy idle) after what its mailbox holds, then takes the mailbox in order (running
    /// requests, forwarding the rest), writing what that sends, a request's reply and its
    /// port's output in one write; lets go of the turn, taking it back while messages came
    /// meanwhile. erl_ddll's driver monitor messages (`{'DOWN'|'UP', Ref, driver, Name, Tag}`)
    /// stay: they belong to an `erl_ddll` call of a request that waits for them (an unload or
    /// load that went pending), and `ddll_remote` offers no driver monitors.
    fn hold_turn(&self, proxy: &Proxy, mut request: Option<Request>) {
        // Room for a reply and a few messages, so that encoding them does not grow it.
        let mut out = Vec::with_capacity(1024);
        loop {
            if let Some(request) = request.take() {
                self.take_mailbox(proxy, &mut out);
                self.execute(proxy, request, &mut out);
            }
            let seen = proxy.turn.arrivals.load(Ordering::SeqCst);
            self.take_mailbox(proxy, &mut out);
            if !out.is_empty() {
                let _ = proxy.connection.send_encoded(&out);
                out.clear();
            }
            if !proxy.turn.release(seen) || !proxy.turn.try_take() {
                return;
            }
        }
    }

    /// Takes what the proxy's mailbox holds, in order, into `out`; writes when a batch is full.
    fn take_mailbox(&self, proxy: &Proxy, out: &mut Vec<u8>) {
        let taken = |m: ddll::FlatRef<'_>| !is_driver_notification(m);
        while let Some(message) = proxy.local.receive_matching(Some(Duration::ZERO), taken) {
            self.take(proxy, message, out);
            if out.len() >= BATCH_BYTES {
                let _ = proxy.connection.send_encoded(out);
                out.clear();
            }
        }
    }

    /// Runs `message` if it is a request, else forwards it; what it sends goes to `out`.
    fn take(&self, proxy: &Proxy, message: ddll::Message, out: &mut Vec<u8>) {
        let is_request = message.view().tuple().is_some_and(|mut items| {
            items.len() == 5
                && items
                    .next()
                    .and_then(FlatRef::reference)
                    .is_some_and(|tag| Term::Ref(tag) == self.request_tag)
        });
        if !is_request {
            return self.forward(proxy, message.view(), out);
        }
        let Term::Tuple(request) = message.into_term() else {
            unreachable!("a request is a tuple")
        };
        let mut request = request.into_iter().skip(1);
        let mut next = || request.next().expect("five elements");
        self.execute(proxy, (next(), next(), next(), next()), out);
    }

    /// Sends a message of the proxy's mailbox to its remote process: port exits to its agent
    /// (when it has one), and then, until the agent has dealt with them, everything through it.
    fn forward(&self, proxy: &Proxy, message: FlatRef<'_>, out: &mut Vec<u8>) {
        let Some(agent) = *proxy.agent.lock() else {
            self.encode_send(proxy.remote, message, out);
            return;
        };
        let is_port_exit = message.tuple().is_some_and(|mut exit| {
            exit.len() == 3
                && exit.next().is_some_and(|tag| tag.is_atom("EXIT"))
                && exit.next().and_then(FlatRef::port).is_some()
        });
        if is_port_exit {
            proxy.exits_at_agent.fetch_add(1, Ordering::AcqRel);
            self.encode_send(agent, message, out);
        } else if proxy.exits_at_agent.load(Ordering::Acquire) > 0 {
            let relayed = Term::Tuple(vec![atom!("relay"), message.to_term()]);
            self.encode_send(agent, FlatRef::of_term(&relayed), out);
        } else {
            self.encode_send(proxy.remote, message, out);
        }
    }

    /// Appends the packet of `to ! message` to `out`, the message as the peer must see it:
    /// read through [`Wire`] (no copy), or, when that meets a map, copied by
    /// [`Service::wire_term`].
    fn encode_send(&self, to: Pid, message: FlatRef<'_>, out: &mut Vec<u8>) {
        let control = Term::Tuple(vec![Term::Int(op::SEND), atom!(""), Term::Pid(to)]);
        let start = out.len();
        let met_map = Cell::new(false);
        let wire = Wire {
            term: message,
            service: self,
            met_map: &met_map,
        };
        // Only a message past 4 GiB fails; it is dropped, as BEAM drops what it cannot send.
        let _ = dist::encode(&control, Some(wire), out);
        if met_map.get() {
            out.truncate(start);
            let _ = dist::encode(&control, Some(&self.wire_term(message.to_term())), out);
        }
    }

    /// The proxy exits with `reason` (its ports close, its driver references go) and is
    /// forgotten; its thread ends soon after (see `run_proxy`).
    fn proxy_exit(&self, proxy: &Proxy, reason: Term) {
        self.proxies.lock().remove(&proxy.remote);
        self.remote_of.lock().remove(proxy.local.pid());
        self.runtime.exit(proxy.local.pid(), reason);
        if let Some(thread) = proxy.turn.thread.get() {
            thread.unpark();
        }
    }

    /// A local pid as the peer sees it: a proxy is its remote process; another runtime
    /// process is a pid of this node.
    fn wire_pid(&self, pid: &Pid) -> Pid {
        match self.remote_of.lock().get(pid) {
            Some(remote) => *remote,
            None => self.own_pid(pid),
        }
    }

    /// A local pid as a pid of this node (a proxy's own identity, as its monitor's watcher).
    fn own_pid(&self, pid: &Pid) -> Pid {
        match pid.local_id() {
            Some(n) => Pid {
                node: self.node,
                id: (n & ((1 << PID_ID_BITS) - 1)) as u32,
                serial: (n >> PID_ID_BITS) as u32,
                creation: self.creation,
            },
            None => *pid,
        }
    }

    fn is_ours(&self, node: Atom, creation: u32) -> bool {
        node == self.node && creation == self.creation
    }

    /// A local port as the peer sees it: a port of this node.
    fn wire_port(&self, port: Port) -> Port {
        match port.local_id() {
            Some(id) => Port {
                node: self.node,
                id,
                creation: self.creation,
            },
            None => port,
        }
    }

    /// A local reference as the peer sees it: a reference of this node.
    fn wire_ref(&self, reference: Ref) -> Ref {
        let local = reference.node == drv_term::local_node() && reference.creation == 0;
        local
            .then(|| Ref::new(self.node, self.creation, reference.words()))
            .flatten()
            .unwrap_or(reference)
    }

    /// A term as the peer must see it.
    fn wire_term(&self, mut term: Term) -> Term {
        map_identifiers(&mut term, &|t| match t {
            Term::Pid(p) => Some(Term::Pid(self.wire_pid(p))),
            Term::Port(p) => Some(Term::Port(self.wire_port(*p))),
            Term::Ref(r) => Some(Term::Ref(self.wire_ref(*r))),
            _ => None,
        });
        term
    }

    /// A term from the peer as the runtime knows it.
    fn local_term(&self, mut term: Term) -> Term {
        map_identifiers(&mut term, &|t| match t {
            Term::Pid(p) if self.is_ours(p.node, p.creation) => Some(Term::Pid(Pid::local(
                (u64::from(p.serial) << PID_ID_BITS) | u64::from(p.id),
            ))),
            Term::Port(p) if self.is_ours(p.node, p.creation) => {
                Some(Term::Port(Port::local(p.id)))
            }
            Term::Ref(r) if self.is_ours(r.node, r.creation) => {
                Ref::new(drv_term::local_node(), 0, r.words()).map(Term::Ref)
            }
            _ => None,
        });
        term
    }
}

/// The caller and the request of `{call, From, Ref, {Module, Function, Args}}`, taken out of
/// the message's elements (no copy).
fn call_request(message: &mut [Term]) -> Option<(Pid, Request)> {
    let [Term::Atom(tag), Term::Pid(from), reference, Term::Tuple(mfa)] = message else {
        return None;
    };
    let [module, function, args] = mfa.as_mut_slice() else {
        return None;
    };
    (tag.as_str() == "call").then(|| {
        let out = |t: &mut Term| std::mem::replace(t, Term::Int(0));
        (
            *from,
            (out(reference), out(module), out(function), out(args)),
        )
    })
}

/// A fresh word for a reference this node makes (its monitors).
fn ddll_next_word() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A term as the peer must see it, read in place: each identifier is mapped as the encoder
/// reads it (as [`Service::wire_term`] maps a copy). Maps hold [`Term`]s the encoder reads
/// directly, unmapped: meeting one sets `met_map`, and the caller encodes a mapped copy
/// instead (see `encode_send`).
#[derive(Clone, Copy)]
struct Wire<'s, R> {
    term: R,
    service: &'s Service,
    met_map: &'s Cell<bool>,
}

/// The elements of a [`Wire`] list or tuple.
#[derive(Clone)]
struct WireItems<'s, I> {
    items: I,
    service: &'s Service,
    met_map: &'s Cell<bool>,
}

impl<'s, I: Iterator> Iterator for WireItems<'s, I> {
    type Item = Wire<'s, I::Item>;

    fn next(&mut self) -> Option<Self::Item> {
        let (service, met_map) = (self.service, self.met_map);
        self.items.next().map(|term| Wire {
            term,
            service,
            met_map,
        })
    }
}

impl<'a, 's, R: TermRef<'a>> TermRef<'a> for Wire<'s, R> {
    type Items = WireItems<'s, R::Items>;

    fn node(self) -> Node<'a, Self> {
        let (service, met_map) = (self.service, self.met_map);
        let node = self.term.node().map_refs(
            |items, _| WireItems {
                items,
                service,
                met_map,
            },
            |term| Wire {
                term,
                service,
                met_map,
            },
        );
        match node {
            Node::Pid(p) => Node::Pid(service.wire_pid(&p)),
            Node::Port(p) => Node::Port(service.wire_port(p)),
            Node::Ref(r) => Node::Ref(service.wire_ref(r)),
            Node::Map(pairs) => {
                met_map.set(true);
                Node::Map(pairs)
            }
            node => node,
        }
    }
}

/// Replaces each identifier in `term` for which `f` gives a replacement, in place (a message
/// with none to replace costs no copy).
fn map_identifiers(term: &mut Term, f: &impl Fn(&Term) -> Option<Term>) {
    match term {
        Term::Pid(_) | Term::Port(_) | Term::Ref(_) => {
            if let Some(replacement) = f(term) {
                *term = replacement;
            }
        }
        Term::List(items) | Term::Tuple(items) => {
            items.iter_mut().for_each(|t| map_identifiers(t, f));
        }
        Term::ImproperList(items, tail) => {
            items.iter_mut().for_each(|t| map_identifiers(t, f));
            map_identifiers(tail, f);
        }
        Term::Map(pairs) => {
            let mut mapped = pairs.clone();
            for (key, value) in &mut mapped {
                map_identifiers(key, f);
                map_identifiers(value, f);
            }
            // Keys may order differently once their nodes change; two that become one (a
            // proxy's pid and the remote pid it stands for) leave the map as it was.
            if let Some(map) = Term::map(mapped) {
                *term = map;
            }
        }
        _ => {}
    }
}

/// `Module:Function(Args)` of what `ddll_remote` offers, run as `pid`: the BIFs' own
/// results and exceptions.
fn call(
    runtime: &Runtime,
    pid: &Pid,
    module: &str,
    function: &str,
    args: &[Term],
) -> Result<Term, Exception> {
    let rt = runtime;
    let port_op = |op: &Term| match op {
        Term::Int(op) => u32::try_from(*op).map_err(|_| Exception::badarg()),
        _ => Err(Exception::badarg()),
    };
    match (module, function, args) {
        ("erl_ddll", f, args) => ddll::erl_ddll_call(runtime, pid, f, args),
        ("erlang", "open_port", [Term::Tuple(name), options]) if name.len() == 2 => {
            if name[0] != atom!("spawn_driver") && name[0] != atom!("spawn") {
                return Err(Exception::badarg());
            }
            let command = match &name[1] {
                Term::Atom(a) => a.as_str().to_owned(),
                other => ddll::iodata::flatten(other)
                    .map(|b| b.iter().map(|&c| char::from(c)).collect::<String>())
                    .ok_or(Exception::badarg())?,
            };
            rt.open_port(pid, &command, port_options(options)?)
                .map(Term::Port)
        }
        ("erlang", "port_command", [Term::Port(p), data]) => {
            rt.port_command(pid, p, data).map(|()| atom!("true"))
        }
        ("erlang", "port_control", [Term::Port(p), op, data]) => {
            rt.port_control(pid, p, port_op(op)?, data)
        }
        ("erlang", "port_call", [Term::Port(p), op, data]) => {
            rt.port_call(pid, p, port_op(op)?, data)
        }
        ("erlang", "port_close", [Term::Port(p)]) => rt.port_close(pid, p).map(|()| atom!("true")),
        ("erlang", "port_info", [Term::Port(p)]) => Ok(rt.port_info(p)),
        ("erlang", "port_info", [Term::Port(p), item]) => rt.port_info_item(p, item),
        ("erlang", _, _) => Err(Exception::badarg()),
        _ => Err(Exception::new(atom!("undef"))),
    }
}

/// `open_port/2`'s options for a driver: `binary` and `eof` matter; the others BEAM accepts
/// are accepted and have no effect on a driver port.
fn port_options(options: &Term) -> Result<PortOptions, Exception> {
    let Term::List(items) = options else {
        return Err(Exception::badarg());
    };
    let mut parsed = PortOptions::default();
    for item in items {
        match item {
            Term::Atom(a) => match a.as_str() {
                "binary" => parsed.binary = true,
                "eof" => parsed.eof = true,
                "stream" | "in" | "out" | "use_stdio" | "nouse_stdio" | "hide" | "exit_status"
                | "overlapped_io" | "stderr_to_stdout" => {}
                _ => return Err(Exception::badarg()),
            },
            Term::Tuple(pair) if pair.len() == 2 => {}
            _ => return Err(Exception::badarg()),
        }
    }
    Ok(parsed)
}

/// An erl_ddll driver monitor message: `{'DOWN' | 'UP', Ref, driver, Name, Tag}`.
fn is_driver_notification(message: ddll::FlatRef<'_>) -> bool {
    let Some(mut items) = message.tuple().filter(|items| items.len() == 5) else {
        return false;
    };
    let mut next = || items.next().expect("five elements");
    let tag = next();
    (tag.is_atom("DOWN") || tag.is_atom("UP"))
        && next().reference().is_some()
        && next().is_atom("driver")
}
