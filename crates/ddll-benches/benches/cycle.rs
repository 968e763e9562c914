//! The unload + load cycle through the facade: `try_load` of a real driver library (dlopen,
//! `driver_init`, checks), then `try_unload` with a monitor and the `'DOWN'` message (finish,
//! dlclose). Compare with BEAM on the same `.so`: `cargo xtask beam-cycle`.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ddll::{LoadOptions, Pending, Runtime, UnloadOptions};

fn load_unload_cycle(c: &mut Criterion) {
    // The OTP-header build when there is one: the very file BEAM's figure is measured on.
    let drivers = support::otp_drivers()
        .or_else(support::own_drivers)
        .expect("the example drivers build");
    let dir = drivers.to_string_lossy().into_owned();
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("bench"));
    let pid = *me.pid();
    let unload = UnloadOptions {
        kill_ports: false,
        monitor: Some(Pending::PendingDriver),
    };
    c.bench_function("load+unload echo_drv.so", |b| {
        b.iter(|| {
            let loaded = rt.try_load(&pid, &dir, "echo_drv", LoadOptions::default());
            black_box(loaded.expect("loads"));
            let unloaded = rt.try_unload(&pid, "echo_drv", unload);
            black_box(unloaded.expect("unloads"));
            // The 'DOWN' ... unloaded message: the library is closed.
            black_box(me.receive(Some(Duration::ZERO)).expect("unloaded"))
        })
    });
}

/// The floor under the facade: open, check and initialise the library, finish and close it
/// (drv-abi alone, no erl_ddll state, no runtime).
fn open_close_floor(c: &mut Criterion) {
    let drivers = support::otp_drivers()
        .or_else(support::own_drivers)
        .expect("the example drivers build");
    drv_abi::install_shim().expect("the API shim installs");
    c.bench_function("dlopen+init+dlclose echo_drv.so (drv-abi)", |b| {
        b.iter(|| {
            let driver = drv_abi::driver::Driver::load(&drivers, "echo_drv").expect("loads");
            driver.finish();
            drop(black_box(driver));
        })
    });
}

criterion_group!(benches, load_unload_cycle, open_close_floor);
criterion_main!(benches);
