//! ETF decoding of old and odd encodings, rejections, and the round-trip property.

use bytes::Bytes;
use drv_term::{
    decode, decode_prefix, decode_safe, encode, Atom, EtfError, FlatTerm, Pid, Port, Ref, Term,
};
use proptest::prelude::*;

fn check(bytes: &[u8], expected: Result<&str, EtfError>) {
    let got = decode(bytes).map(|t| t.to_string());
    assert_eq!(
        got.as_deref().map_err(Clone::clone),
        expected,
        "bytes {bytes:?}"
    );
}

fn with_node(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![131, tag];
    if tag == 90 || tag == 114 {
        v.extend_from_slice(&rest[..2]);
        v.extend_from_slice(&[100, 0, 13]);
        v.extend_from_slice(b"nonode@nohost");
        v.extend_from_slice(&rest[2..]);
    } else {
        v.extend_from_slice(&[100, 0, 13]);
        v.extend_from_slice(b"nonode@nohost");
        v.extend_from_slice(rest);
    }
    v
}

#[test]
fn accepts_what_binary_to_term_accepts() {
    let mut float_ext = vec![131, 99];
    float_ext.extend_from_slice(format!("{:<31}", "1.50000000000000000000e+00").as_bytes());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with_node(103, &[0, 0, 0, 5, 0, 0, 0, 0, 0]), "<0.5.0>"),
        (
            with_node(88, &[0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0]),
            "<0.5.1>",
        ),
        (with_node(102, &[0, 0, 0, 7, 0]), "#Port<0.7>"),
        (
            with_node(120, &[0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0]),
            "#Port<0.4294967303>",
        ),
        (with_node(101, &[0, 0, 0, 9, 0]), "#Ref<0.9>"),
        (
            with_node(114, &[0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 2]),
            "#Ref<0.2.1>",
        ),
        (vec![131, 115, 2, b'o', b'k'], "ok"),
        (vec![131, 100, 0, 1, 233], "é"),
        (vec![131, 118, 0, 2, 0xC3, 0xA9], "é"),
        (float_ext, "1.5"),
        (vec![131, 110, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0], "1"),
        (
            vec![131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0x80],
            "-9223372036854775808",
        ),
        (
            vec![131, 111, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            "18446744073709551616",
        ),
        (vec![131, 108, 0, 0, 0, 0, 97, 5], "5"),
        (vec![131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2], "[1,2]"),
        (vec![131, 77, 0, 0, 0, 1, 8, 65], r#"<<"A">>"#),
        (vec![131, 97, 1, 0, 0], "1"),
    ];
    for (bytes, expected) in &cases {
        check(bytes, Ok(expected));
    }
    assert_eq!(decode_prefix(&[131, 97, 1, 0, 0]).map(|(_, n)| n), Ok(3));
}

/// The same bytes read as Latin-1 and as UTF-8 name different atoms, whichever a thread
/// decoded before (decoding remembers recent atoms by their bytes).
#[test]
fn an_atom_is_read_by_its_tag_whatever_came_before() {
    let cases: [(&[u8], &str); 6] = [
        (&[131, 118, 0, 2, 0xC3, 0xA9], "é"),
        (&[131, 100, 0, 2, 0xC3, 0xA9], "'Ã©'"),
        (&[131, 119, 2, 0xC3, 0xA9], "é"),
        (&[131, 115, 2, 0xC3, 0xA9], "'Ã©'"),
        (&[131, 100, 0, 2, b'o', b'k'], "ok"),
        (&[131, 119, 2, b'o', b'k'], "ok"),
    ];
    for _ in 0..2 {
        for (bytes, expected) in cases {
            check(bytes, Ok(expected));
        }
    }
}

#[test]
fn rejects_bad_input() {
    use EtfError::*;
    let mut long_atom = vec![131, 100, 1, 0];
    long_atom.extend(std::iter::repeat_n(b'a', 256));
    let mut deep = vec![131];
    deep.extend(std::iter::repeat_n([104, 1], drv_term::MAX_NESTING + 1).flatten());
    deep.push(106);
    let cases: Vec<(Vec<u8>, EtfError)> = vec![
        (vec![], Truncated),
        (vec![130, 97, 1], BadVersion),
        (vec![131], Truncated),
        (vec![131, 1], UnknownTag(1)),
        (vec![131, 70, 127, 240, 0, 0, 0, 0, 0, 0], BadFloat),
        (vec![131, 70, 127, 248, 0, 0, 0, 0, 0, 0], BadFloat),
        (vec![131, 99, b'x'], Truncated),
        (
            vec![131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2],
            DuplicateMapKey,
        ),
        (long_atom, BadAtom),
        (vec![131, 119, 2, 0xFF, 0xFE], BadAtom),
        (vec![131, 108, 255, 255, 255, 255, 106], Truncated),
        (vec![131, 116, 255, 255, 255, 255], Truncated),
        (vec![131, 105, 255, 255, 255, 255], Truncated),
        (vec![131, 109, 255, 255, 255, 255, 1], Truncated),
        (vec![131, 111, 255, 255, 255, 255, 0], Truncated),
        (deep, TooDeep),
        (vec![131, 113, 100, 0, 1, b'm'], Unsupported(113)),
        (vec![131, 80, 0, 0, 0, 1, 120, 156], Unsupported(80)),
        (vec![131, 77, 0, 0, 0, 1, 0, 1], BadBitstring),
        (
            vec![131, 88, 97, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            BadIdentifier,
        ),
        (with_node(90, &[0, 0, 0, 0, 0, 0]), BadIdentifier),
        (with_node(90, &[0, 6, 0, 0, 0, 0]), BadIdentifier),
        (vec![131, 104, 2, 97, 1], Truncated),
    ];
    for (bytes, expected) in cases {
        check(&bytes, Err(expected));
    }
}

fn leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        any::<i64>().prop_map(Term::Int),
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(neg, mag)| Term::int_from_le_bytes(neg, &mag)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Term::Float),
        "[a-zA-Z0-9_@ é\u{3A9}]{0,12}".prop_map(|s| Term::Atom(Atom::new(&s))),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| Term::Binary(Bytes::from(b))),
        (proptest::collection::vec(any::<u8>(), 1..20), 1u8..=7).prop_map(|(b, k)| {
            Term::Bitstring(drv_term::Bitstring::new(Bytes::from(b), k).expect("1..=7 bits"))
        }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(id, serial, creation)| Term::Pid(
            Pid {
                id,
                serial,
                creation,
                ..Pid::local(0)
            }
        )),
        (any::<u64>(), any::<u32>()).prop_map(|(id, c)| Term::Port(Port {
            creation: c,
            ..Port::local(id)
        })),
        (any::<u32>(), proptest::collection::vec(any::<u32>(), 1..=5))
            .prop_map(|(c, w)| Term::Ref(Ref::new(Atom::new("n@h"), c, &w).expect("1..=5 words"))),
        proptest::collection::vec(0u8.., 0..10).prop_map(|s| Term::string_latin1(&s)),
    ]
}

