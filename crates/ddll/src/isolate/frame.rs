//! The frames between a runtime and a driver's host process, each a big-endian `u32` length
//! and a term in the external term format, on two channels. The *request channel* (shared
//! memory, `shm.rs`, with a socket pair on the host's standard input for hang-ups) carries
//! requests and their replies, in turn; the *event channel* (a socket, the host's descriptor
//! [`EVENT_FD`]) carries what the host says on its own (messages made outside a request, the
//! watchdog's news) and, by its end, the host's death.

use std::io::{self, BufRead, IoSlice, Read, Write};

use drv_term::Term;

/// The largest frame either side accepts: a larger length means the stream is corrupt.
const MAX_FRAME: usize = 1 << 30;

/// The room a buffer kept from one frame to the next keeps (one that a large frame made larger
/// gives the rest back).
pub(crate) const BUFFER_KEPT: usize = 1 << 16;

/// The host's descriptor of the event channel.
pub(crate) const EVENT_FD: i32 = 3;

/// The first byte of a [`Frame::Command`]'s payload (a term's is ETF's version, 131).
const COMMAND: u8 = 1;
/// The first byte of a [`Frame::Outputs`]'s payload.
const OUTPUTS: u8 = 2;
/// Where a [`Frame::Outputs`]'s records start in its payload: after the first byte and the
/// count of event batches sent.
const OUTPUTS_RECORDS: usize = 1 + 8;

/// A frame as read (borrowing the buffer it was read into): a term, or one of the compact
/// forms of the hot messages (an echo's round trip), which cost no term to build, encode,
/// decode and translate, and no allocation.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame<'a> {
    Term(Term),
    /// `{command, Port, Caller, Data}` of a local port and caller, by their numbers.
    Command {
        port: u64,
        caller: u64,
        data: &'a [u8],
    },
    /// The reply `{reply, ok, Messages, Sent}` to a [`Frame::Command`] whose messages are all
    /// of the form `{To, {Port, {data, Binary}}}` (a binary port's data output).
    Outputs {
        sent: u64,
        outputs: Outputs<'a>,
    },
}

/// `{To, {Port, {data, Data}}}`: binary data output of port `port` (a local port's number) to
/// local process `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Output<'a> {
    pub(crate) to: u64,
    pub(crate) port: u64,
    pub(crate) data: &'a [u8],
}

/// The outputs of a [`Frame::Outputs`] in order, their bounds checked when the frame was read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outputs<'a>(&'a [u8]);

impl<'a> Outputs<'a> {
    /// The outputs of `payload`, a [`Frame::Outputs`] frame's that [`parse`] read whole (they
    /// are not checked again: a cut record would end them).
    pub(crate) fn of_parsed(payload: &'a [u8]) -> Outputs<'a> {
        Outputs(payload.get(OUTPUTS_RECORDS..).unwrap_or_default())
    }

    /// The outputs in `records`; an error when one reaches past them.
    fn check(records: &'a [u8]) -> io::Result<Outputs<'a>> {
        let mut rest = Outputs(records);
        while !rest.0.is_empty() {
            rest.take_one()?;
        }
        Ok(Outputs(records))
    }

    fn take_one(&mut self) -> io::Result<Output<'a>> {
        // A record: `to` and `port` (8 bytes each), the data's length (4), the data.
        let (head, rest) = self
            .0
            .split_first_chunk::<20>()
            .ok_or_else(|| invalid("output past the frame"))?;
        let (to, port, len) = (&head[..8], &head[8..16], &head[16..]);
        let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
        let (data, rest) = rest
            .split_at_checked(len)
            .ok_or_else(|| invalid("output past the frame"))?;
        self.0 = rest;
        Ok(Output {
            to: u64::from_le_bytes(to.try_into().expect("eight bytes")),
            port: u64::from_le_bytes(port.try_into().expect("eight bytes")),
            data,
        })
    }
}

impl<'a> Iterator for Outputs<'a> {
    type Item = Output<'a>;

    fn next(&mut self) -> Option<Output<'a>> {
        if self.0.is_empty() {
            return None;
        }
        // Checked on reading: an error cannot come, and would end the outputs.
        self.take_one().ok()
    }
}

/// A request to write.
#[derive(Debug)]
pub(crate) enum Request<'a> {
    Term(&'a Term),
    /// See [`Frame::Command`].
    Command {
        port: u64,
        caller: u64,
        data: &'a [u8],
    },
}

