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
    }
}
