//! Echo round trip of 64 bytes (`port_command` → `echo_drv`'s `output` → `driver_output` →
//! the owner's message), in process and with the driver isolated in a host process
//! (`RuntimeOptions::isolate`): what isolation costs. Prints both figures and their ratio.
//!
//! The bench's own program is the host: `main` enters host mode first when started as one.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// A runtime (isolated or not) with `echo_drv` loaded and a port open: one round trip per call.
fn echo_setup(isolate: bool) -> impl FnMut() {
    let drivers = support::own_drivers().expect("the example drivers build");
    let options =
        ddll::RuntimeOptions::default().isolate(isolate.then(ddll::isolate::Isolation::default));
    let rt = ddll::Runtime::with_options("/", options).expect("runtime");
    let me = rt.spawn(Some("bench"));
    let dir = drivers.to_string_lossy().into_owned();
    rt.try_load(me.pid(), &dir, "echo_drv", Default::default())
        .expect("loads");
    let options = ddll::PortOptions::new().binary(true);
    let port = rt.open_port(me.pid(), "echo_drv", options).expect("opens");
    let data = [b'x'; 64];
    move || {
        rt.port_command_bytes(me.pid(), &port, black_box(&data))
            .expect("sent");
        // The isolated echo arrives with the command's reply: it is here when the call returns.
        black_box(me.receive(Some(Duration::ZERO)).expect("echoed"));
    }
}

/// Mean time of one call of `f` over `rounds` calls, after a warm-up.
fn mean(f: &mut impl FnMut(), rounds: u32) -> Duration {
    for _ in 0..rounds / 10 {
        f();
    }
    let t0 = Instant::now();
    for _ in 0..rounds {
        f();
    }
    t0.elapsed() / rounds
}

fn main() {
    ddll::isolate::run_host_if_requested();
    let mut in_process = echo_setup(false);
    let mut isolated = echo_setup(true);
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("echo_round_trip_64B_in_process", |b| {
        b.iter(&mut in_process)
    });
    c.bench_function("echo_round_trip_64B_isolated", |b| b.iter(&mut isolated));
    c.final_summary();
    // Criterion's figures are above; the ratio from interleaved runs of the two.
    let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        a += mean(&mut in_process, 20_000);
        b += mean(&mut isolated, 2_000);
    }
    println!(
        "echo round trip 64 B: in process {:?}, isolated {:?}, isolated/in process {:.1}x",
        a / 5,
        b / 5,
        b.as_secs_f64() / a.as_secs_f64()
    );
}
