//! Echo round trip: `port_command` of 64 bytes → the driver's `output` → `driver_output` →
//! the message received by the owner. Compare with BEAM on the same `echo_drv.so`:
//! `cargo xtask echo-bench` runs this with `DDLL_BENCH_DRIVERS` set to the folder it also
//! gives `erl` (`xtask/beam/ddll_echo_bench.erl`), and prints both figures.
//!
//! With `DDLL_ECHO_ROUNDS=N` set, it runs exactly N round trips, prints their mean time and
//! exits instead: for counting instructions, which is repeatable on a busy machine
//! (`valgrind --tool=callgrind target/release/deps/echo-HASH` with two values of N: the
//! difference over the difference of N is the cost of one round trip), and for quick A/B runs
//! of two builds taking turns.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

fn echo_round_trip(c: &mut Criterion) {
    let drivers = match std::env::var_os("DDLL_BENCH_DRIVERS") {
        Some(dir) => dir.into(),
        None => support::own_drivers().expect("the example drivers build"),
    };
    let rt = ddll::Runtime::new().expect("runtime");
    let me = rt.spawn(Some("bench"));
    let dir = drivers.to_string_lossy().into_owned();
    rt.try_load(me.pid(), &dir, "echo_drv", Default::default())
        .expect("loads");
    let options = ddll::PortOptions::new().binary(true);
    let port = rt.open_port(me.pid(), "echo_drv", options).expect("opens");
    let data = [b'x'; 64];
    if let Some(rounds) = std::env::var_os("DDLL_ECHO_ROUNDS") {
        let rounds: u64 = rounds
            .to_str()
            .and_then(|n| n.parse().ok())
            .expect("DDLL_ECHO_ROUNDS is a number");
        let t0 = std::time::Instant::now();
        for _ in 0..rounds {
            rt.port_command_bytes(me.pid(), &port, black_box(&data))
                .expect("sent");
            black_box(me.receive(Some(Duration::ZERO)).expect("echoed"));
        }
        let ns = t0.elapsed().as_nanos() as f64 / rounds as f64;
        eprintln!("ns_per_round_trip: {ns:.1}");
        std::process::exit(0);
    }
    c.bench_function("echo_round_trip_64B", |b| {
        b.iter(|| {
            rt.port_command_bytes(me.pid(), &port, black_box(&data))
                .expect("sent");
            black_box(me.receive(Some(Duration::ZERO)).expect("echoed"))
        })
    });
}

criterion_group!(benches, echo_round_trip);
criterion_main!(benches);