/// Writes `term` as one frame (one `write` for the length and the term together).
pub(crate) fn write(out: &mut impl Write, term: &Term) -> io::Result<()> {
    let mut buf = vec![0; 4];
    drv_term::encode_into(term, &mut buf);
    finish(out, &mut buf)
}

/// Writes `request` as one frame: a command in its compact form (its head assembled on the
/// stack and written with the data: a round trip allocates and copies nothing for it).
pub(crate) fn write_request(out: &mut impl Write, request: &Request<'_>) -> io::Result<()> {
    match request {
        Request::Term(term) => write(out, term),
        Request::Command { port, caller, data } => {
            let mut head = [0u8; 1 + 16];
            head[0] = COMMAND;
            head[1..9].copy_from_slice(&port.to_le_bytes());
            head[9..].copy_from_slice(&caller.to_le_bytes());
            write_parts(out, &head, data)
        }
    }
}

/// Appends the record of an output (see [`Output`]) to `records`, the form a
/// [`Frame::Outputs`] holds them in: where it lies, or `None` (nothing appended) for data
/// too large for one.
pub(crate) fn push_output(
    records: &mut Vec<u8>,
    to: u64,
    port: u64,
    data: &[u8],
) -> Option<std::ops::Range<usize>> {
    let len = u32::try_from(data.len()).ok()?;
    let start = records.len();
    records.extend_from_slice(&to.to_le_bytes());
    records.extend_from_slice(&port.to_le_bytes());
    records.extend_from_slice(&len.to_le_bytes());
    records.extend_from_slice(data);
    Some(start..records.len())
}

/// The outputs whose records [`push_output`] made in `records`; an error when one is cut.
pub(crate) fn outputs(records: &[u8]) -> io::Result<Outputs<'_>> {
    Outputs::check(records)
}

/// Writes a [`Frame::Outputs`] reply of output `records` (made by [`push_output`]): its head
/// and the records go to `out` together, assembled nowhere else.
pub(crate) fn write_outputs(out: &mut impl Write, sent: u64, records: &[u8]) -> io::Result<()> {
    let mut head = [0u8; OUTPUTS_RECORDS];
    head[0] = OUTPUTS;
    head[1..].copy_from_slice(&sent.to_le_bytes());
    write_parts(out, &head, records)
}

/// Writes `buf` (four bytes of room for the length, then the payload) as one frame.
fn finish(out: &mut impl Write, buf: &mut [u8]) -> io::Result<()> {
    let len = frame_length(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len);
    out.write_all(buf)
}

/// The length field of a frame of `len` bytes.
fn frame_length(len: usize) -> io::Result<[u8; 4]> {
    u32::try_from(len)
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .map(u32::to_be_bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))
}

/// Writes the frame whose payload is `head` then `body`, in one vectored write when `out`
/// takes it whole (the request channel does when its ring has room: the frame is published
/// at once).
fn write_parts(out: &mut impl Write, head: &[u8], body: &[u8]) -> io::Result<()> {
    let len = frame_length(head.len() + body.len())?;
    let mut parts = [IoSlice::new(&len), IoSlice::new(head), IoSlice::new(body)];
    let mut parts = &mut parts[..];
    while !parts.is_empty() {
        match out.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one frame that must be a term; `UnexpectedEof` when the other side has gone.
pub(crate) fn read(input: &mut impl Read) -> io::Result<Term> {
    let mut buf = Vec::new();
    read_payload(input, &mut buf)?;
    match parse(&buf)? {
        Frame::Term(term) => Ok(term),
        _ => Err(invalid("a term expected")),
    }
}

/// Reads one frame into `buf` (its old content replaced; kept from one frame to the next, a
/// frame read allocates nothing); `UnexpectedEof` when the other side has gone. A frame that
/// `input` shows whole is taken in one piece (on the request channel: one store of the
/// ring's tail).
pub(crate) fn read_frame<'a>(
    input: &mut impl BufRead,
    buf: &'a mut Vec<u8>,
) -> io::Result<Frame<'a>> {
    buf.clear();
    let available = input.fill_buf()?;
    let whole = available
        .get(..4)
        .map(|len| u32::from_be_bytes(len.try_into().expect("four bytes")) as usize)
        .filter(|&len| len <= MAX_FRAME)
        .and_then(|len| available.get(4..4 + len));
    match whole {
        Some(payload) => {
            buf.extend_from_slice(payload);
            let taken = 4 + buf.len();
            input.consume(taken);
        }
        None => read_payload(input, buf)?,
    }
    parse(buf)
}

