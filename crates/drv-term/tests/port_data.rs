//! `FlatTerm::port_data`: the `{Port, {data, Data}}` message of `driver_output*`, as BEAM 25
//! builds `Data` for binary- and list-mode ports, read back as a `Term` and printed.

use bytes::Bytes;
use drv_term::{Atom, DataPiece, FlatTerm, Port, Term};

fn bin(b: &[u8]) -> Term {
    Term::Binary(Bytes::copy_from_slice(b))
}

fn ints(b: &[u8]) -> Vec<Term> {
    b.iter().map(|&c| Term::Int(i64::from(c))).collect()
}

#[test]
fn port_data_is_beams_message() {
    let big = vec![7u8; 100];
    let shared = Bytes::from(vec![9u8; 200]);
    // (header, pieces, binary mode, expected Data)
    let cases: Vec<(&[u8], Vec<DataPiece<'_>>, bool, Term)> = vec![
        (b"", vec![DataPiece::Borrowed(b"abc")], true, bin(b"abc")),
        (b"", vec![DataPiece::Borrowed(b"")], true, bin(b"")),
        (b"", vec![], true, Term::List(vec![])),
        (b"hd", vec![], true, Term::List(ints(b"hd"))),
        (
            b"hd",
            vec![DataPiece::Borrowed(b"x")],
            true,
            Term::ImproperList(ints(b"hd"), Box::new(bin(b"x"))),
        ),
        (
            b"h",
            vec![
                DataPiece::Borrowed(b"a"),
                DataPiece::Shared(shared.clone()),
                DataPiece::Borrowed(&big),
            ],
            true,
            Term::ImproperList(
                vec![Term::Int(104), bin(b"a"), Term::Binary(shared.clone())],
                Box::new(bin(&big)),
            ),
        ),
        (
            b"",
            (0..10).map(|_| DataPiece::Borrowed(b"z")).collect(),
            true,
            Term::ImproperList((0..9).map(|_| bin(b"z")).collect(), Box::new(bin(b"z"))),
        ),
        // driver_outputv's three 64-byte pieces, a small shared one among them.
        (
            b"",
            vec![
                DataPiece::Borrowed(&[1; 64]),
                DataPiece::Shared(Bytes::from(vec![2u8; 64])),
                DataPiece::Borrowed(&[3; 64]),
            ],
            true,
            Term::ImproperList(vec![bin(&[1; 64]), bin(&[2; 64])], Box::new(bin(&[3; 64]))),
        ),
        (
            b"head",
            vec![DataPiece::Borrowed(b"a"), DataPiece::Borrowed(b"")],
            true,
            Term::ImproperList(
                [ints(b"head"), vec![bin(b"a")]].concat(),
                Box::new(bin(b"")),
            ),
        ),
        (b"", vec![], false, Term::List(vec![])),
        (
            b"",
            vec![DataPiece::Borrowed(b"")],
            false,
            Term::List(vec![]),
        ),
        (
            b"h",
            vec![
                DataPiece::Borrowed(b"ab"),
                DataPiece::Shared(shared.clone()),
            ],
            false,
            Term::List(
                [&b"hab"[..], &shared]
                    .concat()
                    .iter()
                    .map(|&c| Term::Int(i64::from(c)))
                    .collect(),
            ),
        ),
    ];
    let port = Port::local(7);
    let data = Atom::new("data");
    for (header, pieces, binary, expected) in cases {
        let message = FlatTerm::port_data(port, data, header, &pieces, binary);
        let expected = Term::Tuple(vec![
            Term::Port(port),
            Term::Tuple(vec![Term::Atom(data), expected]),
        ]);
        assert_eq!(
            message.to_term(),
            expected,
            "{header:?} {pieces:?} {binary}"
        );
        assert_eq!(message.to_string(), expected.to_string());
        assert_eq!(message.encode(), drv_term::encode(&expected));
        assert_eq!(message.clone().into_term(), expected);
        // Read in place, as a receiver matches it.
        let mut outer = message.root().tuple().expect("{Port, {data, Data}}");
        assert_eq!(outer.next().and_then(|p| p.port()), Some(port));
        let mut inner = outer.next().and_then(|i| i.tuple()).expect("{data, Data}");
        assert!(inner.next().is_some_and(|t| t.is_atom("data")));
        assert_eq!(inner.next().map(|d| d.to_term()), expected_data(&expected));
        check_readers(message.root());
    }
}

