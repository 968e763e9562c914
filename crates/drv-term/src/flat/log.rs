//! [`FlatLog`]: flat terms one after the other in one buffer, the form of a backlog.

use bytes::{Buf as _, Bytes, BytesMut};

use super::port_data::{append, compact_len, is_port_data, len_at_start};
use super::{size, DataPiece, FlatTerm, FlatWriter, Parts, Stop, ROOT};
use crate::arena;
use crate::spec::{capacity_for, interpret};
use crate::{Atom, Port, SpecEnv, TermData};

/// Bytes before a records entry: the records' length (never 0, where an entry in the compact
/// form of port data starts with a 0).
const FRAME: usize = 4;

/// Flat terms without kept terms, one after the other in one buffer: a queue of them (a
/// backlog at an owner that does not receive, issue 16) costs each message its bytes and
/// nothing else: no allocation, no slot beside it, and memory that a long backlog gets in
/// huge pages. Taking one splits it off the buffer without a copy (the message then shares
/// the buffer, as a message in the arena shares its chunk).
///
/// Two kinds of entry, told apart by their first four bytes:
///
/// | entry | bytes |
/// |---|---|
/// | a binary-mode port data message ([`FlatLog::push_port_data`]) | its compact form, which starts with a `u32` 0 (`port_data.rs`) |
/// | any other flat term without kept terms ([`FlatLog::push`]) | the records' length (`u32`, little-endian, at least 5), then the records |
///
/// The buffer grows as a `Vec` does; once a message is taken from it, or past
/// [`FlatLog::MAX_BYTES`], pushes refuse more (start another log).
///
/// The cost of sharing: a message taken and kept indefinitely keeps the whole buffer (at most
/// [`FlatLog::MAX_BYTES`]) alive, as a [`Bytes`] slice keeps its buffer. A buffer of that size
/// that nothing holds any more (the log dropped, its messages gone) is written again by the
/// next log ([`SPARE_BUFFERS`](crate::arena::SPARE_BUFFERS) of them are kept).
#[derive(Debug, Default)]
pub struct FlatLog {
    /// The messages, while the log is written.
    buf: BytesMut,
    /// The messages not yet taken, once one was: frozen, so that taking one is a cheap split.
    taking: Bytes,
    count: usize,
}

/// What [`FlatLog::push_spec`] did with a spec's term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedSpec {
    /// The term is in the log.
    Logged,
    /// The log has no room for it (full, or taken from): another log may take it.
    NoRoom,
    /// No log takes it: a rejected spec (the error is [`FlatTerm::from_spec`]'s to give), a
    /// term that keeps terms beside its records (see [`FlatLog::holds`]), or a spec longer than
    /// [`FlatLog::MAX_SPEC_WORDS`]. Nothing was written.
    Unfit,
}

impl FlatLog {
    /// The most bytes of messages one log holds.
    pub const MAX_BYTES: usize = arena::MAX_CHUNK;

    /// The longest spec [`FlatLog::push_spec`] builds: a mailbox writes its log under its
    /// lock, which a receiver waits for while the term is built.
    pub const MAX_SPEC_WORDS: usize = 256;

    /// An empty log (no allocation until the first message).
    pub fn new() -> FlatLog {
        FlatLog::default()
    }

    /// An empty log with room for `bytes` of messages (at most [`FlatLog::MAX_BYTES`]),
    /// allocated now: for a backlog known to be long, the room a log would grow to (a large
    /// buffer is aligned for huge pages: see `arena::on_new_chunks`).
    pub fn with_capacity(bytes: usize) -> FlatLog {
        FlatLog {
            buf: arena::new_buffer(bytes.min(Self::MAX_BYTES)),
            taking: Bytes::new(),
            count: 0,
        }
    }

