//! Echo round trip: `port_command` of 64 bytes → the driver's `output` → `driver_output` →
//! the message received by the owner. Compare with BEAM on the same `echo_drv.so`:
//! `cargo xtask echo-bench` runs this with `DDLL_BENCH_DRIVERS` set to the folder it also
//! gives `erl` (`xtask/beam/ddll_echo_bench.erl`), and prints both figures.

#[path = "../tests/support/mod.rs"]
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
    let options = ddll::PortOptions {
        binary: true,
        eof: false,
    };
    let port = rt.open_port(me.pid(), "echo_drv", options).expect("opens");
    let data = [b'x'; 64];
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