/// Every term in `term`, at any depth: the readers that take a shortcut for some forms
/// (`binary`, `tuple`, `list`, `port`, `atom`) say what `node` says.
fn check_readers(term: drv_term::FlatRef<'_>) {
    use drv_term::{Node, TermRef};
    let (binary, tuple, list, port, atom) = match term.node() {
        Node::Binary(b) => (Some(b.to_vec()), None, None, None, None),
        Node::Tuple { items, .. } => (
            None,
            Some(items.map(|i| i.to_term()).collect()),
            None,
            None,
            None,
        ),
        Node::List {
            items, tail: None, ..
        } => (
            None,
            None,
            Some(items.map(|i| i.to_term()).collect()),
            None,
            None,
        ),
        Node::Port(p) => (None, None, None, Some(p), None),
        Node::Atom(a) => (None, None, None, None, Some(a)),
        _ => (None, None, None, None, None),
    };
    assert_eq!(
        term.binary().map(<[u8]>::to_vec),
        binary,
        "binary() of {term}"
    );
    let terms = |items: drv_term::FlatItems<'_>| items.map(|i| i.to_term()).collect::<Vec<_>>();
    assert_eq!(term.tuple().map(terms), tuple, "tuple() of {term}");
    assert_eq!(term.list().map(terms), list, "list() of {term}");
    assert_eq!(term.port(), port, "port() of {term}");
    assert_eq!(term.atom(), atom, "atom() of {term}");
    match term.node() {
        Node::Tuple { items, .. } => items.for_each(check_readers),
        Node::List { items, tail, .. } => {
            items.for_each(check_readers);
            tail.into_iter().for_each(check_readers);
        }
        _ => {}
    }
}

fn expected_data(message: &Term) -> Option<Term> {
    let Term::Tuple(outer) = message else {
        return None;
    };
    let Term::Tuple(inner) = &outer[1] else {
        return None;
    };
    Some(inner[1].clone())
}

/// A binary-mode message whose pieces are all copied takes the compact form: the port, the
/// tag, the lengths and the bytes (what a queued `driver_output` costs in memory, issue 16).
/// A piece kept by reference or a list-mode port take records.
#[test]
fn copied_binary_data_takes_the_compact_form() {
    let shared = Bytes::from(vec![9u8; 200]);
    let data = Atom::new("data");
    // (header, pieces, binary mode, expected buffer bytes)
    let cases: Vec<(&[u8], Vec<DataPiece<'_>>, bool, usize)> = vec![
        (b"", vec![DataPiece::Borrowed(&[1; 64])], true, 24 + 1 + 64),
        (
            b"",
            (0..3).map(|_| DataPiece::Borrowed(&[1; 64])).collect(),
            true,
            24 + 3 + 3 * 64,
        ),
        (b"hd", vec![], true, 24 + 2),
        (b"hd", vec![DataPiece::Borrowed(b"x")], true, 24 + 1 + 2 + 1),
        // Records: the root's offset 4, a NIL 1, a STRING 5 + 64 + 4, the atom 5,
        // `{data, _}` 5 + 8, a PORT 9, `{Port, _}` 5 + 8.
        (
            b"",
            vec![DataPiece::Borrowed(&[1; 64])],
            false,
            4 + 1 + 5 + 64 + 4 + 5 + 13 + 9 + 13,
        ),
        // The root's offset 4, a kept TERM 5, the atom 5, the tuples and the port.
        (
            b"",
            vec![DataPiece::Shared(shared.clone())],
            true,
            4 + 5 + 5 + 13 + 9 + 13,
        ),
    ];
    let port = Port::local(7);
    for (header, pieces, binary, expected) in cases {
        let message = FlatTerm::port_data(port, data, header, &pieces, binary);
        assert_eq!(
            message.buffer_len(),
            expected,
            "{header:?} {pieces:?} {binary}"
        );
    }
}

/// Every list and tuple in `term`, at any depth: `nth(k)` gives what `k` calls of `next`
/// then one more would, and leaves the same elements after it.
fn check_nth(term: drv_term::FlatRef<'_>) {
    let Some(items) = term.tuple().or_else(|| term.list()) else {
        return;
    };
    let terms = |items: drv_term::FlatItems<'_>| items.map(|i| i.to_term()).collect::<Vec<_>>();
    for k in 0..=items.len() + 1 {
        let (mut skipped, mut stepped) = (items.clone(), items.clone());
        let got = skipped.nth(k).map(|i| i.to_term());
        for _ in 0..k {
            stepped.next();
        }
        let expected = stepped.next().map(|i| i.to_term());
        assert_eq!(got, expected, "element {k} of {term}");
        assert_eq!(
            terms(skipped),
            terms(stepped),
            "after element {k} of {term}"
        );
    }
    items.for_each(check_nth);
}

#[test]
fn elements_are_skipped_to_as_stepped_to() {
    let port = Port::local(5);
    let tag = Atom::new("data");
    let pieces = [DataPiece::Borrowed(b"ab"), DataPiece::Borrowed(b"c")];
    let messages = [
        FlatTerm::port_data(port, tag, b"", &pieces[..1], true),
        FlatTerm::port_data(port, tag, b"hdr", &pieces, true),
        FlatTerm::port_data(port, tag, b"hdr", &pieces, false),
        FlatTerm::from_term(&Term::Tuple(vec![
            Term::Int(1),
            Term::string_latin1(b"xyz"),
            Term::List(vec![
                Term::Int(2),
                Term::Tuple(vec![Term::List(vec![]), bin(b"q")]),
            ]),
            Term::ImproperList(vec![Term::Int(3), Term::Int(4)], Box::new(Term::Int(5))),
        ])),
    ];
    for message in &messages {
        check_nth(message.root());
    }
}
