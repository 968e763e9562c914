//! The spec interpreter: every example of the erl_driver documentation, every
//! tag, and every rejection the runtime makes.

use std::collections::HashMap;

use bytes::Bytes;
use drv_term::tags::*;
use drv_term::{build_term, encode, Atom, Pid, Port, SpecEnv, SpecError, Term, TermData};

/// Fake memory: addresses map to byte buffers, binaries, doubles and 64-bit ints.
#[derive(Default)]
struct Env {
    mem: HashMap<TermData, Vec<u8>>,
    bins: HashMap<TermData, Bytes>,
    floats: HashMap<TermData, f64>,
    ints: HashMap<TermData, i64>,
}

impl SpecEnv for Env {
    fn bytes(&self, ptr: TermData, len: usize) -> Option<Bytes> {
        let m = self.mem.get(&ptr)?;
        (len <= m.len()).then(|| Bytes::copy_from_slice(&m[..len]))
    }
    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<Bytes> {
        let b = self.bins.get(&bin)?;
        (offset.checked_add(len)? <= b.len()).then(|| b.slice(offset..offset + len))
    }
    fn float(&self, ptr: TermData) -> Option<f64> {
        self.floats.get(&ptr).copied()
    }
    fn int64(&self, ptr: TermData) -> Option<i64> {
        self.ints.get(&ptr).copied()
    }
    fn uint64(&self, ptr: TermData) -> Option<u64> {
        self.ints.get(&ptr).map(|&v| v as u64)
    }
}

const ABC: TermData = 0x1000;
const S123: TermData = 0x2000;
const EXT: TermData = 0x3000;
const BADEXT: TermData = 0x3100;
/// `#{k => 1, k => 2}` in the external format (18 bytes).
const EXT_DUP: TermData = 0x3200;
const BIN: TermData = 0x4000;
const F_HALF: TermData = 0x5000;
const F_NAN: TermData = 0x5100;
const F_INF: TermData = 0x5200;
const I_MIN: TermData = 0x6000;
const I_MINUS1: TermData = 0x6100;

fn env() -> Env {
    let mut e = Env::default();
    e.mem.insert(ABC, b"abc".to_vec());
    e.mem.insert(S123, b"123".to_vec());
    e.mem.insert(
        EXT,
        encode(&Term::Tuple(vec![
            Term::atom("ok"),
            Term::string_latin1(&[1, 2]),
        ])),
    );
    e.mem.insert(BADEXT, vec![131, 255, 0]);
    e.mem.insert(
        EXT_DUP,
        vec![
            131, 116, 0, 0, 0, 2, 100, 0, 1, b'k', 97, 1, 100, 0, 1, b'k', 97, 2,
        ],
    );
    e.bins.insert(BIN, Bytes::from(vec![7u8; 50]));
    e.floats.insert(F_HALF, 0.5);
    e.floats.insert(F_NAN, f64::NAN);
    e.floats.insert(F_INF, f64::INFINITY);
    e.ints.insert(I_MIN, i64::MIN);
    e.ints.insert(I_MINUS1, -1);
    e
}

fn atom(name: &str) -> TermData {
    Atom::new(name).to_term_data()
}
fn port(n: u64) -> TermData {
    Port::local(n).to_local_term_data().expect("small port")
}
fn pid(n: u64) -> TermData {
    Pid::local(n).to_local_term_data().expect("small pid")
}
/// A negative C int as the spec word carries it.
fn neg(v: i64) -> TermData {
    v as TermData
}

fn check(spec: &[TermData], expected: Result<&str, SpecError>) {
    let got = build_term(spec, &env()).map(|t| t.to_string());
    assert_eq!(
        got.as_deref().map_err(Clone::clone),
        expected,
        "spec {spec:?}"
    );
}

