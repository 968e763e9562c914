//! Erlang iodata: binaries, byte lists and nested lists of them.
//!
//! Two views: [`flatten`] (what a driver's `output` callback gets) and [`io_vector`] (the
//! segments a driver's `outputv` callback gets, laid out the way BEAM lays them out).

use bytes::Bytes;
use drv_term::Term;

/// Whether a bitstring may stand in iodata.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bitstrings {
    /// Never (`iolist_to_binary/1` and the other iolist BIFs).
    Refused,
    /// A bitstring of no whole byte counts as an empty binary, as in port data: BEAM's
    /// `port_command(P, [<<1:7>>])` sends nothing and `port_command(P, [<<1,2:3>>])` is
    /// `badarg`.
    EmptyAsNothing,
}

/// The bytes of an iodata term (`None` when it is not iodata: `badarg`).
pub fn flatten(term: &Term) -> Option<Vec<u8>> {
    flatten_with(term, Bitstrings::Refused)
}

/// The bytes of port data (`port_command`, `port_control`): iodata in which, as in BEAM, a
/// bitstring of no whole byte (`<<1:7>>`) counts as nothing. `None` is `badarg`.
pub fn flatten_port_data(term: &Term) -> Option<Vec<u8>> {
    flatten_with(term, Bitstrings::EmptyAsNothing)
}

fn flatten_with(term: &Term, bitstrings: Bitstrings) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    walk(term, 0, bitstrings, &mut |piece| match piece {
        Piece::Byte(b) => out.push(b),
        Piece::Binary(b) => out.extend_from_slice(b),
    })
    .then_some(out)
}

/// An iodata term as an I/O vector: all its bytes, in order, and the lengths of the
/// consecutive segments they are cut into.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoVector {
    /// Every byte of the term, in order.
    pub data: Vec<u8>,
    /// The segment lengths; they add up to `data.len()`.
    pub segments: Vec<usize>,
}

/// A vector of this many segments or more is packed: BEAM's `SMALL_WRITE_VEC`.
const PACK_FROM_SEGMENTS: usize = 16;
/// When packing, binaries shorter than this are copied into the byte runs:
/// BEAM's `ERL_SMALL_IO_BIN_LIMIT` (4 × the 64-byte heap-binary limit).
const PACK_BINARIES_BELOW: usize = 256;

/// BEAM's `ERL_ONHEAP_BIN_LIMIT`: a binary of at most this many bytes is a heap binary.
const HEAP_BINARY_LIMIT: usize = 64;

/// The segments BEAM hands a driver's `outputv` for `port_command(Port, Term)` (its
/// `io_list_vec_len` and `io_list_to_vec`): every reference-counted binary is a segment of its
/// own, and the bytes between them (list integers and heap binaries, which BEAM copies) form
/// one segment per run. When that makes 16 segments or more, binaries under 256 bytes are
/// copied into the runs too.
///
/// BEAM tells a heap binary from a reference-counted one by its header; ddll's binaries carry
/// no such mark, so the size decides, as it does in BEAM for almost every binary: BIF results
/// (`binary_part/3`, `list_to_binary/1`, `term_to_binary/1`, `binary:copy/1`), binaries from
/// driver output and from other nodes, and binary literals and fixed-size constructions in
/// compiled code are heap binaries up to 64 bytes (`ERL_ONHEAP_BIN_LIMIT`) and
/// reference-counted above. (Only appending to a binary makes a small reference-counted one
/// in BEAM.) `None` when the term is not port data (see [`flatten_port_data`]).
pub fn io_vector(term: &Term) -> Option<IoVector> {
    /// A maximal stretch of the term: a run of bytes, or one reference-counted binary.
    struct Run {
        len: usize,
        binary: bool,
    }
    let mut data = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    let ok = walk(term, 0, Bitstrings::EmptyAsNothing, &mut |piece| {
        let (bytes, binary): (&[u8], bool) = match piece {
            Piece::Byte(ref b) => (std::slice::from_ref(b), false),
            // A heap binary joins the run of bytes (an empty one starts a run, which BEAM
            // counts when it decides to pack, but adds no byte).
            Piece::Binary(b) => (b, b.len() > HEAP_BINARY_LIMIT),
        };
        data.extend_from_slice(bytes);
        match runs.last_mut() {
            Some(run) if !binary && !run.binary => run.len += bytes.len(),
            _ => runs.push(Run {
                len: bytes.len(),
                binary,
            }),
        }
    });
    if !ok {
        return None;
    }
    let pack = runs.len() >= PACK_FROM_SEGMENTS;
    let mut segments = Vec::with_capacity(runs.len());
    let mut bytes_run = 0;
    for run in runs {
        if run.binary && !(pack && run.len < PACK_BINARIES_BELOW) {
            if bytes_run != 0 {
                segments.push(bytes_run);
                bytes_run = 0;
            }
            segments.push(run.len);
        } else {
            bytes_run += run.len;
        }
    }
    if bytes_run != 0 {
        segments.push(bytes_run);
    }
    Some(IoVector { data, segments })
}

