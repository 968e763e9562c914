//! Registering with EPMD (the Erlang port mapper daemon), as `erl` does at start.
//!
//! The registration lives as long as its TCP connection: EPMD forgets the node when the
//! connection closes, so [`Registration`] keeps it open.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::{Duration, Instant};

/// EPMD's port when `ERL_EPMD_PORT` does not name another.
pub const DEFAULT_PORT: u16 = 4369;

/// `ALIVE2_REQ`.
const ALIVE2_REQ: u8 = 120;
/// `ALIVE2_RESP`: a 16-bit creation.
const ALIVE2_RESP: u8 = 121;
/// `ALIVE2_X_RESP`: a 32-bit creation (EPMD of OTP 23 and later).
const ALIVE2_X_RESP: u8 = 118;
/// The node type of a hidden node (a C node); a normal Erlang node registers 77.
const HIDDEN_NODE: u8 = 72;
/// The distribution protocol over TCP/IPv4.
const TCP_IPV4: u8 = 0;
/// The distribution version of OTP 23's handshake (`DFLAG_HANDSHAKE_23`); the only one this
/// node speaks, so EPMD tells connecting nodes to use it.
pub const DIST_VERSION: u16 = 6;

/// The port EPMD listens on, as `erl` finds it: `ERL_EPMD_PORT`, else 4369.
pub fn port_from_env() -> u16 {
    std::env::var("ERL_EPMD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PORT)
}

/// A node's registration with EPMD: dropped, the node is unregistered.
#[derive(Debug)]
pub struct Registration {
    /// Kept open: EPMD unregisters the node when it closes.
    _connection: TcpStream,
    /// The node's incarnation, which its pids, ports and references carry.
    pub creation: u32,
}

/// Registers `alive` (the node name's part before `@`) listening on `listen_port` with the
/// EPMD on loopback port `epmd_port`, starting `epmd -daemon` first when none answers (as
/// `erl` does).
pub fn register(alive: &str, listen_port: u16, epmd_port: u16) -> io::Result<Registration> {
    let mut connection = connect_or_start(epmd_port)?;
    let name = alive.as_bytes();
    let mut body = vec![ALIVE2_REQ];
    body.extend_from_slice(&listen_port.to_be_bytes());
    body.extend_from_slice(&[HIDDEN_NODE, TCP_IPV4]);
    body.extend_from_slice(&DIST_VERSION.to_be_bytes()); // highest version
    body.extend_from_slice(&DIST_VERSION.to_be_bytes()); // lowest version
    body.extend_from_slice(&u16_len(name.len())?.to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&0u16.to_be_bytes()); // no extra data
    let mut request = u16_len(body.len())?.to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    connection.set_read_timeout(Some(Duration::from_secs(5)))?;
    connection.write_all(&request)?;
    let mut head = [0u8; 2];
    connection.read_exact(&mut head)?;
    let refused = || {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("EPMD refused the name {alive} (is a node of that name running?)"),
        )
    };
    let creation = match head {
        [ALIVE2_X_RESP, 0] => {
            let mut creation = [0u8; 4];
            connection.read_exact(&mut creation)?;
            u32::from_be_bytes(creation)
        }
        [ALIVE2_RESP, 0] => {
            let mut creation = [0u8; 2];
            connection.read_exact(&mut creation)?;
            u32::from(u16::from_be_bytes(creation))
        }
        [ALIVE2_X_RESP | ALIVE2_RESP, _] => return Err(refused()),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "EPMD answered ALIVE2_REQ with an unknown message",
            ))
        }
    };
    connection.set_read_timeout(None)?;
    Ok(Registration {
        _connection: connection,
        creation,
    })
}

/// `PORT_PLEASE2_REQ`.
const PORT_PLEASE2_REQ: u8 = 122;
/// `PORT2_RESP`.
const PORT2_RESP: u8 = 119;

/// The distribution port of the node `alive` on `host`, from the EPMD there (on
/// `epmd_port`), and the host's address it answered on.
pub fn port_please(host: &str, alive: &str, epmd_port: u16) -> io::Result<(IpAddr, u16)> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    for address in (host, epmd_port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
            Ok(mut connection) => {
                let name = alive.as_bytes();
                let mut request = u16_len(name.len() + 1)?.to_be_bytes().to_vec();
                request.push(PORT_PLEASE2_REQ);
                request.extend_from_slice(name);
                connection.set_read_timeout(Some(Duration::from_secs(5)))?;
                connection.write_all(&request)?;
                let mut head = [0u8; 4];
                connection.read_exact(&mut head[..2])?;
                return match head[..2] {
                    [PORT2_RESP, 0] => {
                        connection.read_exact(&mut head)?;
                        Ok((address.ip(), u16::from_be_bytes([head[0], head[1]])))
                    }
                    [PORT2_RESP, _] => Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("EPMD on {host} knows no node {alive}"),
                    )),
                    _ => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "EPMD answered PORT_PLEASE2_REQ with an unknown message",
                    )),
                };
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn u16_len(len: usize) -> io::Result<u16> {
    u16::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))
}

/// A connection to EPMD on loopback, starting `epmd -daemon -port P` when none answers and
/// waiting up to 5 s for it.
fn connect_or_start(port: u16) -> io::Result<TcpStream> {
    if let Ok(connection) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
        return Ok(connection);
    }
    let status = Command::new("epmd")
        .args(["-daemon", "-port", &port.to_string()])
        .status()
        .map_err(|e| io::Error::new(e.kind(), format!("starting epmd: {e}")))?;
    if !status.success() {
        return Err(io::Error::other(format!("epmd -daemon failed: {status}")));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(connection) => return Ok(connection),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
