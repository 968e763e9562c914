//! Spec building, ETF, printing and atom interning speed.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use drv_term::tags::*;
use drv_term::{build_term, decode, encode, Atom, FlatTerm, Port, SpecEnv, Term, TermData};

/// One 50-byte driver binary at handle 1; the texts of [`TEXTS`] at handles 1 to 12.
struct Env {
    bin: Bytes,
}

/// The token texts of [`tokens_spec`].
const TEXTS: [&str; 12] = [
    "ok",
    "Value",
    "hello world!",
    "42",
    "->",
    "case",
    "foo_bar",
    "X1",
    "abc",
    "1024",
    "{",
    "end",
];

/// A scanner's token list, as `backlog_drv` sends it: 60 tuples `{Kind, Line, "text"}`.
fn tokens_spec() -> Vec<TermData> {
    let kinds = ["atom", "var", "string", "integer", "punct", "keyword"];
    let mut spec = Vec::new();
    for i in 0..60 {
        let text = (i % 12) as TermData;
        spec.extend([ERL_DRV_ATOM, Atom::new(kinds[i % 6]).to_term_data()]);
        spec.extend([ERL_DRV_INT, (1 + i / 4) as TermData]);
        spec.extend([
            ERL_DRV_STRING,
            text + 1,
            TEXTS[text as usize].len() as TermData,
        ]);
        spec.extend([ERL_DRV_TUPLE, 3]);
    }
    spec.extend([ERL_DRV_NIL, ERL_DRV_LIST, 61]);
    spec
}

impl SpecEnv for Env {
    fn bytes(&self, text: TermData, len: usize) -> Option<&[u8]> {
        let text = TEXTS.get((text as usize).checked_sub(1)?)?.as_bytes();
        text.get(..len)
    }
    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<&[u8]> {
        (bin == 1).then_some(())?;
        self.bin.get(offset..offset.checked_add(len)?)
    }
    fn float(&self, _: TermData) -> Option<f64> {
        None
    }
    fn int64(&self, _: TermData) -> Option<i64> {
        None
    }
    fn uint64(&self, _: TermData) -> Option<u64> {
        None
    }
}

fn sample_term() -> Term {
    Term::Tuple(vec![
        Term::atom("reply"),
        Term::Int(12345),
        Term::string_latin1(b"hello world"),
        Term::Binary(Bytes::from(vec![1u8; 100])),
        Term::map(vec![
            (Term::atom("a"), Term::Float(1.5)),
            (Term::atom("b"), Term::int(1 << 70)),
        ])
        .expect("distinct keys"),
        Term::List(
            (0..20)
                .map(|i| Term::Tuple(vec![Term::Int(i), Term::atom("x")]))
                .collect(),
        ),
    ])
}

fn benches(c: &mut Criterion) {
    let env = Env {
        bin: Bytes::from(vec![7u8; 50]),
    };
    let port = Port::local(3).to_local_term_data().expect("small port");
    let spec = [
        ERL_DRV_ATOM,
        Atom::new("tcp").to_term_data(),
        ERL_DRV_PORT,
        port,
        ERL_DRV_INT,
        100,
        ERL_DRV_BINARY,
        1,
        50,
        0,
        ERL_DRV_LIST,
        2,
        ERL_DRV_TUPLE,
        3,
    ];
    // Build and drop: the message's whole life but its delivery.
    c.bench_function("FlatTerm::from_spec {tcp,Port,[100|Bin50]}", |b| {
        b.iter(|| FlatTerm::from_spec(black_box(&spec), &env).expect("valid spec"))
    });
    c.bench_function("build_term {tcp,Port,[100|Bin50]}", |b| {
        b.iter(|| build_term(black_box(&spec), &env).expect("valid spec"))
    });
    let term = sample_term();
    let bytes = encode(&term);
    c.bench_function("encode sample (225 B)", |b| {
        b.iter(|| encode(black_box(&term)))
    });
    c.bench_function("decode sample (225 B)", |b| {
        b.iter(|| decode(black_box(&bytes)).expect("valid"))
    });
    c.bench_function("print sample", |b| b.iter(|| black_box(&term).to_string()));
    let flat = FlatTerm::from_term(&term);
    c.bench_function("encode sample, flat", |b| {
        b.iter(|| black_box(&flat).encode())
    });
    c.bench_function("FlatTerm::to_term sample", |b| {
        b.iter(|| black_box(&flat).to_term())
    });
    // What a host receiving a driver's token list as a `Term` pays beyond taking the message.
    let tokens = FlatTerm::from_spec(&tokens_spec(), &env).expect("valid spec");
    c.bench_function("FlatTerm::into_term, 60 tokens", |b| {
        b.iter_batched(
            || tokens.clone(),
            FlatTerm::into_term,
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("Atom::new existing", |b| {
        b.iter(|| Atom::new(black_box("tcp")))
    });
    let td = Atom::new("tcp").to_term_data();
    c.bench_function("Atom::from_term_data", |b| {
        b.iter(|| Atom::from_term_data(black_box(td)))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