/// Reads one frame's payload into `buf` (empty).
fn read_payload(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(invalid("frame too large"));
    }
    buf.resize(len, 0);
    input.read_exact(buf)
}

/// The frame whose payload (the bytes after its length) is `buf`.
pub(crate) fn parse(buf: &[u8]) -> io::Result<Frame<'_>> {
    match buf.first() {
        Some(&COMMAND) => {
            let mut at = 1;
            let port = u64_at(buf, &mut at)?;
            let caller = u64_at(buf, &mut at)?;
            Ok(Frame::Command {
                port,
                caller,
                data: &buf[at..],
            })
        }
        Some(&OUTPUTS) => {
            let mut at = 1;
            let sent = u64_at(buf, &mut at)?;
            let outputs = Outputs::check(&buf[OUTPUTS_RECORDS..])?;
            Ok(Frame::Outputs { sent, outputs })
        }
        _ => drv_term::decode(buf)
            .map(Frame::Term)
            .map_err(|e| invalid(&e.to_string())),
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

/// The `N` bytes at `*at`, moving past them.
fn take<const N: usize>(buf: &[u8], at: &mut usize) -> io::Result<[u8; N]> {
    let bytes = buf
        .get(*at..*at + N)
        .ok_or_else(|| invalid("frame too short"))?;
    *at += N;
    Ok(bytes.try_into().expect("N bytes"))
}

fn u64_at(buf: &[u8], at: &mut usize) -> io::Result<u64> {
    take(buf, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records of `outputs`, as [`write_outputs`] takes them; each read back in place.
    fn pieces(outputs: &[Output<'_>]) -> Vec<u8> {
        let mut records = Vec::new();
        for output in outputs {
            let record =
                push_output(&mut records, output.to, output.port, output.data).expect("a record");
            let read: Vec<Output<'_>> = super::outputs(&records[record]).expect("whole").collect();
            assert_eq!(read, [*output]);
        }
        records
    }

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

    #[test]
    fn compact_frames_round_trip_between_terms() {
        let data = [7u8; 100];
        let outputs = vec![
            Output {
                to: 1 << 40 | 3,
                port: 9,
                data: b"echo",
            },
            Output {
                to: 4,
                port: u64::MAX,
                data: &[],
            },
        ];
        let mut wire = Vec::new();
        write_request(
            &mut wire,
            &Request::Command {
                port: 5,
                caller: 6,
                data: &data,
            },
        )
        .expect("written");
        let large = [9u8; 1000];
        write_request(
            &mut wire,
            &Request::Command {
                port: 1,
                caller: 2,
                data: &large,
            },
        )
        .expect("written");
        write(&mut wire, &Term::Int(1)).expect("written");
        write_outputs(&mut wire, 12, &pieces(&outputs)).expect("written");
        write_outputs(&mut wire, 0, &pieces(&[])).expect("written");
        let mut input = wire.as_slice();
        let mut buf = Vec::new();
        let mut read = || {
            // Compared as owned values (the frame borrows `buf`).
            let frame = read_frame(&mut input, &mut buf).expect("read");
            match frame {
                Frame::Term(term) => format!("{term:?}"),
                Frame::Command { port, caller, data } => {
                    format!("command {port} {caller} {data:?}")
                }
                Frame::Outputs { sent, outputs } => {
                    format!("outputs {sent} {:?}", outputs.collect::<Vec<_>>())
                }
            }
        };
        let expected = [
            format!("command 5 6 {:?}", &data[..]),
            format!("command 1 2 {:?}", &large[..]),
            format!("{:?}", Term::Int(1)),
            format!("outputs 12 {outputs:?}"),
            format!("outputs 0 {:?}", Vec::<Output<'_>>::new()),
        ];
        for frame in expected {
            assert_eq!(read(), frame);
        }
    }

    #[test]
    fn truncated_compact_frames_are_invalid() {
        let mut wire = Vec::new();
        let outputs = [Output {
            to: 1,
            port: 2,
            data: b"abc",
        }];
        write_outputs(&mut wire, 1, &pieces(&outputs)).expect("written");
        // The output's length says one byte more than the frame holds.
        let len_at = wire.len() - 3 - 4;
        wire[len_at] = 4;
        let err = read_frame(&mut wire.as_slice(), &mut Vec::new()).expect_err("invalid");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let short = [0, 0, 0, 3, COMMAND, 0, 0];
        let err = read_frame(&mut short.as_slice(), &mut Vec::new()).expect_err("invalid");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