    /// The bytes of messages it has room for without growing.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends the message [`FlatTerm::port_data`] would make of these parts in binary
    /// mode; whether it did. Not when the compact form cannot hold it (a remote port, a piece
    /// above [`INLINE_BINARY_LIMIT`](crate::INLINE_BINARY_LIMIT): make the message), nor when
    /// this log is full (see the type's docs).
    #[inline]
    pub fn push_port_data(
        &mut self,
        port: Port,
        tag: Atom,
        header: &[u8],
        pieces: &[DataPiece<'_>],
    ) -> bool {
        let (Some(number), Some(len)) = (port.local_id(), compact_len(header, pieces)) else {
            return false;
        };
        if !self.has_room(len) {
            return false;
        }
        append(&mut self.buf, number, tag, header, pieces);
        self.count += 1;
        true
    }

    /// Whether a log holds terms like `term`: not one that keeps terms beside its records (a
    /// large binary, a map: keep the term itself), nor one larger than a log.
    #[inline]
    pub fn holds(term: &FlatTerm) -> bool {
        matches!(&term.parts, Parts::Records(buf) if FRAME + buf.len() <= Self::MAX_BYTES)
    }

    /// Appends a copy of `term`; whether it did. Not when a log does not hold such a term
    /// ([`FlatLog::holds`]), nor when this log is full (see the type's docs). The copy is the
    /// term's bytes: a term built in a buffer of its own and dropped once logged leaves that
    /// buffer to malloc for the next one, where a queue of such buffers would take fresh
    /// memory for each.
    #[inline]
    pub fn push(&mut self, term: &FlatTerm) -> bool {
        let Parts::Records(buf) = &term.parts else {
            return false;
        };
        if is_port_data(buf) {
            // Self-delimiting: as it is.
            if !self.has_room(buf.len()) {
                return false;
            }
            self.buf.extend_from_slice(buf);
        } else {
            let Ok(len) = u32::try_from(buf.len()) else {
                return false;
            };
            if !self.has_room(FRAME + buf.len()) {
                return false;
            }
            self.buf.extend_from_slice(&len.to_le_bytes());
            self.buf.extend_from_slice(buf);
        }
        self.count += 1;
        true
    }

    /// Builds the term of a driver's term spec (see [`FlatTerm::from_spec`]) straight into the
    /// log, as [`FlatLog::push`] would copy it: a deep backlog of driver terms costs each its
    /// records, without a buffer of its own to allocate, copy and free.
    #[inline]
    pub fn push_spec<E: SpecEnv + ?Sized>(&mut self, spec: &[TermData], env: &E) -> LoggedSpec {
        if spec.len() > Self::MAX_SPEC_WORDS {
            return LoggedSpec::Unfit;
        }
        let mut room = ROOT + capacity_for(spec.len());
        loop {
            if !self.has_room(FRAME + room) {
                return LoggedSpec::NoRoom;
            }
            let start = self.buf.len();
            self.buf.resize(start + FRAME + room, 0);
            let mut terms = None;
            let mut out = FlatWriter::records_only(&mut self.buf[start + FRAME..], &mut terms);
            let built = interpret(spec, env, &mut out).map(|root| (root, out.end()));
            match built {
                Ok((root, used)) => {
                    self.buf.truncate(start + FRAME + used);
                    let entry = &mut self.buf[start..];
                    // `used` is at most the room, which `has_room` kept under `MAX_BYTES`.
                    entry[..FRAME].copy_from_slice(&(used as u32).to_le_bytes());
                    entry[FRAME..FRAME + ROOT].copy_from_slice(&root.to_le_bytes());
                    self.count += 1;
                    return LoggedSpec::Logged;
                }
                // The estimate was short (long strings): again, in the room asked for.
                Err(Stop::Full(full)) if full.at_least <= Self::MAX_BYTES => {
                    self.buf.truncate(start);
                    room = full.at_least.max(2 * room);
                }
                Err(_) => {
                    self.buf.truncate(start);
                    return LoggedSpec::Unfit;
                }
            }
        }
    }

    /// Whether `len` more bytes may be appended, growing the buffer if need be: not once a
    /// message was taken, nor past [`FlatLog::MAX_BYTES`].
    #[inline]
    fn has_room(&mut self, len: usize) -> bool {
        self.taking.is_empty() && (self.buf.capacity() - self.buf.len() >= len || self.grow(len))
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, len: usize) -> bool {
        let needed = self.buf.len() + len;
        if needed > Self::MAX_BYTES {
            return false;
        }
        // Doubled as a `Vec` is, until the next size would be worth huge pages: then the
        // largest buffer at once, aligned for them (see `arena::new_buffer`).
        if (2 * self.buf.capacity()).max(needed) < arena::HOOKED_CHUNK {
            self.buf.reserve(len);
        } else {
            let mut buffer = arena::new_buffer(Self::MAX_BYTES);
            buffer.extend_from_slice(&self.buf);
            self.buf = buffer;
        }
        true
    }

    /// The oldest message, taken off the log.
    #[inline]
    pub fn pop(&mut self) -> Option<FlatTerm> {
        if self.count == 0 {
            return None;
        }
        if self.taking.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.taking = if buf.capacity() == Self::MAX_BYTES {
                // Back to the spare buffers once its last message is gone.
                Bytes::from_owner(Recycled(buf))
            } else {
                buf.freeze()
            };
        }
        self.count -= 1;
        let buf = match size(&self.taking, 0) {
            0 => {
                let len = len_at_start(&self.taking);
                self.taking.split_to(len)
            }
            len => {
                // The frame is passed over in place, not cut off the split entry: that would
                // write the entry's handle field by field just before it is copied whole.
                self.taking.advance(FRAME);
                self.taking.split_to(len)
            }
        };
        Some(FlatTerm {
            parts: Parts::Records(buf),
        })
    }

