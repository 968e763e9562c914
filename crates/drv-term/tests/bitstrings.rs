//! Bitstrings that are not whole bytes: building, printing, the external term format and
//! term order, each pinned to what OTP 25 gives.

use std::cmp::Ordering;

use bytes::Bytes;
use drv_term::{decode, encode, Bitstring, EtfError, FlatTerm, Term};

/// `<<Bytes..., Last:Bits>>` from its whole bytes and the value of its trailing bits.
fn bits(whole: &[u8], last: u8, trailing: u8) -> Term {
    let mut bytes = whole.to_vec();
    bytes.push(last << (8 - trailing));
    Term::from_bits(Bytes::from(bytes), whole.len() * 8 + usize::from(trailing))
        .expect("bytes match the bit length")
}

/// The term prints as `printed`, encodes to `etf` (from a real erl's `term_to_binary/1`),
/// decodes back from it, and its flat form agrees.
fn check(term: Term, printed: &str, etf: &[u8]) {
    assert_eq!(term.to_string(), printed);
    assert_eq!(encode(&term), etf, "{printed}");
    let back = decode(etf).expect("erl's encoding decodes");
    assert_eq!(back, term, "{printed}");
    assert_eq!(back.to_string(), printed);
    let flat = FlatTerm::from_term(&term);
    assert_eq!(flat.to_string(), printed);
    assert_eq!(flat.encode(), etf);
    assert_eq!(flat.to_term(), term);
}

/// Bytes recorded from OTP 25: `erl -noshell -eval 'io:format("~0p ~w~n", [T,
/// term_to_binary(T)]), halt().'` for each `T`.
#[test]
fn prints_and_encodes_as_erl() {
    let cases: Vec<(Term, &str, &[u8])> = vec![
        (
            bits(&[1], 2, 3),
            "<<1,2:3>>",
            &[131, 77, 0, 0, 0, 2, 3, 1, 64],
        ),
        (bits(&[], 5, 3), "<<5:3>>", &[131, 77, 0, 0, 0, 1, 3, 160]),
        (bits(&[], 0, 1), "<<0:1>>", &[131, 77, 0, 0, 0, 1, 1, 0]),
        (bits(&[], 1, 1), "<<1:1>>", &[131, 77, 0, 0, 0, 1, 1, 128]),
        (
            bits(&[255, 255], 127, 7),
            "<<255,255,127:7>>",
            &[131, 77, 0, 0, 0, 3, 7, 255, 255, 254],
        ),
        // Printable bytes stay numbers in a bitstring.
        (
            bits(b"abc", 1, 3),
            "<<97,98,99,1:3>>",
            &[131, 77, 0, 0, 0, 4, 3, 97, 98, 99, 32],
        ),
        (
            Term::List(vec![bits(&[], 1, 2), Term::Tuple(vec![bits(&[], 3, 5)])]),
            "[<<1:2>>,{<<3:5>>}]",
            &[
                131, 108, 0, 0, 0, 2, 77, 0, 0, 0, 1, 2, 64, 104, 1, 77, 0, 0, 0, 1, 5, 24, 106,
            ],
        ),
    ];
    for (term, printed, etf) in cases {
        check(term, printed, etf);
    }
}

/// What `binary_to_term/1` makes of odd `BIT_BINARY_EXT`s (OTP 25): a whole last byte is a
/// binary, unused low bits are dropped (`<<7:3>>` re-encodes with them zero), and a bit
/// count that does not fit the length is `badarg`.
#[test]
fn decodes_odd_bit_binaries_as_erl() {
    let cases: Vec<(&[u8], Result<&str, EtfError>)> = vec![
        (&[131, 77, 0, 0, 0, 1, 3, 255], Ok("<<7:3>>")),
        (&[131, 77, 0, 0, 0, 1, 8, 7], Ok("<<7>>")),
        (&[131, 77, 0, 0, 0, 0, 0], Ok("<<>>")),
        (&[131, 77, 0, 0, 0, 0, 3], Err(EtfError::BadBitstring)),
        (&[131, 77, 0, 0, 0, 1, 0, 1], Err(EtfError::BadBitstring)),
        (&[131, 77, 0, 0, 0, 1, 9, 7], Err(EtfError::BadBitstring)),
        (&[131, 77, 0, 0, 0, 2, 0, 7, 7], Err(EtfError::BadBitstring)),
        (&[131, 77, 0, 0, 0, 2, 3, 7], Err(EtfError::Truncated)),
    ];
    for (etf, expected) in cases {
        let got = decode(etf).map(|t| t.to_string());
        assert_eq!(got.as_deref().map_err(Clone::clone), expected, "{etf:?}");
    }
    let dropped = decode(&[131, 77, 0, 0, 0, 1, 3, 255]).expect("valid");
    assert_eq!(encode(&dropped), [131, 77, 0, 0, 0, 1, 3, 224]);
}

/// Term order among binaries and bitstrings, as OTP 25's `<`/`==` says: bit by bit, a
/// prefix first.
#[test]
fn orders_as_erl() {
    let bin = |b: &[u8]| Term::Binary(Bytes::copy_from_slice(b));
    let cases: Vec<(Term, Term, Ordering)> = vec![
        (bits(&[], 1, 1), bin(&[1]), Ordering::Greater),
        (bin(&[1]), bits(&[1], 0, 1), Ordering::Less),
        (bin(&[]), bits(&[], 0, 1), Ordering::Less),
        (bits(&[], 1, 3), bits(&[], 2, 2), Ordering::Less),
        (bits(&[1], 2, 3), bin(&[1, 2]), Ordering::Greater),
        (bin(&[1, 64]), bits(&[1], 2, 3), Ordering::Greater),
        (bits(&[], 0, 7), bin(&[0]), Ordering::Less),
        (bits(&[9], 5, 3), bits(&[9], 5, 3), Ordering::Equal),
        // Bitstrings sort after every other type but among themselves.
        (Term::List(vec![]), bits(&[], 0, 1), Ordering::Less),
    ];
    for (a, b, expected) in cases {
        assert_eq!(a.cmp(&b), expected, "{a} vs {b}");
        assert_eq!(b.cmp(&a), expected.reverse(), "{b} vs {a}");
    }
}

#[test]
fn constructors_keep_the_invariant() {
    assert_eq!(
        Term::from_bits(Bytes::from_static(&[1, 2]), 16),
        Some(Term::Binary(Bytes::from_static(&[1, 2])))
    );
    assert_eq!(Term::from_bits(Bytes::from_static(&[1, 2]), 8), None);
    assert_eq!(
        Term::from_bits(Bytes::new(), 0),
        Some(Term::Binary(Bytes::new()))
    );
    assert!(Bitstring::new(Bytes::new(), 3).is_none());
    assert!(Bitstring::new(Bytes::from_static(&[1]), 0).is_none());
    assert!(Bitstring::new(Bytes::from_static(&[1]), 8).is_none());
    let b = Bitstring::new(Bytes::from_static(&[1, 0xff]), 3).expect("valid");
    assert_eq!(
        (b.bytes(), b.trailing_bits(), b.bit_len()),
        (&[1, 0xe0][..], 3, 11)
    );
    let t = Term::Bitstring(b);
    assert_eq!(t.bits(), Some((&[1, 0xe0][..], 11)));
    assert_eq!(t.to_string(), "<<1,7:3>>");
}
