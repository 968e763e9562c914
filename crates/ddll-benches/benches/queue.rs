//! The driver queue's hot paths through the C ABI: `queue_bench_drv`'s C loops (driver_enq,
//! driver_peekq, driver_deq, driver_enq_bin, driver_sizeq called from a driver callback, as a
//! driver does), timed per operation. `cargo xtask queue-bench` runs the same loops under BEAM
//! on the same `.so` and prints both.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ddll::Term;

fn queue_through_the_abi(c: &mut Criterion) {
    let drivers = support::own_drivers().expect("the example drivers build");
    let rt = ddll::Runtime::new().expect("runtime");
    let me = rt.spawn(Some("bench"));
    let dir = drivers.to_string_lossy().into_owned();
    rt.try_load(me.pid(), &dir, "queue_bench_drv", Default::default())
        .expect("loads");
    let port = rt
        .open_port(me.pid(), "queue_bench_drv", Default::default())
        .expect("opens");
    let mut group = c.benchmark_group("queue_abi");
    group.throughput(Throughput::Elements(1));
    // (loop number in queue_bench_drv.c, name)
    let loops = [
        (1, "driver_enq64_peekq_deq_every16"),
        (2, "driver_enq_bin64_one_binary_deq_every16"),
        (3, "driver_enq_bin64_16_binaries_deq_every16"),
    ];
    for (number, name) in loops {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let count = Term::List(
                    iters
                        .to_string()
                        .bytes()
                        .map(|d| Term::Int(i64::from(d)))
                        .collect(),
                );
                let start = Instant::now();
                rt.port_control(me.pid(), &port, number, &count)
                    .expect("the loop ran");
                let took = start.elapsed();
                // One control call per sample: its own cost is spread over `iters` operations.
                took.max(Duration::from_nanos(1))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, queue_through_the_abi);
criterion_main!(benches);
