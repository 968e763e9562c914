//! Port timers and async jobs through the C API, timed by the driver itself (the same loops
//! `cargo xtask timer-bench` runs under BEAM on the same `.so` files):
//!
//! * `timer_set_read_cancel`: `driver_set_timer` + `driver_read_timer` + `driver_cancel_timer`
//!   (timer_drv control 7).
//! * `async_submit`: one no-op `driver_async` (async_drv control 9).
//! * `async_submit_to_ready`: per job, from the first of a batch of submits to the last
//!   `ready_async` (control 10).
//! * `async_chain`: per job, a chain where each `ready_async` submits the next (control 11).
//!
//! The drivers are the example drivers built against the project's header, or those in
//! `DDLL_BENCH_DRIVERS` (the xtask passes the OTP-header build that BEAM loads).

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use ddll::{Process, Runtime, Term};

struct Bench {
    rt: Runtime,
    me: std::sync::Arc<Process>,
}

impl Bench {
    fn new() -> Bench {
        let drivers = std::env::var_os("DDLL_BENCH_DRIVERS")
            .map(std::path::PathBuf::from)
            .or_else(support::own_drivers)
            .expect("the example drivers build");
        let rt = Runtime::new().expect("runtime");
        let me = rt.spawn(Some("bench"));
        let dir = drivers.to_string_lossy().into_owned();
        for driver in ["timer_drv", "async_drv"] {
            rt.try_load(me.pid(), &dir, driver, Default::default())
                .expect("loads");
        }
        Bench { rt, me }
    }

    fn open(&self, driver: &str) -> ddll::Port {
        self.rt
            .open_port(self.me.pid(), driver, Default::default())
            .expect("opens")
    }

    fn control(&self, port: &ddll::Port, op: u32, n: u64) -> String {
        let data = Term::Binary(Bytes::from(n.to_string()));
        match self.rt.port_control(self.me.pid(), port, op, &data) {
            Ok(Term::List(chars)) => chars
                .iter()
                .map(|c| match c {
                    Term::Int(b) => char::from(u8::try_from(*b).expect("a byte")),
                    _ => '?',
                })
                .collect(),
            other => panic!("control {op}: {other:?}"),
        }
    }

    /// Nanoseconds a control command reported.
    fn timed(&self, port: &ddll::Port, op: u32, n: u64) -> Duration {
        Duration::from_nanos(self.control(port, op, n).parse().expect("nanoseconds"))
    }

    /// Runs a batch command whose last ready_async outputs "elapsed NS".
    fn elapsed(&self, port: &ddll::Port, op: u32, n: u64) -> Duration {
        assert_eq!(self.control(port, op, n), "ok");
        let Some(Term::Tuple(message)) = self
            .me
            .receive(Some(Duration::from_secs(60)))
            .map(Term::from)
        else {
            panic!("no elapsed message");
        };
        let Term::Tuple(data) = &message[1] else {
            panic!("not data: {message:?}");
        };
        let Term::List(chars) = &data[1] else {
            panic!("not a list: {data:?}");
        };
        let text: String = chars
            .iter()
            .map(|c| match c {
                Term::Int(b) => char::from(u8::try_from(*b).expect("a byte")),
                _ => '?',
            })
            .collect();
        let ns = text.strip_prefix("elapsed ").expect("elapsed NS");
        Duration::from_nanos(ns.parse().expect("nanoseconds"))
    }
}

fn timers(c: &mut Criterion) {
    let bench = Bench::new();
    let port = bench.open("timer_drv");
    c.bench_function("timer_set_read_cancel", |b| {
        b.iter_custom(|iterations| bench.timed(&port, 7, iterations))
    });
}

fn async_jobs(c: &mut Criterion) {
    let bench = Bench::new();
    let port = bench.open("async_drv");
    c.bench_function("async_submit", |b| {
        b.iter_custom(|iterations| {
            let took = bench.timed(&port, 9, iterations);
            // Wait for the backlog (one thread: a job queued last is ready last).
            bench.elapsed(&port, 10, 1);
            took
        })
    });
    c.bench_function("async_submit_to_ready", |b| {
        b.iter_custom(|iterations| bench.elapsed(&port, 10, iterations))
    });
    c.bench_function("async_chain", |b| {
        b.iter_custom(|iterations| bench.elapsed(&port, 11, iterations))
    });
}

criterion_group!(benches, timers, async_jobs);
criterion_main!(benches);
