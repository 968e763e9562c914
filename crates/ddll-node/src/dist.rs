//! A distribution connection after the handshake: 32-bit length-prefixed packets, a zero
//! length being a tick; each message is the pass-through tag (112), a control message and,
//! for sends, the message itself, both in the external term format.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drv_term::{Term, TermRef};
use parking_lot::Mutex;

/// The tag of a message without the distribution header's atom cache.
const PASS_THROUGH: u8 = 112;

/// How often an idle connection ticks: `net_ticktime` 60 s over 4, as BEAM's default.
pub const TICK_INTERVAL: Duration = Duration::from_secs(15);
/// Silence after which the peer counts as gone (BEAM's default `net_ticktime`).
pub const TICK_TIMEOUT: Duration = Duration::from_secs(60);

/// Control message operations (the first element of the control tuple).
pub mod op {
    pub const SEND: i64 = 2;
    pub const REG_SEND: i64 = 6;
    pub const MONITOR_P: i64 = 19;
    pub const DEMONITOR_P: i64 = 20;
    pub const MONITOR_P_EXIT: i64 = 21;
}

/// The sending half of a connection to one peer node.
#[derive(Debug)]
pub struct Connection {
    writer: Mutex<TcpStream>,
    up: AtomicBool,
}

impl Connection {
    pub fn new(stream: TcpStream) -> Connection {
        Connection {
            writer: Mutex::new(stream),
            up: AtomicBool::new(true),
        }
    }

    /// Whether the connection still stands.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Marks it down and closes the socket (the reader then sees the end too).
    pub fn shut_down(&self) {
        self.up.store(false, Ordering::Release);
        let _ = self.writer.lock().shutdown(std::net::Shutdown::Both);
    }

    /// Sends `control` and, for sends, `message` (terms as the peer must see them).
    pub fn send(&self, control: &Term, message: Option<&Term>) -> io::Result<()> {
        let mut packet = Vec::new();
        encode(control, message, &mut packet)?;
        self.write(&packet)
    }

    /// Sends packets [`encode`]d one after the other, in one write.
    pub fn send_encoded(&self, packets: &[u8]) -> io::Result<()> {
        self.write(packets)
    }

    /// A tick: an empty packet that tells the peer the connection lives.
    pub fn tick(&self) -> io::Result<()> {
        self.write(&[0, 0, 0, 0])
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        if !self.is_up() {
            return Err(io::ErrorKind::NotConnected.into());
        }
        let written = self.writer.lock().write_all(bytes);
        if written.is_err() {
            self.shut_down();
        }
        written
    }
}

/// Appends the packet of `control` and, for sends, `message` to `out`.
pub fn encode<'a>(
    control: &Term,
    message: Option<impl TermRef<'a>>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, PASS_THROUGH]);
    drv_term::encode_into(control, out);
    if let Some(message) = message {
        drv_term::encode_into(message, out);
    }
    let len = u32::try_from(out.len() - start - 4).map_err(|_| {
        out.truncate(start);
        io::Error::new(io::ErrorKind::InvalidInput, "message too large")
    })?;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// How often the ticker wakes: to tick when due, and to run its watch.
pub const TICKER_STEP: Duration = Duration::from_millis(200);

/// Ticks `connection` every [`TICK_INTERVAL`] until it goes down, running `watch` every
/// [`TICKER_STEP`].
pub fn tick_until_down(connection: Arc<Connection>, mut watch: impl FnMut()) {
    let step = TICKER_STEP;
    let mut idle = Duration::ZERO;
    while connection.is_up() {
        std::thread::sleep(step);
        watch();
        idle += step;
        if idle >= TICK_INTERVAL {
            idle = Duration::ZERO;
            if connection.tick().is_err() {
                return;
            }
        }
    }
}

/// One packet from the peer.
#[derive(Debug)]
pub enum Incoming {
    Tick,
    Message {
        control: Term,
        message: Option<Term>,
    },
}

/// Reads the next packet into `packet` (a buffer kept from one packet to the next); a silence
/// longer than [`TICK_TIMEOUT`] is an error (the stream must have that read timeout).
/// Buffered, a packet costs no read of its own when it came with others.
pub fn read(stream: &mut impl Read, packet: &mut Vec<u8>) -> io::Result<Incoming> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Ok(Incoming::Tick);
    }
    packet.clear();
    packet.resize(len, 0);
    stream.read_exact(packet)?;
    let malformed = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let Some((&PASS_THROUGH, terms)) = packet.split_first() else {
        return Err(malformed("a message without the pass-through tag"));
    };
    let (control, used) =
        drv_term::decode_prefix(terms).map_err(|_| malformed("a malformed control message"))?;
    let rest = &terms[used..];
    let message = if rest.is_empty() {
        None
    } else {
        Some(drv_term::decode(rest).map_err(|_| malformed("a malformed message"))?)
    };
    Ok(Incoming::Message { control, message })
}
