//! Erlang iodata: binaries, byte lists and nested lists of them.
//!
//! Two views: [`flatten`] (what a driver's `output` callback gets) and [`io_vector`] (the
//! segments a driver's `outputv` callback gets, laid out the way BEAM lays them out).

use bytes::Bytes;
use drv_term::Term;

/// The bytes of an iodata term (`None` when it is not iodata: `badarg`).
pub fn flatten(term: &Term) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    walk(term, 0, &mut |piece| match piece {
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

/// The segments BEAM hands a driver's `outputv` for `port_command(Port, Term)` (its
/// `io_list_vec_len` and `io_list_to_vec`): every reference-counted binary is a segment of its
/// own, and the bytes between them (list integers and heap binaries) form one segment per run.
/// When that makes 16 segments or more, binaries under 256 bytes are copied into the runs too.
///
/// ddll's binaries are all reference-counted (`Bytes`), like the binaries a scenario or any
/// Erlang code builds with `<<...>>`; only the empty binary is a heap binary here (BEAM's
/// binaries of at most 64 bytes made by some BIFs, e.g. `term_to_binary/1`, are heap binaries
/// and join the runs: ddll cannot tell them apart). `None` when the term is not iodata.
pub fn io_vector(term: &Term) -> Option<IoVector> {
    /// A maximal stretch of the term: a run of bytes, or one reference-counted binary.
    struct Run {
        len: usize,
        binary: bool,
    }
    let mut data = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    let ok = walk(term, 0, &mut |piece| {
        let (bytes, binary): (&[u8], bool) = match piece {
            Piece::Byte(ref b) => (std::slice::from_ref(b), false),
            // An empty binary is a heap binary: it starts a run (BEAM counts that run when it
            // decides to pack) but adds no byte.
            Piece::Binary(b) => (b, !b.is_empty()),
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
fn walk<'a>(term: &'a Term, depth: usize, visit: &mut impl FnMut(Piece<'a>)) -> bool {
    if depth > 10_000 {
        return false;
    }
    match term {
        Term::Binary(b) => {
            visit(Piece::Binary(b));
            true
        }
        Term::List(items) => items.iter().all(|item| element(item, depth, visit)),
        Term::ImproperList(items, tail) => {
            items.iter().all(|item| element(item, depth, visit))
                && matches!(**tail, Term::Binary(_))
                && walk(tail, depth + 1, visit)
        }
        _ => false,
    }
}

fn element<'a>(item: &'a Term, depth: usize, visit: &mut impl FnMut(Piece<'a>)) -> bool {
    match item {
        Term::Int(b) if (0..=255).contains(b) => {
            visit(Piece::Byte(*b as u8));
            true
        }
        Term::Binary(_) | Term::List(_) | Term::ImproperList(..) => walk(item, depth + 1, visit),
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

    /// One-byte binaries `a`, `b`, ... (`count` of them), each followed by `after` (if any).
    fn binaries(count: u8, after: Option<Term>) -> Term {
        let mut items = Vec::new();
        for b in (b'a'..).take(usize::from(count)) {
            items.push(bin(&[b]));
            items.extend(after.clone());
        }
        Term::List(items)
    }

    /// Each case was checked against BEAM (OTP 25) with `echov_drv`; see
    /// `scenarios/echov_segments.scen` for the ones the corpus replays.
    #[test]
    fn segments_follow_beam() {
        check_vector(bin(b"one"), Some(&["one"]));
        check_vector(string("abc"), Some(&["abc"]));
        check_vector(Term::List(vec![]), Some(&[]));
        check_vector(bin(b""), Some(&[]));
        check_vector(
            Term::List(vec![string("ab"), bin(b"cd"), string("e"), bin(b"fg")]),
            Some(&["ab", "cd", "e", "fg"]),
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
            Term::List(vec![bin(b"a"), bin(b""), bin(b"b")]),
            Some(&["a", "b"]),
        );
        check_vector(
            Term::ImproperList(vec![bin(b"a")], Box::new(bin(b"b"))),
            Some(&["a", "b"]),
        );
        check_vector(
            Term::ImproperList(vec![Term::Int(97)], Box::new(bin(b"b"))),
            Some(&["a", "b"]),
        );
        // 15 segments stay apart; from 16 on, binaries under 256 bytes are packed.
        check_vector(
            binaries(15, None),
            Some(&[
                "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
            ]),
        );
        check_vector(binaries(16, None), Some(&["abcdefghijklmnop"]));
        // An empty binary starts a byte run that counts towards the 16; `[]` does not.
        check_vector(binaries(8, Some(bin(b""))), Some(&["abcdefgh"]));
        check_vector(
            binaries(8, Some(Term::List(vec![]))),
            Some(&["a", "b", "c", "d", "e", "f", "g", "h"]),
        );
        // Packing keeps binaries of 256 bytes or more apart.
        let big = "B".repeat(256);
        let mut items = vec![bin(big.as_bytes())];
        items.extend((b'a'..=b'o').map(|b| bin(&[b])));
        check_vector(Term::List(items), Some(&[&big, "abcdefghijklmno"]));
        check_vector(Term::List(vec![Term::Atom(drv_term::Atom::new("x"))]), None);
        check_vector(
            Term::ImproperList(vec![bin(b"a")], Box::new(string("b"))),
            None,
        );
    }
}
