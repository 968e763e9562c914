//! Entry points for fuzzing on stable Rust: each takes arbitrary bytes and
//! panics only if it finds a bug (see `examples/fuzz.rs` for the driver loop).

use bytes::Bytes;

use crate::{
    decode, encode, Atom, FlatLog, FlatTerm, LoggedSpec, Pid, Port, SpecEnv, SpecError, Term,
    TermData,
};

/// Checks everything that decodes: re-encoding decodes to an equal term with
/// the same bytes, and printing and comparing do not fail.
pub fn etf_decode_one(data: &[u8]) {
    if let Ok(term) = decode(data) {
        check_round_trip(&term);
    }
}

fn check_round_trip(term: &Term) {
    let bytes = encode(term);
    let back = decode(&bytes).expect("an encoded term decodes");
    assert!(back == *term, "round trip changed {term}");
    assert_eq!(encode(&back), bytes, "re-encoding differs for {term}");
    assert_eq!(back.to_string(), term.to_string());
    assert!(back.cmp(term).is_eq());
}

/// Base address of [`FuzzEnv`]'s memory: the input bytes themselves.
const MEM_BASE: TermData = 0x10_000;
/// Handle of [`FuzzEnv`]'s one driver binary.
const BIN_HANDLE: TermData = 0x20_000;

/// A fake environment over the fuzz input: pointers from `MEM_BASE` address
/// the input, `BIN_HANDLE` is a 100-byte binary (shared from 65 bytes on).
struct FuzzEnv<'a> {
    mem: &'a [u8],
    bin: Bytes,
}

impl FuzzEnv<'_> {
    fn slice(&self, ptr: TermData, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(ptr.checked_sub(MEM_BASE)?).ok()?;
        self.mem.get(start..start.checked_add(len)?)
    }
}

impl SpecEnv for FuzzEnv<'_> {
    fn bytes(&self, ptr: TermData, len: usize) -> Option<&[u8]> {
        self.slice(ptr, len)
    }
    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<&[u8]> {
        (bin == BIN_HANDLE).then_some(())?;
        self.bin.get(offset..offset.checked_add(len)?)
    }
    fn shared_binary(&self, bin: TermData, len: usize, offset: usize) -> Option<Bytes> {
        self.binary(bin, len, offset)?;
        Some(self.bin.slice(offset..offset + len))
    }
    fn float(&self, ptr: TermData) -> Option<f64> {
        Some(f64::from_le_bytes(self.slice(ptr, 8)?.try_into().ok()?))
    }
    fn int64(&self, ptr: TermData) -> Option<i64> {
        Some(i64::from_le_bytes(self.slice(ptr, 8)?.try_into().ok()?))
    }
    fn uint64(&self, ptr: TermData) -> Option<u64> {
        Some(u64::from_le_bytes(self.slice(ptr, 8)?.try_into().ok()?))
    }
}

/// Turns two input bytes into one spec word, biased towards meaningful
/// values: tags and counts, atoms, ports, pids, pointers, handles, and raw
/// (often negative) numbers.
fn spec_word(kind: u8, v: u8) -> TermData {
    match kind >> 5 {
        0..=3 => TermData::from(kind & 31),
        4 => Atom::new(["ok", "tcp", "a", "b"][usize::from(v % 4)]).to_term_data(),
        5 if v & 1 == 0 => Port::local(u64::from(v)).to_local_term_data().unwrap_or(0),
        5 => Pid::local(u64::from(v)).to_local_term_data().unwrap_or(0),
        6 if v & 0x80 == 0 => MEM_BASE + TermData::from(v),
        6 => BIN_HANDLE,
        _ => (i64::from(v as i8) * 0x0101_0101) as TermData,
    }
}

/// The spec the fuzz input `data` stands for (two bytes a word, see [`spec_one`]).
pub fn spec_of(data: &[u8]) -> Vec<TermData> {
    data.chunks_exact(2)
        .map(|c| spec_word(c[0], c[1]))
        .collect()
}

/// Interprets the input as a driver term spec over a fake environment and
/// checks that whatever it builds agrees with its [`Term`] (see [`check_flat`]) and
/// round-trips through ETF.
pub fn spec_one(data: &[u8]) {
    let env = FuzzEnv {
        mem: data,
        bin: Bytes::from((0u8..100).collect::<Vec<u8>>()),
    };
    let spec = spec_of(data);
    let built = FlatTerm::from_spec(&spec, &env);
    check_logged(&spec, &env, &built);
    if let Ok(flat) = built {
        check_round_trip(&check_flat(&flat));
    }
}

/// Checks that [`FlatLog::push_spec`] logs exactly what a log holds of [`FlatTerm::from_spec`]'s
/// result `built` for the same spec and env (the term, read back equal), and writes nothing
/// for anything else. The term goes behind another entry, as in a mailbox's log.
pub fn check_logged<E: SpecEnv + ?Sized>(
    spec: &[TermData],
    env: &E,
    built: &Result<FlatTerm, SpecError>,
) {
    let before = FlatTerm::from_term(&Term::Int(1));
    let mut log = FlatLog::new();
    assert!(log.push(&before), "a log takes a small term");
    let loggable =
        spec.len() <= FlatLog::MAX_SPEC_WORDS && matches!(built, Ok(flat) if FlatLog::holds(flat));
    let expected = if loggable {
        LoggedSpec::Logged
    } else {
        LoggedSpec::Unfit
    };
    assert_eq!(log.push_spec(spec, env), expected, "spec {spec:?}");
    assert_eq!(log.len(), 1 + usize::from(loggable), "spec {spec:?}");
    assert_eq!(log.pop().map(|t| t.encode()), Some(before.encode()));
    if let (true, Ok(flat)) = (loggable, built) {
        let logged = log.pop().expect("the logged term");
        assert_eq!(
            logged.encode(),
            flat.encode(),
            "logged differs for {spec:?}"
        );
        assert_eq!(logged.to_string(), flat.to_string());
        // Only the records: no room the build did not need.
        assert!(logged.buffer_len() <= flat.buffer_len(), "spec {spec:?}");
    }
    assert!(log.pop().is_none(), "nothing more was logged for {spec:?}");
}

/// Checks that a flat term and its [`Term`] agree: printing, ETF encoding, equality, and the
/// flat form made back from the `Term`. Returns the `Term`.
pub fn check_flat(flat: &FlatTerm) -> Term {
    let term = flat.to_term();
    let text = term.to_string();
    assert_eq!(flat.to_string(), text, "printing differs");
    assert_eq!(flat.encode(), encode(&term), "encoding differs for {text}");
    assert!(*flat == term, "not equal to its term: {text}");
    let again = FlatTerm::from_term(&term);
    assert_eq!(again.to_string(), text, "printing of the term's flat form");
    assert_eq!(
        again.encode(),
        encode(&term),
        "encoding of the term's flat form"
    );
    assert!(again.to_term() == term, "the term's flat form: {text}");
    assert!(
        flat.clone().into_term() == term,
        "into_term differs for {text}"
    );
    term
}