    /// How many messages it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl Drop for FlatLog {
    /// A log dropped while written keeps its buffer for the next (see
    /// [`SPARE_BUFFERS`](crate::arena::SPARE_BUFFERS)).
    fn drop(&mut self) {
        arena::recycle(std::mem::take(&mut self.buf));
    }
}

/// A full-size log's buffer once it is taken from: its messages share it, and the last one
/// gone hands it back to the spare buffers ([`arena::recycle`]).
struct Recycled(BytesMut);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        arena::recycle(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::{FlatLog, LoggedSpec};
    use crate::{Atom, DataPiece, FlatTerm, Port, Term, INLINE_BINARY_LIMIT};

    /// What a test pushes: port data parts, or a term.
    enum Push<'a> {
        PortData(Port, &'a [u8], &'a [DataPiece<'a>]),
        Term(FlatTerm),
    }

    /// Each message through the log is the one made directly, in order, whichever kind of
    /// entry it is; what the log cannot hold is refused; a log being taken from takes no
    /// more.
    #[test]
    fn logged_messages_are_those_made_directly() {
        let (port, tag) = (Port::local(7), Atom::new("data"));
        let big = [9u8; INLINE_BINARY_LIMIT + 1];
        let remote = Port {
            node: Atom::new("other@host"),
            ..port
        };
        let tcp = Term::Tuple(vec![
            Term::Atom(Atom::new("tcp")),
            Term::Port(port),
            Term::cons(
                vec![Term::Int(100)],
                Term::Binary(bytes::Bytes::from_static(&[7; 50])),
            ),
        ]);
        let kept = Term::Binary(bytes::Bytes::from(vec![1; 100]));
        let big_piece = [DataPiece::Borrowed(&big)];
        let cases: Vec<(Push<'_>, bool)> = vec![
            (
                Push::PortData(port, b"", &[DataPiece::Borrowed(&[1; 64])]),
                true,
            ),
            (Push::Term(FlatTerm::from_term(&tcp)), true),
            (
                Push::PortData(
                    port,
                    b"hd",
                    &[DataPiece::Borrowed(b"a"), DataPiece::Borrowed(b"")],
                ),
                true,
            ),
            (
                Push::Term(FlatTerm::from_term(&Term::List(Vec::new()))),
                true,
            ),
            (
                Push::Term(FlatTerm::port_data(
                    port,
                    tag,
                    b"",
                    &[DataPiece::Borrowed(b"xyz")],
                    true,
                )),
                true,
            ),
            (Push::PortData(port, b"", &[]), true),
            (
                Push::PortData(Port::local(8), &[5; 300], &[DataPiece::Borrowed(b"abc")]),
                true,
            ),
            (Push::Term(FlatTerm::from_term(&kept)), false),
            (Push::PortData(port, b"", &big_piece), false),
            (
                Push::PortData(remote, b"", &[DataPiece::Borrowed(b"x")]),
                false,
            ),
        ];
        let mut log = FlatLog::new();
        for (push, fits) in &cases {
            let pushed = match push {
                Push::PortData(port, header, pieces) => {
                    log.push_port_data(*port, tag, header, pieces)
                }
                Push::Term(term) => {
                    assert_eq!(FlatLog::holds(term), *fits);
                    log.push(term)
                }
            };
            assert_eq!(pushed, *fits);
        }
        assert_eq!(log.len(), 7);
        let mut taken = vec![log.pop().expect("the first")];
        taken.extend(std::iter::from_fn(|| log.pop()));
        let made: Vec<Term> = cases
            .iter()
            .filter(|case| case.1)
            .map(|(push, _)| match push {
                Push::PortData(port, header, pieces) => {
                    FlatTerm::port_data(*port, tag, header, pieces, true).to_term()
                }
                Push::Term(term) => term.to_term(),
            })
            .collect();
        let terms: Vec<Term> = taken.iter().map(FlatTerm::to_term).collect();
        assert_eq!(terms, made);
        assert!(log.is_empty() && log.pop().is_none());
        // Taken from, a log takes no more until it is empty.
        let data = [DataPiece::Borrowed(&[3; 64])];
        let term = FlatTerm::from_term(&tcp);
        assert!(log.push_port_data(port, tag, b"", &data) && log.push(&term));
        assert!(log.pop().is_some());
        let ok = [crate::tags::ERL_DRV_ATOM, Atom::new("ok").to_term_data()];
        assert!(
            !log.push_port_data(port, tag, b"", &data)
                && !log.push(&term)
                && log.push_spec(&ok, &crate::NoMemory) == LoggedSpec::NoRoom,
            "a log taken from took more"
        );
        assert!(log.pop().is_some() && log.is_empty());
        assert_eq!(log.push_spec(&ok, &crate::NoMemory), LoggedSpec::Logged);
        assert!(log.pop().is_some_and(|t| t.root().is_atom("ok")));
    }
}
