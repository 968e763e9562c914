//! Spec building, ETF, printing and atom interning speed.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use drv_term::tags::*;
use drv_term::{build_term, decode, encode, Atom, FlatTerm, Port, SpecEnv, Term, TermData};

/// One 50-byte driver binary at handle 1; no other memory.
struct Env {
    bin: Bytes,
}

impl SpecEnv for Env {
    fn bytes(&self, _: TermData, _: usize) -> Option<&[u8]> {
        None
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
