//! Unload safety through the Rust API: a library is closed only when nothing can run its code,
//! and a driver loaded again gets freshly mapped code. `probe_drv` (examples/drivers) answers
//! port_control 1 with "vV/N" (N: init calls in this mapping) and starts, with control 6, a
//! thread that sleeps 100 ms and then writes the library's static data.

mod support;

use std::path::Path;
use std::time::Duration;

use ddll::{DdllError, LoadOptions, Pending, PortOptions, Runtime, Term, UnloadOptions};

use support::expect_text as text;

/// A fresh folder holding a copy of probe_drv.so.
fn probe_copy(drivers: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(drivers).expect("a scratch folder beside the drivers");
    std::fs::copy(
        drivers.join("probe_drv.so"),
        dir.path().join("probe_drv.so"),
    )
    .expect("probe_drv.so copies");
    dir
}

#[test]
fn a_driver_thread_keeps_the_old_library_and_a_new_load_gets_fresh_code() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let scratch = probe_copy(&drivers);
    let dir = scratch.path().to_string_lossy().into_owned();
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("t"));
    let pid = *me.pid();
    rt.try_load(&pid, &dir, "probe_drv", LoadOptions::default())
        .expect("loads");
    let port = rt
        .open_port(&pid, "probe_drv", PortOptions::default())
        .expect("opens");
    let control = |port, op| {
        text(
            &rt.port_control(&pid, port, op, &Term::List(vec![]))
                .expect("control"),
        )
    };
    assert_eq!(control(&port, 1), "v1/1");
    assert_eq!(control(&port, 6), "ok");
    rt.port_close(&pid, &port).expect("closes");
    let unload = UnloadOptions {
        kill_ports: false,
        monitor: Some(Pending::PendingDriver),
    };
    rt.try_unload(&pid, "probe_drv", unload).expect("unloads");
    let messages: Vec<String> = std::iter::from_fn(|| me.receive(Some(Duration::from_millis(10))))
        .map(|m| m.to_string())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("unloaded")),
        "erl_ddll unloads the driver at once: {messages:?}"
    );
    assert!(rt.loaded_drivers().is_empty());
    // The straggler still sleeps in the old library, which stays mapped for it. Loading the
    // driver again waits for the old library to close, so the new driver has its own static
    // data: one init, no straggler finished in it.
    rt.try_load(&pid, &dir, "probe_drv", LoadOptions::default())
        .expect("loads again");
    let port = rt
        .open_port(&pid, "probe_drv", PortOptions::default())
        .expect("opens");
    assert_eq!(control(&port, 1), "v1/1");
    // Had the load not waited, the straggler would still be asleep, and would wake up in
    // whatever is mapped where the old library was (often the new one, at the same address).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(control(&port, 7), "0");
    rt.port_close(&pid, &port).expect("closes");
    rt.exit(&pid, Term::Atom(ddll::Atom::new("kill")));
    assert!(rt.loaded_drivers().is_empty());
}

#[test]
fn paths_are_compared_as_given_and_resolved_for_loading() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let parent = drivers.parent().expect("drivers have a parent folder");
    let rt = Runtime::with_base_dir(parent).expect("runtime");
    let me = rt.spawn(None);
    let pid = *me.pid();
    let relative = drivers
        .file_name()
        .expect("named folder")
        .to_string_lossy()
        .into_owned();
    rt.try_load(&pid, &relative, "echo_drv", LoadOptions::default())
        .expect("a relative folder is taken from the base folder");
    // BEAM compares the path strings: the absolute spelling of the same folder differs.
    assert_eq!(
        rt.try_load(
            &pid,
            &drivers.to_string_lossy(),
            "echo_drv",
            LoadOptions::default()
        ),
        Err(DdllError::Inconsistent)
    );
    assert!(rt
        .try_load(
            &pid,
            &format!("{relative}//"),
            "echo_drv",
            LoadOptions::default()
        )
        .is_ok());
    rt.exit(&pid, Term::Atom(ddll::Atom::new("kill")));
    assert!(rt.loaded_drivers().is_empty());
}

#[test]
fn a_dead_process_cannot_take_driver_entries() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let dir = drivers.to_string_lossy().into_owned();
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(None);
    let pid = *me.pid();
    rt.exit(&pid, Term::Atom(ddll::Atom::new("kill")));
    assert_eq!(
        rt.try_load(&pid, &dir, "echo_drv", LoadOptions::default()),
        Err(DdllError::BadArg)
    );
    assert_eq!(
        rt.try_unload(&pid, "echo_drv", UnloadOptions::default()),
        Err(DdllError::BadArg)
    );
    assert!(rt.loaded_drivers().is_empty());
}