#[test]
fn documented_examples_and_every_tag() {
    let bin50 = format!("<<{}>>", vec!["7"; 50].join(","));
    let tcp = format!("{{tcp,#Port<0.3>,[100|{bin50}]}}");
    let cases: Vec<(Vec<TermData>, String)> = vec![
        (
            vec![
                ERL_DRV_ATOM,
                atom("tcp"),
                ERL_DRV_PORT,
                port(3),
                ERL_DRV_INT,
                100,
                ERL_DRV_BINARY,
                BIN,
                50,
                0,
                ERL_DRV_LIST,
                2,
                ERL_DRV_TUPLE,
                3,
            ],
            tcp,
        ),
        (
            vec![
                ERL_DRV_ATOM,
                atom("x"),
                ERL_DRV_STRING,
                ABC,
                3,
                ERL_DRV_ATOM,
                atom("y"),
                ERL_DRV_NIL,
                ERL_DRV_LIST,
                4,
            ],
            r#"[x,"abc",y]"#.into(),
        ),
        (
            vec![
                ERL_DRV_NIL,
                ERL_DRV_STRING_CONS,
                S123,
                3,
                ERL_DRV_STRING_CONS,
                ABC,
                3,
            ],
            r#""abc123""#.into(),
        ),
        (
            vec![ERL_DRV_INT, 5, ERL_DRV_STRING_CONS, ABC, 2],
            "[97,98|5]".into(),
        ),
        (vec![ERL_DRV_NIL, ERL_DRV_STRING_CONS, ABC, 0], "[]".into()),
        (vec![ERL_DRV_STRING, ABC, 0], "[]".into()),
        (vec![ERL_DRV_INT, neg(-5)], "-5".into()),
        (vec![ERL_DRV_UINT, TermData::MAX], TermData::MAX.to_string()),
        (vec![ERL_DRV_INT64, I_MIN], i64::MIN.to_string()),
        (vec![ERL_DRV_UINT64, I_MINUS1], u64::MAX.to_string()),
        (vec![ERL_DRV_FLOAT, F_HALF], "0.5".into()),
        (vec![ERL_DRV_BUF2BINARY, ABC, 3], r#"<<"abc">>"#.into()),
        (vec![ERL_DRV_BUF2BINARY, 0, 0], "<<>>".into()),
        (vec![ERL_DRV_BINARY, BIN, 2, 48], "<<7,7>>".into()),
        (vec![ERL_DRV_PID, pid(5)], "<0.5.0>".into()),
        (vec![ERL_DRV_EXT2TERM, EXT, 13], "{ok,[1,2]}".into()),
        (
            vec![
                ERL_DRV_ATOM,
                atom("b"),
                ERL_DRV_INT,
                2,
                ERL_DRV_ATOM,
                atom("a"),
                ERL_DRV_INT,
                1,
                ERL_DRV_MAP,
                2,
            ],
            "#{a => 1,b => 2}".into(),
        ),
        (vec![ERL_DRV_MAP, 0], "#{}".into()),
        (vec![ERL_DRV_TUPLE, 0], "{}".into()),
        (vec![ERL_DRV_INT, 7, ERL_DRV_LIST, 1], "7".into()),
        (
            vec![
                ERL_DRV_STRING,
                ABC,
                2,
                ERL_DRV_STRING,
                ABC,
                1,
                ERL_DRV_NIL,
                ERL_DRV_LIST,
                3,
            ],
            r#"["ab","a"]"#.into(),
        ),
        (
            vec![
                ERL_DRV_INT,
                1,
                ERL_DRV_INT,
                2,
                ERL_DRV_INT,
                3,
                ERL_DRV_NIL,
                ERL_DRV_LIST,
                2,
                ERL_DRV_LIST,
                3,
            ],
            "[1,2,3]".into(),
        ),
    ];
    for (spec, expected) in &cases {
        check(spec, Ok(expected));
    }
}

#[test]
fn rejections() {
    use SpecError::*;
    let nested_too_deep: Vec<TermData> = std::iter::once([ERL_DRV_NIL, ERL_DRV_NIL])
        .chain(std::iter::repeat_n(
            [ERL_DRV_TUPLE, 1],
            drv_term::MAX_NESTING,
        ))
        .flatten()
        .skip(1)
        .collect();
    let cases: Vec<(Vec<TermData>, SpecError)> = vec![
        (vec![], NotOneTerm { terms: 0 }),
        (vec![0], UnknownTag { at: 0, tag: 0 }),
        (vec![ERL_DRV_NIL, 18], UnknownTag { at: 1, tag: 18 }),
        (
            vec![ERL_DRV_INT],
            MissingArguments {
                at: 0,
                tag: ERL_DRV_INT,
            },
        ),
        (
            vec![ERL_DRV_BINARY, BIN, 2],
            MissingArguments {
                at: 0,
                tag: ERL_DRV_BINARY,
            },
        ),
        (vec![ERL_DRV_ATOM, 12345], BadAtom { at: 0 }),
        (vec![ERL_DRV_ATOM, port(1)], BadAtom { at: 0 }),
        (vec![ERL_DRV_PORT, pid(1)], BadPort { at: 0 }),
        (vec![ERL_DRV_PID, atom("x")], BadPid { at: 0 }),
        (vec![ERL_DRV_BINARY, BIN, 50, 1], BadBinary { at: 0 }),
        (vec![ERL_DRV_BINARY, 0, 0, 0], BadBinary { at: 0 }),
        (vec![ERL_DRV_STRING, 0, 3], BadBuffer { at: 0 }),
        (vec![ERL_DRV_STRING, ABC, neg(-1)], BadBuffer { at: 0 }),
        (vec![ERL_DRV_STRING, ABC, 4], BadBuffer { at: 0 }),
        (
            vec![ERL_DRV_STRING_CONS, ABC, 3],
            StackUnderflow {
                at: 0,
                tag: ERL_DRV_STRING_CONS,
            },
        ),
        (
            vec![ERL_DRV_NIL, ERL_DRV_STRING_CONS, 0, 3],
            BadBuffer { at: 1 },
        ),
        (vec![ERL_DRV_NIL, ERL_DRV_LIST, 0], BadCount { at: 1 }),
        (vec![ERL_DRV_NIL, ERL_DRV_LIST, neg(-1)], BadCount { at: 1 }),
        (
            vec![ERL_DRV_NIL, ERL_DRV_NIL, ERL_DRV_LIST, 3],
            StackUnderflow {
                at: 2,
                tag: ERL_DRV_LIST,
            },
        ),
        (
            vec![ERL_DRV_NIL, ERL_DRV_TUPLE, 2],
            StackUnderflow {
                at: 1,
                tag: ERL_DRV_TUPLE,
            },
        ),
        (
            vec![ERL_DRV_NIL, ERL_DRV_TUPLE, neg(-1)],
            BadCount { at: 1 },
        ),
        (
            vec![ERL_DRV_NIL, ERL_DRV_MAP, 1],
            StackUnderflow {
                at: 1,
                tag: ERL_DRV_MAP,
            },
        ),
        (vec![ERL_DRV_NIL, ERL_DRV_MAP, neg(-2)], BadCount { at: 1 }),
        (
            vec![
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_MAP,
                2,
            ],
            DuplicateMapKey { at: 6 },
        ),
        // Duplicate keys are found while building, after the first pass: any other error of
        // the spec, even a later one, and a final depth other than 1 take precedence.
        (
            vec![
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_MAP,
                2,
                ERL_DRV_ATOM,
                5,
            ],
            BadAtom { at: 8 },
        ),
        (
            vec![
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_MAP,
                2,
                ERL_DRV_NIL,
            ],
            NotOneTerm { terms: 2 },
        ),
        (
            vec![
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_INT,
                1,
                ERL_DRV_NIL,
                ERL_DRV_MAP,
                2,
                ERL_DRV_EXT2TERM,
                EXT_DUP,
                18,
                ERL_DRV_TUPLE,
                2,
            ],
            DuplicateMapKey { at: 6 },
        ),
        (
            vec![ERL_DRV_EXT2TERM, EXT_DUP, 18],
            BadExternalTerm {
                at: 0,
                error: drv_term::EtfError::DuplicateMapKey,
            },
        ),
        (vec![ERL_DRV_EXT2TERM, EXT, 0], BadBuffer { at: 0 }),
        (vec![ERL_DRV_EXT2TERM, 0, 5], BadBuffer { at: 0 }),
        (
            vec![ERL_DRV_EXT2TERM, BADEXT, 3],
            BadExternalTerm {
                at: 0,
                error: drv_term::EtfError::UnknownTag(255),
            },
        ),
        (
            vec![ERL_DRV_EXT2TERM, EXT, 12],
            BadExternalTerm {
                at: 0,
                error: drv_term::EtfError::Truncated,
            },
        ),
        (vec![ERL_DRV_FLOAT, F_NAN], NonFiniteFloat { at: 0 }),
        (vec![ERL_DRV_FLOAT, F_INF], NonFiniteFloat { at: 0 }),
        (vec![ERL_DRV_FLOAT, 0x9999], BadBuffer { at: 0 }),
        (vec![ERL_DRV_INT64, 0x9999], BadBuffer { at: 0 }),
        (vec![ERL_DRV_BUF2BINARY, 0, 3], BadBuffer { at: 0 }),
        (vec![ERL_DRV_NIL, ERL_DRV_NIL], NotOneTerm { terms: 2 }),
        (
            nested_too_deep.clone(),
            TooDeep {
                at: nested_too_deep.len() - 2,
            },
        ),
    ];
    for (spec, expected) in cases {
        check(&spec, Err(expected));
    }
}

/// Which errors the runtime finds only after checking the receiver (so a dead receiver makes
/// the call return 0 rather than -1).
#[test]
fn errors_found_after_the_receiver_check() {
    use SpecError::*;
    let cases = [
        (DuplicateMapKey { at: 0 }, true),
        (
            BadExternalTerm {
                at: 0,
                error: drv_term::EtfError::DuplicateMapKey,
            },
            true,
        ),
        (
            BadExternalTerm {
                at: 0,
                error: drv_term::EtfError::Truncated,
            },
            false,
        ),
        (BadAtom { at: 0 }, false),
        (NotOneTerm { terms: 2 }, false),
        (NonFiniteFloat { at: 0 }, false),
    ];
    for (error, expected) in cases {
        assert_eq!(error.found_after_receiver_check(), expected, "{error}");
    }
}

#[test]
fn large_uint_and_int64_values_normalize() {
    let e = env();
    let small = build_term(&[ERL_DRV_UINT, 42], &e).expect("valid");
    assert_eq!(small, Term::Int(42));
    let big = build_term(&[ERL_DRV_UINT, TermData::MAX], &e).expect("valid");
    assert!(matches!(big, Term::BigInt(_)), "{big:?}");
}
