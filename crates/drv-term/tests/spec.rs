//! The spec interpreter: every example of the erl_driver documentation, every
//! tag, and every rejection the runtime makes.

use std::collections::HashMap;

use bytes::Bytes;
use drv_term::tags::*;
use drv_term::{build_term, encode, Atom, FlatTerm, Pid, Port, SpecEnv, SpecError, Term, TermData};
use proptest::prelude::*;

/// Fake memory: addresses map to byte buffers, binaries, doubles and 64-bit ints.
#[derive(Default)]
struct Env {
    mem: HashMap<TermData, Vec<u8>>,
    bins: HashMap<TermData, Bytes>,
    floats: HashMap<TermData, f64>,
    ints: HashMap<TermData, i64>,
}

impl SpecEnv for Env {
    fn bytes(&self, ptr: TermData, len: usize) -> Option<&[u8]> {
        self.mem.get(&ptr)?.get(..len)
    }
    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<&[u8]> {
        self.bins.get(&bin)?.get(offset..offset.checked_add(len)?)
    }
    fn shared_binary(&self, bin: TermData, len: usize, offset: usize) -> Option<Bytes> {
        self.binary(bin, len, offset)?;
        Some(self.bins[&bin].slice(offset..offset + len))
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
/// `[300|z]` in the external format.
const EXT_IMPROPER: TermData = 0x3300;
/// `[1,2]` in the external format.
const EXT_NUMS: TermData = 0x3400;
/// `#{k => 1, k => 2}` in the external format (18 bytes).
const EXT_DUP: TermData = 0x3200;
const BIN: TermData = 0x4000;
/// 200 bytes: 0, 1, ..., 199 (shared rather than copied from 65 bytes on).
const BIG_BIN: TermData = 0x4100;
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
        EXT_IMPROPER,
        encode(&Term::cons(vec![Term::Int(300)], Term::atom("z"))),
    );
    e.mem
        .insert(EXT_NUMS, encode(&Term::string_latin1(&[1, 2])));
    e.mem.insert(
        EXT_DUP,
        vec![
            131, 116, 0, 0, 0, 2, 100, 0, 1, b'k', 97, 1, 100, 0, 1, b'k', 97, 2,
        ],
    );
    e.bins.insert(BIN, Bytes::from(vec![7u8; 50]));
    e.bins
        .insert(BIG_BIN, Bytes::from((0..200u8).collect::<Vec<u8>>()));
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

/// Checks what the spec builds (its printed form) or why it is rejected, and that the flat
/// form and its `Term` agree.
fn check(spec: &[TermData], expected: Result<&str, SpecError>) {
    let built = FlatTerm::from_spec(spec, &env());
    drv_term::fuzz::check_logged(spec, &env(), &built);
    let got = built.map(|flat| drv_term::fuzz::check_flat(&flat).to_string());
    assert_eq!(
        build_term(spec, &env()).map(|t| t.to_string()),
        got,
        "build_term differs for spec {spec:?}"
    );
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
    let ext_len = |ptr| env().mem[&ptr].len() as TermData;
    let bytes_text = |range: std::ops::Range<u8>| {
        let bytes: Vec<String> = range.map(|b| b.to_string()).collect();
        format!("<<{}>>", bytes.join(","))
    };
    let cases: Vec<(Vec<TermData>, String)> = vec![
        // Copied into the flat term up to 64 bytes, shared beyond.
        (vec![ERL_DRV_BINARY, BIG_BIN, 64, 1], bytes_text(1..65)),
        (vec![ERL_DRV_BINARY, BIG_BIN, 65, 0], bytes_text(0..65)),
        (
            vec![
                ERL_DRV_BINARY,
                BIG_BIN,
                100,
                100,
                ERL_DRV_NIL,
                ERL_DRV_LIST,
                2,
            ],
            format!("[{}]", bytes_text(100..200)),
        ),
        // Lists made of parts: strings, lists and external terms as tails.
        (
            vec![ERL_DRV_INT, 1, ERL_DRV_STRING, ABC, 3, ERL_DRV_LIST, 2],
            "[1,97,98,99]".into(),
        ),
        (
            vec![ERL_DRV_STRING, ABC, 3, ERL_DRV_STRING_CONS, S123, 3],
            r#""123abc""#.into(),
        ),
        (
            vec![
                ERL_DRV_INT,
                5,
                ERL_DRV_EXT2TERM,
                EXT_IMPROPER,
                ext_len(EXT_IMPROPER),
                ERL_DRV_LIST,
                2,
            ],
            "[5,300|z]".into(),
        ),
        (
            vec![
                ERL_DRV_EXT2TERM,
                EXT_IMPROPER,
                ext_len(EXT_IMPROPER),
                ERL_DRV_STRING_CONS,
                ABC,
                2,
            ],
            "[97,98,300|z]".into(),
        ),
        (
            vec![
                ERL_DRV_EXT2TERM,
                EXT_NUMS,
                ext_len(EXT_NUMS),
                ERL_DRV_STRING_CONS,
                ABC,
                3,
                ERL_DRV_INT,
                7,
                ERL_DRV_TUPLE,
                2,
            ],
            "{[97,98,99,1,2],7}".into(),
        ),
        (
            vec![
                ERL_DRV_STRING,
                ABC,
                3,
                ERL_DRV_ATOM,
                atom("k"),
                ERL_DRV_MAP,
                1,
            ],
            r#"#{"abc" => k}"#.into(),
        ),
        (
            vec![
                ERL_DRV_UINT64,
                I_MINUS1,
                ERL_DRV_ATOM,
                atom("a"),
                ERL_DRV_TUPLE,
                2,
            ],
            format!("{{{},a}}", u64::MAX),
        ),
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

/// A spec with the term it builds, made with `Term`'s constructors (`None`: a map in it has
/// a key twice, which the interpreter rejects late).
type SpecAndTerm = (Vec<TermData>, Option<Term>);

/// Specs that build a term: leaves over the memory of [`env`], combined by the container tags.
fn valid_spec() -> impl Strategy<Value = SpecAndTerm> {
    let bin = |ptr: TermData, len: usize, off: usize| -> SpecAndTerm {
        let bytes = env().bins[&ptr].slice(off..off + len);
        let spec = vec![ERL_DRV_BINARY, ptr, len as TermData, off as TermData];
        (spec, Some(Term::Binary(bytes)))
    };
    let ext = |ptr: TermData| -> SpecAndTerm {
        let bytes = env().mem[&ptr].clone();
        let spec = vec![ERL_DRV_EXT2TERM, ptr, bytes.len() as TermData];
        (spec, drv_term::decode(&bytes).ok())
    };
    let leaf = prop_oneof![
        Just((vec![ERL_DRV_NIL], Some(Term::List(vec![])))),
        prop::sample::select(vec!["a", "tcp", "Z", "é"])
            .prop_map(|a| (vec![ERL_DRV_ATOM, atom(a)], Some(Term::atom(a)))),
        any::<i64>().prop_map(|v| (vec![ERL_DRV_INT, v as TermData], Some(Term::Int(v)))),
        any::<u64>().prop_map(|v| (vec![ERL_DRV_UINT, v as TermData], Some(Term::from(v)))),
        any::<u32>().prop_map(|n| {
            let n = u64::from(n);
            (
                vec![ERL_DRV_PORT, port(n)],
                Some(Term::Port(Port::local(n))),
            )
        }),
        any::<u32>().prop_map(|n| {
            let n = u64::from(n);
            (vec![ERL_DRV_PID, pid(n)], Some(Term::Pid(Pid::local(n))))
        }),
        (0..=50usize, 0..=50usize).prop_filter_map("in range", move |(len, off)| (len + off <= 50)
            .then(|| bin(BIN, len, off))),
        (60..=200usize).prop_map(move |len| bin(BIG_BIN, len, 200 - len)),
        (0..=3usize).prop_map(|n| (
            vec![ERL_DRV_STRING, ABC, n as TermData],
            Some(Term::string_latin1(&b"abc"[..n]))
        )),
        (0..=3usize).prop_map(|n| (
            vec![ERL_DRV_BUF2BINARY, S123, n as TermData],
            Some(Term::Binary(Bytes::copy_from_slice(&b"123"[..n])))
        )),
        Just((vec![ERL_DRV_FLOAT, F_HALF], Some(Term::Float(0.5)))),
        Just((vec![ERL_DRV_INT64, I_MIN], Some(Term::Int(i64::MIN)))),
        Just((vec![ERL_DRV_UINT64, I_MINUS1], Some(Term::from(u64::MAX)))),
        prop::sample::select(vec![EXT, EXT_IMPROPER, EXT_NUMS, EXT_DUP]).prop_map(ext),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        /// The parts' specs one after the other, and their terms (if all have one).
        fn join(parts: Vec<SpecAndTerm>) -> (Vec<TermData>, Option<Vec<Term>>) {
            let (specs, terms): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
            (specs.concat(), terms.into_iter().collect())
        }
        fn with(mut spec: Vec<TermData>, tail: [TermData; 2]) -> Vec<TermData> {
            spec.extend(tail);
            spec
        }
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|parts| {
                let n = parts.len() as TermData;
                let (spec, terms) = join(parts);
                (with(spec, [ERL_DRV_TUPLE, n]), terms.map(Term::Tuple))
            }),
            prop::collection::vec(inner.clone(), 1..6).prop_map(|parts| {
                let n = parts.len() as TermData;
                let (spec, terms) = join(parts);
                let list = terms.map(|mut items| {
                    let tail = items.pop().expect("at least one");
                    Term::cons(items, tail)
                });
                (with(spec, [ERL_DRV_LIST, n]), list)
            }),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(|pairs| {
                let n = pairs.len() as TermData;
                let (spec, terms) = join(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect());
                let map = terms.and_then(|items| {
                    let mut items = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        pairs.push((k, v));
                    }
                    Term::map(pairs)
                });
                (with(spec, [ERL_DRV_MAP, n]), map)
            }),
            (inner, 0..=3usize).prop_map(|((mut spec, tail), n)| {
                spec.extend([ERL_DRV_STRING_CONS, ABC, n as TermData]);
                let chars = Term::string_latin1(&b"abc"[..n]);
                let Term::List(chars) = chars else {
                    unreachable!("a string is a list")
                };
                (spec, tail.map(|t| Term::cons(chars, t)))
            }),
        ]
    })
}