fn term() -> impl Strategy<Value = Term> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Term::List),
            (
                proptest::collection::vec(inner.clone(), 0..5),
                inner.clone()
            )
                .prop_map(|(heads, tail)| Term::cons(heads, tail)),
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Term::Tuple),
            proptest::collection::vec((inner.clone(), inner), 0..40).prop_map(|mut pairs| {
                pairs.sort_by(|a, b| a.0.cmp_map_key(&b.0));
                pairs.dedup_by(|a, b| a.0.cmp_map_key(&b.0).is_eq());
                Term::map(pairs).expect("keys were deduplicated")
            }),
        ]
    })
}

proptest! {
    #[test]
    fn decode_inverts_encode(t in term()) {
        let bytes = encode(&t);
        let back = decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(encode(&back), bytes);
        prop_assert_eq!(back.to_string(), t.to_string());
    }

    /// A term's flat form prints, encodes and compares as the term does, and converts back.
    #[test]
    fn flat_form_agrees_with_term(t in term()) {
        let flat = FlatTerm::from_term(&t);
        prop_assert_eq!(&drv_term::fuzz::check_flat(&flat), &t);
        prop_assert_eq!(flat.to_string(), t.to_string());
        prop_assert_eq!(flat.encode(), encode(&t));
    }

    #[test]
    fn order_is_antisymmetric_and_consistent_with_eq(a in term(), b in term()) {
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a == b, a.cmp(&b).is_eq());
    }
}

#[test]
fn deepest_allowed_term_survives_every_operation() {
    // Built on the test harness's default 2 MiB thread stack, in debug mode.
    let mut t = Term::List(vec![]);
    for _ in 0..drv_term::MAX_NESTING - 1 {
        t = Term::Tuple(vec![t]);
    }
    assert_eq!(t.nesting_depth(), drv_term::MAX_NESTING);
    let bytes = encode(&t);
    let back = decode(&bytes).expect("within the nesting limit");
    assert_eq!(back, t);
    assert_eq!(back.to_string().len(), t.to_string().len());
    let flat = FlatTerm::from_term(&t);
    assert_eq!(flat.encode(), bytes);
    assert_eq!(flat.to_term(), t);
    assert_eq!(flat.to_string().len(), t.to_string().len());
    let deeper = Term::Tuple(vec![t]);
    assert_eq!(decode(&encode(&deeper)), Err(EtfError::TooDeep));
}

/// `decode_safe` (`binary_to_term(B, [safe])`): the atoms already in the table decode as with
/// `decode`; a new one, in any atom encoding or as an identifier's node, fails with `NewAtom`
/// and stays out of the table.
#[test]
fn safe_decode_makes_no_new_atoms() {
    let known = Term::Tuple(vec![
        Term::Atom(Atom::new("ok")),
        Term::Atom(Atom::new("caf\u{e9}")),
        Term::Pid(Pid::local(5)),
    ]);
    assert_eq!(decode_safe(&encode(&known)), Ok(known));

    let small_utf8 = |name: &str| [&[119, name.len() as u8][..], name.as_bytes()].concat();
    let latin1 = |name: &str| [&[100, 0, name.len() as u8][..], name.as_bytes()].concat();
    // (what the new atom is inside, the term's bytes after the version byte, the new atom)
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "alone, SMALL_ATOM_UTF8",
            small_utf8("safe_decode_new_1"),
            "safe_decode_new_1",
        ),
        (
            "alone, ATOM_EXT",
            latin1("safe_decode_new_2"),
            "safe_decode_new_2",
        ),
        (
            "a tuple's second element",
            [
                &[104, 2][..],
                &small_utf8("ok"),
                &small_utf8("safe_decode_new_3"),
            ]
            .concat(),
            "safe_decode_new_3",
        ),
        (
            "a pid's node",
            [&[88][..], &small_utf8("safe_decode_new_4@host"), &[0; 12]].concat(),
            "safe_decode_new_4@host",
        ),
    ];
    for (inside, body, name) in cases {
        let bytes = [&[131][..], &body].concat();
        assert_eq!(decode_safe(&bytes), Err(EtfError::NewAtom), "{inside}");
        assert_eq!(Atom::existing(name), None, "{inside}: not added");
        // The trusting decode makes it; then the safe one accepts it too.
        let term = decode(&bytes).expect("a valid term");
        assert!(Atom::existing(name).is_some(), "{inside}: added by decode");
        assert_eq!(decode_safe(&bytes), Ok(term), "{inside}");
    }
}