/// One leaf of an iodata term.
enum Piece<'a> {
    Byte(u8),
    Binary(&'a Bytes),
}

/// Calls `visit` on every leaf of `term` in order; false when it is not iodata.
fn walk<'a>(
    term: &'a Term,
    depth: usize,
    bitstrings: Bitstrings,
    visit: &mut impl FnMut(Piece<'a>),
) -> bool {
    /// What an empty bitstring adds to port data: an empty binary.
    static NOTHING: Bytes = Bytes::new();
    if depth > 10_000 {
        return false;
    }
    match term {
        Term::Binary(b) => {
            visit(Piece::Binary(b));
            true
        }
        Term::Bitstring(b) if bitstrings == Bitstrings::EmptyAsNothing && b.bit_len() < 8 => {
            visit(Piece::Binary(&NOTHING));
            true
        }
        Term::List(items) => items
            .iter()
            .all(|item| element(item, depth, bitstrings, visit)),
        Term::ImproperList(items, tail) => {
            items
                .iter()
                .all(|item| element(item, depth, bitstrings, visit))
                && matches!(**tail, Term::Binary(_) | Term::Bitstring(_))
                && walk(tail, depth + 1, bitstrings, visit)
        }
        _ => false,
    }
}

fn element<'a>(
    item: &'a Term,
    depth: usize,
    bitstrings: Bitstrings,
    visit: &mut impl FnMut(Piece<'a>),
) -> bool {
    match item {
        Term::Int(b) if (0..=255).contains(b) => {
            visit(Piece::Byte(*b as u8));
            true
        }
        Term::Binary(_) | Term::Bitstring(_) | Term::List(_) | Term::ImproperList(..) => {
            walk(item, depth + 1, bitstrings, visit)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(b: &[u8]) -> Term {
        Term::Binary(Bytes::copy_from_slice(b))
    }

    fn string(s: &str) -> Term {
        Term::List(s.bytes().map(|b| Term::Int(i64::from(b))).collect())
    }

    fn check(term: Term, expected: Option<&[u8]>) {
        assert_eq!(flatten(&term).as_deref(), expected, "{term:?}");
    }

    #[test]
    fn iodata_shapes() {
        check(bin(b"abc"), Some(b"abc"));
        check(Term::List(vec![Term::Int(97), bin(b"bc")]), Some(b"abc"));
        check(
            Term::ImproperList(vec![Term::Int(1)], Box::new(bin(b"\x02"))),
            Some(&[1, 2]),
        );
        check(Term::List(vec![]), Some(b""));
        check(Term::List(vec![Term::Int(256)]), None);
        check(Term::Int(1), None);
        check(
            Term::ImproperList(vec![Term::Int(1)], Box::new(Term::Int(2))),
            None,
        );
    }

    fn bits(whole: &[u8], last: u8, trailing: u8) -> Term {
        let mut bytes = whole.to_vec();
        bytes.push(last << (8 - trailing));
        Term::from_bits(Bytes::from(bytes), whole.len() * 8 + usize::from(trailing))
            .expect("bytes match the bit length")
    }

    /// Bitstrings: never iodata for the iolist BIFs; in port data one of no whole byte is
    /// nothing and any other is `badarg` (OTP 25's port_command, probed in
    /// scenarios/bitstrings.scen).
    #[test]
    fn bitstrings_in_iodata_and_port_data() {
        /// The term, its bytes as iodata, its bytes as port data.
        type Case = (Term, Option<&'static [u8]>, Option<&'static [u8]>);
        let cases: Vec<Case> = vec![
            (bits(&[], 1, 7), None, Some(b"")),
            (bits(&[65], 1, 7), None, None),
            (Term::List(vec![bits(&[1], 2, 3)]), None, None),
            (
                Term::ImproperList(
                    vec![Term::List(vec![bits(&[], 1, 7)]), Term::Int(65), bin(b"B")],
                    Box::new(bits(&[], 3, 2)),
                ),
                None,
                Some(b"AB"),
            ),
            (
                Term::ImproperList(vec![bin(b"ab")], Box::new(bits(&[1], 1, 1))),
                None,
                None,
            ),
        ];
        for (term, iodata, port_data) in cases {
            assert_eq!(flatten(&term).as_deref(), iodata, "iodata {term}");
            assert_eq!(
                flatten_port_data(&term).as_deref(),
                port_data,
                "port data {term}"
            );
            assert_eq!(
                io_vector(&term).map(|v| v.data).as_deref(),
                port_data,
                "vector {term}"
            );
        }
    }

    fn check_vector(term: Term, expected: Option<&[&str]>) {
        let got = io_vector(&term).map(|v| {
            let mut at = 0;
            let pieces: Vec<String> = v
                .segments
                .iter()
                .map(|&n| {
                    at += n;
                    String::from_utf8_lossy(&v.data[at - n..at]).into_owned()
                })
                .collect();
            assert_eq!(at, v.data.len(), "segments cover the data: {term:?}");
            pieces
        });
        let expected = expected.map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "{term:?}");
    }

    /// A reference-counted binary: `c` repeated 65 times (one byte over the heap-binary limit).
    fn long(c: u8) -> Term {
        bin(&[c; 65])
    }

    /// The text of [`long`]`(c)`.
    fn long_text(c: u8) -> String {
        char::from(c).to_string().repeat(65)
    }

    /// `count` reference-counted binaries [`long`]`(b'a')`, [`long`]`(b'b')`, ..., each
    /// followed by `after` (if any).
    fn longs(count: u8, after: Option<Term>) -> Term {
        let mut items = Vec::new();
        for c in (b'a'..).take(usize::from(count)) {
            items.push(long(c));
            items.extend(after.clone());
        }
        Term::List(items)
    }

    /// Each case was checked against BEAM (OTP 25) with `echov_drv`; see
    /// `scenarios/echov_segments.scen` and `scenarios/outputv_heap_subbinaries.scen` for the
    /// ones the corpus replays.
    #[test]
    fn segments_follow_beam() {
        let (a, b, c) = (long_text(b'a'), long_text(b'b'), long_text(b'c'));
        check_vector(bin(b"one"), Some(&["one"]));
        check_vector(long(b'a'), Some(&[&a]));
        check_vector(string("abc"), Some(&["abc"]));
        check_vector(Term::List(vec![]), Some(&[]));
        check_vector(bin(b""), Some(&[]));
        // Binaries of at most 64 bytes are heap binaries: copied into the byte runs.
        check_vector(
            Term::List(vec![string("ab"), bin(b"cd"), string("e"), bin(b"fg")]),
            Some(&["abcdefg"]),
        );
        check_vector(
            Term::List(vec![string("x"), bin(&[b'h'; 64]), string("y")]),
            Some(&[&format!("x{}y", "h".repeat(64))]),
        );
        check_vector(
            Term::List(vec![string("ab"), long(b'a'), string("e"), long(b'b')]),
            Some(&["ab", &a, "e", &b]),
        );
        check_vector(
            Term::List(vec![
                string("ab"),
                string("cd"),
                Term::List(vec![Term::Int(101)]),
            ]),
            Some(&["abcde"]),
        );
        // Empty binaries add nothing and split nothing.
        check_vector(
            Term::List(vec![long(b'a'), bin(b""), long(b'b')]),
            Some(&[&a, &b]),
        );
        check_vector(
            Term::ImproperList(vec![long(b'a')], Box::new(long(b'b'))),
            Some(&[&a, &b]),
        );
        check_vector(
            Term::ImproperList(vec![Term::Int(97)], Box::new(long(b'b'))),
            Some(&["a", &b]),
        );
        check_vector(
            Term::ImproperList(vec![long(b'a'), bin(b"x")], Box::new(long(b'c'))),
            Some(&[&a, "x", &c]),
        );
        // 15 segments stay apart; from 16 on, binaries under 256 bytes are packed.
        let fifteen: Vec<String> = (b'a'..).take(15).map(long_text).collect();
        let fifteen: Vec<&str> = fifteen.iter().map(String::as_str).collect();
        check_vector(longs(15, None), Some(&fifteen));
        let sixteen: String = (b'a'..).take(16).map(long_text).collect();
        check_vector(longs(16, None), Some(&[&sixteen]));
        // A heap binary starts a byte run that counts towards the 16 (an empty one too);
        // `[]` does not.
        let eight: String = (b'a'..).take(8).map(long_text).collect();
        check_vector(longs(8, Some(bin(b""))), Some(&[&eight]));
        check_vector(
            longs(8, Some(bin(b"-"))),
            Some(&[&(b'a'..)
                .take(8)
                .map(|c| long_text(c) + "-")
                .collect::<String>()]),
        );
        let apart: Vec<String> = (b'a'..).take(8).map(long_text).collect();
        let apart: Vec<&str> = apart.iter().map(String::as_str).collect();
        check_vector(longs(8, Some(Term::List(vec![]))), Some(&apart));
        // Packing keeps binaries of 256 bytes or more apart.
        let big = "B".repeat(256);
        let mut items = vec![bin(big.as_bytes())];
        items.extend((b'a'..=b'o').map(long));
        let packed: String = (b'a'..=b'o').map(long_text).collect();
        check_vector(Term::List(items), Some(&[&big, &packed]));
        check_vector(Term::List(vec![Term::Atom(drv_term::Atom::new("x"))]), None);
        check_vector(
            Term::ImproperList(vec![bin(b"a")], Box::new(string("b"))),
            None,
        );
    }
}
