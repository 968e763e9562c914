//! `erl_drv_output_term` of the erl_driver documentation's `{tcp, Port, [100 | Bin50]}`, sent
//! by `term_drv.so` in a loop (port_control 10), as `cargo xtask term-bench` measures BEAM on
//! the same driver:
//!
//! * "in the driver": the driver's own clock around its loop of calls (build + delivery to the
//!   owner's mailbox);
//! * "delivered": the loop plus the owner taking every term from its mailbox as it is (the
//!   one-buffer form; `receive`) and dropping it, on the caller's clock.
//!
//! The loop runs in chunks of at most `CHUNK` calls so that the mailbox stays small.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ddll::{Process, Runtime, Term};

const CHUNK: u64 = 10_000;

struct Bench {
    rt: Runtime,
    me: std::sync::Arc<Process>,
    port: ddll::Port,
}

impl Bench {
    fn new() -> Bench {
        let drivers = support::own_drivers().expect("the example drivers build");
        let rt = Runtime::new().expect("runtime");
        let me = rt.spawn(Some("bench"));
        let dir = drivers.to_string_lossy().into_owned();
        rt.try_load(me.pid(), &dir, "term_drv", Default::default())
            .expect("loads");
        let port = rt
            .open_port(me.pid(), "term_drv", Default::default())
            .expect("opens");
        Bench { rt, me, port }
    }

    /// Runs `n` calls in the driver; the nanoseconds the driver measured.
    fn driver_loop(&self, n: u64) -> u64 {
        let reply = self
            .rt
            .port_control(
                self.me.pid(),
                &self.port,
                10,
                &Term::string_latin1(n.to_string().as_bytes()),
            )
            .expect("control 10 replies");
        let Term::List(digits) = reply else {
            panic!("a text reply, got {reply}")
        };
        digits
            .iter()
            .map(|d| match d {
                Term::Int(c) => (*c as u8 - b'0') as u64,
                other => panic!("a digit, got {other}"),
            })
            .fold(0, |acc, d| acc * 10 + d)
    }

    fn drain(&self, n: u64) {
        for _ in 0..n {
            std::hint::black_box(
                self.me
                    .receive(Some(Duration::ZERO))
                    .expect("a term per call"),
            );
        }
    }
}

fn chunks(iters: u64) -> impl Iterator<Item = u64> {
    (0..iters.div_ceil(CHUNK)).map(move |i| (iters - i * CHUNK).min(CHUNK))
}

fn term_output(c: &mut Criterion) {
    let bench = Bench::new();
    let mut group = c.benchmark_group("erl_drv_output_term {tcp,Port,[100|Bin50]}");
    group.bench_function("in the driver", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for n in chunks(iters) {
                total += Duration::from_nanos(bench.driver_loop(n));
                bench.drain(n);
            }
            total
        })
    });
    group.bench_function("delivered", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for n in chunks(iters) {
                bench.driver_loop(n);
                bench.drain(n);
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, term_output);
criterion_main!(benches);
