//! `ddll-node`: a ddll [`Runtime`] as a hidden Erlang node.
//!
//! [`Node::start`] registers with EPMD (starting `epmd -daemon` when none runs), accepts
//! connections from BEAM nodes with OTP 25's handshake (version 6, cookie challenge) and makes
//! them ([`Node::connect`], [`Node::send`]), ticks them, and serves a registered process
//! `ddll`. BEAM code calls it through the module
//! shipped in `erl/ddll_remote.erl`: each request runs on the runtime as a *proxy* process of
//! the calling BEAM process, whose mailbox (port data, port exits) is forwarded to it. The
//! proxy watches its BEAM process with a distribution monitor: when that process dies, or its
//! node disconnects (`noconnection`), the proxy exits with the same reason, so its ports
//! close and its erl_ddll references go as if it had died locally.
//!
//! ```no_run
//! let rt = ddll::Runtime::new().expect("the C API shim installs");
//! let node = ddll_node::Node::start(rt, ddll_node::NodeOptions::new("ddll@localhost", "cookie"))
//!     .expect("registers with EPMD");
//! println!("{} is up", node.name());
//! node.wait();
//! ```

#![forbid(unsafe_code)]

mod dist;
mod epmd;
mod handshake;
mod service;

use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use ddll::Runtime;
use drv_term::{Atom, Pid, Term};

pub use handshake::HandshakeError;

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The full node name, `alive@host`.
    pub name: String,
    /// The cookie connecting nodes must know.
    pub cookie: String,
    /// The address the node listens on (loopback unless told otherwise).
    pub listen: IpAddr,
    /// EPMD's port (on loopback): `ERL_EPMD_PORT`, else 4369, as `erl` finds it.
    pub epmd_port: u16,
}

impl NodeOptions {
    /// Options for the node `name` (`alive@host`) with `cookie`, listening on loopback.
    pub fn new(name: &str, cookie: &str) -> NodeOptions {
        NodeOptions {
            name: name.to_owned(),
            cookie: cookie.to_owned(),
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            epmd_port: epmd::port_from_env(),
        }
    }
}

/// The full name `-sname NAME` gives: `NAME@` the host's name up to its first dot.
pub fn short_name(alive: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().split('.').next().unwrap_or("").to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{alive}@{host}")
}

/// A running node. Dropping it does not stop it; the process's end does.
#[derive(Debug)]
pub struct Node {
    name: Atom,
    creation: u32,
    service: Arc<service::Service>,
    accepting: JoinHandle<()>,
    _registration: epmd::Registration,
}

impl Node {
    /// Starts the node of `options` over `runtime`: listens, registers with EPMD, and
    /// accepts connections on a thread of its own.
    pub fn start(runtime: Runtime, options: NodeOptions) -> io::Result<Node> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        let (alive, host) = options
            .name
            .split_once('@')
            .ok_or_else(|| invalid("a node name is alive@host"))?;
        if alive.is_empty() || host.is_empty() {
            return Err(invalid("a node name is alive@host"));
        }
        let name = Atom::try_new(&options.name).map_err(|_| invalid("node name too long"))?;
        let listener = TcpListener::bind((options.listen, 0))?;
        let registration = epmd::register(alive, listener.local_addr()?.port(), options.epmd_port)?;
        let creation = registration.creation;
        let service = Arc::new(service::Service::new(
            runtime,
            name,
            creation,
            options.cookie,
            options.epmd_port,
        ));
        let accepted = service.clone();
        let accepting = std::thread::Builder::new()
            .name("ddll-node-accept".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let service = accepted.clone();
                    let _ = std::thread::Builder::new()
                        .name("ddll-node-conn".into())
                        .spawn(move || service.serve(stream));
                }
            })?;
        Ok(Node {
            name,
            creation,
            service,
            accepting,
            _registration: registration,
        })
    }

    /// The node's name.
    pub fn name(&self) -> Atom {
        self.name
    }

    /// The node's incarnation, as EPMD gave it.
    pub fn creation(&self) -> u32 {
        self.creation
    }

    /// Connects to the node `peer` (`alive@host`) unless connected already: its EPMD (on
    /// [`NodeOptions::epmd_port`]) gives its port, then the handshake as the initiating side
    /// (refused, as by BEAM, when the cookies differ). The connection then serves `ddll` as an
    /// accepted one does.
    pub fn connect(&self, peer: &str) -> io::Result<()> {
        self.service.connect(peer).map(drop)
    }

    /// Sends `message` to the process `to` of another node, connecting to that node when
    /// needed (`to ! message`). Pids and ports of the runtime in `message` travel as this
    /// node's.
    pub fn send(&self, to: Pid, message: &Term) -> io::Result<()> {
        self.service.send(to, message)
    }

    /// Sends `message` to the process registered as `name` on `node`, connecting to that node
    /// when needed (`{name, node} ! message`).
    pub fn send_named(&self, node: &str, name: &str, message: &Term) -> io::Result<()> {
        self.service.send_named(node, name, message)
    }

    /// Serves until the process ends.
    pub fn wait(self) {
        let _ = self.accepting.join();
    }
}
