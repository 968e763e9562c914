//! Cost of the state machine's load + unload cycle (host calls are no-ops).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ddll_core::{DdllCore, DriverHost, LoadError, LoadOptions, Pending, UnloadOptions};

struct NopHost;

impl DriverHost for NopHost {
    fn load(&mut self, _full_path: &str, _name: &str) -> Result<(), LoadError> {
        Ok(())
    }
    fn unload(&mut self, _name: &str) {}
}

fn cycle(c: &mut Criterion) {
    let mut host = NopHost;
    let mut core: DdllCore<u32> = DdllCore::new();
    for name in [
        "tcp_inet",
        "udp_inet",
        "sctp_inet",
        "ram_file_drv",
        "tty_sl",
    ] {
        core.add_linked_in(name);
    }
    c.bench_function("load+unload+run_scheduled", |b| {
        b.iter(|| {
            let out = core.try_load(
                &mut host,
                1,
                "/lib/drivers",
                "echo_drv",
                LoadOptions::default(),
            );
            black_box(&out);
            let out = core.try_unload(1, "echo_drv", UnloadOptions::default());
            black_box(&out);
            black_box(core.run_scheduled(&mut host));
        })
    });
    let monitored = LoadOptions {
        monitor: Some(Pending::PendingDriver),
        ..LoadOptions::default()
    };
    let unload_monitored = UnloadOptions {
        kill_ports: true,
        monitor: Some(Pending::PendingDriver),
    };
    c.bench_function("load+port+unload_driver(monitor)+close+run", |b| {
        b.iter(|| {
            let out = core.try_load(&mut host, 1, "/lib/drivers", "echo_drv", monitored);
            black_box(&out);
            core.port_opened("echo_drv").expect("loaded");
            let out = core.try_unload(1, "echo_drv", unload_monitored);
            black_box(&out);
            core.port_closed("echo_drv").expect("open");
            black_box(core.run_scheduled(&mut host));
        })
    });
}

criterion_group!(benches, cycle);
criterion_main!(benches);
