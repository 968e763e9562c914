//! The transport between a runtime and a driver's host process: two Unix stream sockets
//! carrying frames, each a big-endian `u32` length and a term in the external term format.
//! The *request channel* (the host's standard input) carries requests and their replies, in
//! turn; the *event channel* (the host's descriptor [`EVENT_FD`]) carries what the host says
//! on its own (messages made outside a request, the watchdog's news) and, by its end, the
//! host's death.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use drv_term::Term;

/// The largest frame either side accepts: a larger length means the stream is corrupt.
const MAX_FRAME: usize = 1 << 30;

/// The host's descriptor of the event channel.
pub(crate) const EVENT_FD: i32 = 3;

/// How long a side waiting for a frame polls for it before it sleeps in `read`: a reply that
/// comes within it costs no wake-up. `DDLL_ISOLATE_SPIN_US` sets it (microseconds; 0: never
/// poll); the default is [`DEFAULT_SPIN`].
pub(crate) fn spin() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        std::env::var("DDLL_ISOLATE_SPIN_US")
            .ok()
            .and_then(|us| us.parse().ok())
            .map_or(DEFAULT_SPIN, Duration::from_micros)
    })
}

/// See [`spin`]. None by default: on a loaded two-core machine a waiting side that polls takes
/// the core the other side needs, and the 64-byte echo round trip went from ~15 µs (no poll)
/// to ~55 µs (20 µs of polling) and ~180 µs (50 µs) (`cargo bench -p ddll --bench
/// isolated_echo`, ARCHITECTURE.md). Worth setting only with cores to spare.
const DEFAULT_SPIN: Duration = Duration::ZERO;

/// Polls `stream` for up to `spin` until it has something to read (or its other end is
/// gone); returns at once when `spin` is zero. A `read` that follows then need not sleep.
pub(crate) fn await_readable(stream: &UnixStream, spin: Duration) {
    if spin.is_zero() {
        return;
    }
    let start = Instant::now();
    let mut poll = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the duration of the call; a zero timeout never sleeps.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        if ready != 0 || start.elapsed() >= spin {
            return;
        }
        std::hint::spin_loop();
    }
}

/// Writes `term` as one frame (one `write` for the length and the term together).
pub(crate) fn write(out: &mut impl Write, term: &Term) -> io::Result<()> {
    let mut buf = vec![0; 4];
    drv_term::encode_into(term, &mut buf);
    let len = u32::try_from(buf.len() - 4)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    out.write_all(&buf)
}

/// Reads one frame; `UnexpectedEof` when the other side has gone.
pub(crate) fn read(input: &mut impl Read) -> io::Result<Term> {
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0; len];
    input.read_exact(&mut buf)?;
    drv_term::decode(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_order() {
        let terms = [
            Term::Tuple(vec![crate::runtime::atom("msgs"), Term::Int(-1)]),
            Term::Binary(bytes::Bytes::from_static(&[0, 1, 2, 255])),
            Term::Pid(drv_term::Pid::local(7)),
            Term::Port(drv_term::Port::local(1 << 33 | 5)),
        ];
        let mut wire = Vec::new();
        for term in &terms {
            write(&mut wire, term).expect("written");
        }
        let mut input = wire.as_slice();
        for term in &terms {
            assert_eq!(&read(&mut input).expect("read"), term);
        }
        assert_eq!(
            read(&mut input).expect_err("nothing left").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