proptest! {
    /// Random specs build the term their parts say, and its flat form and `Term` agree
    /// (printing, ETF, equality, conversions).
    #[test]
    fn random_specs_build_their_term_flat_and_term_agreeing((spec, expected) in valid_spec()) {
        let built = FlatTerm::from_spec(&spec, &env());
        drv_term::fuzz::check_logged(&spec, &env(), &built);
        match (built, expected) {
            (Ok(flat), Some(expected)) => {
                let term = drv_term::fuzz::check_flat(&flat);
                prop_assert_eq!(&term, &expected);
                prop_assert_eq!(term.to_string(), expected.to_string());
                prop_assert_eq!(build_term(&spec, &env()), Ok(expected));
            }
            (Err(e), None) => prop_assert!(e.found_after_receiver_check(), "{e} for {spec:?}"),
            (got, expected) => prop_assert!(false, "{spec:?}: got {got:?}, expected {expected:?}"),
        }
    }

    /// The same agreement over the fuzz target's own input (words biased towards meaningful
    /// ones; most such specs are rejected).
    #[test]
    fn fuzz_inputs_build_agreeing_terms(data in prop::collection::vec(any::<u8>(), 0..120)) {
        drv_term::fuzz::spec_one(&data);
    }
}

/// Terms larger than the interpreter's first guess at their size (built again in a larger
/// buffer), and nesting up to and past the limit, with and without external terms inside.
#[test]
fn buffer_growth_and_the_nesting_limit() {
    let bin50 = format!("<<{}>>", vec!["7"; 50].join(","));
    // 4 words, 55 bytes of records: more than the guess.
    check(&[ERL_DRV_BINARY, BIN, 50, 0], Ok(&bin50));
    let mut twenty: Vec<TermData> = std::iter::repeat_n([ERL_DRV_BINARY, BIN, 50, 0], 20)
        .flatten()
        .collect();
    twenty.extend([ERL_DRV_NIL, ERL_DRV_LIST, 21]);
    check(
        &twenty,
        Ok(&format!("[{}]", vec![bin50.as_str(); 20].join(","))),
    );

    // `n` one-element tuples around `inner` (its spec and its text).
    let wrapped = |inner: &[TermData], text: &str, n: usize| {
        let mut spec = inner.to_vec();
        spec.extend(std::iter::repeat_n([ERL_DRV_TUPLE, 1], n).flatten());
        (spec, format!("{}{text}{}", "{".repeat(n), "}".repeat(n)))
    };
    let limit = drv_term::MAX_NESTING;
    // [] is 1 deep, {ok,[1,2]} 3 deep.
    let ext = [ERL_DRV_EXT2TERM, EXT, 13];
    let cases = [
        (wrapped(&[ERL_DRV_NIL], "[]", limit - 1), Ok(())),
        (wrapped(&[ERL_DRV_NIL], "[]", limit), Err(())),
        (wrapped(&ext, "{ok,[1,2]}", limit - 3), Ok(())),
        (wrapped(&ext, "{ok,[1,2]}", limit - 2), Err(())),
    ];
    for ((spec, text), fits) in cases {
        let expected = match fits {
            Ok(()) => Ok(text.as_str()),
            Err(()) => Err(SpecError::TooDeep { at: spec.len() - 2 }),
        };
        check(&spec, expected);
    }
}
