//! Erlang iodata: binaries, byte lists and nested lists of them.

use drv_term::Term;

/// The bytes of an iodata term (`None` when it is not iodata: `badarg`).
pub fn flatten(term: &Term) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    push(term, &mut out, 0).then_some(out)
}

fn push(term: &Term, out: &mut Vec<u8>, depth: usize) -> bool {
    if depth > 10_000 {
        return false;
    }
    match term {
        Term::Binary(b) => {
            out.extend_from_slice(b);
            true
        }
        Term::List(items) => items.iter().all(|item| element(item, out, depth)),
        Term::ImproperList(items, tail) => {
            items.iter().all(|item| element(item, out, depth))
                && matches!(**tail, Term::Binary(_))
                && push(tail, out, depth + 1)
        }
        _ => false,
    }
}

fn element(item: &Term, out: &mut Vec<u8>, depth: usize) -> bool {
    match item {
        Term::Int(b) if (0..=255).contains(b) => {
            out.push(*b as u8);
            true
        }
        Term::Binary(_) | Term::List(_) | Term::ImproperList(..) => push(item, out, depth + 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn check(term: Term, expected: Option<&[u8]>) {
        assert_eq!(flatten(&term).as_deref(), expected, "{term:?}");
    }

    #[test]
    fn iodata_shapes() {
        let bin = |b: &'static [u8]| Term::Binary(Bytes::from_static(b));
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
}
