//! A closed port keeps nothing alive: however it closes, and even when threads that commanded
//! it (and so remember its callback lock for the command fast path) stay idle afterwards, once
//! the driver is unloaded its library is no longer mapped, as under BEAM (a reload then starts
//! from fresh static data).

mod support;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use ddll::{PortOptions, Runtime, Term};

/// How the port closes.
#[derive(Debug, Clone, Copy)]
enum Closing {
    /// `port_close/1` from the owner's thread.
    PortClose,
    /// `port_close/1` from another thread, while the owner's thread stays idle.
    PortCloseElsewhere,
    /// Its own command fails it (`driver_failure` inside `output`).
    FailingCommand,
    /// The owner exits (its driver reference goes with it: no explicit unload).
    OwnerExit,
}

/// Whether the library at `path` is mapped into this process.
fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps readable");
    let path = path.to_string_lossy();
    maps.lines().any(|line| line.ends_with(path.as_ref()))
}

/// A private copy of echo_drv (its own path, so that other tests' mappings do not count).
fn private_echo_drv(dir: &Path) -> Option<PathBuf> {
    let built = support::own_drivers()?.join("echo_drv.so");
    let copy = dir.join("echo_drv.so");
    std::fs::copy(&built, &copy).expect("copies echo_drv.so");
    Some(copy)
}

fn check(close: Closing) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(library) = private_echo_drv(dir.path()) else {
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("owner"));
    rt.try_load(
        me.pid(),
        &dir.path().to_string_lossy(),
        "echo_drv",
        Default::default(),
    )
    .expect("loads");
    assert!(mapped(&library), "{close:?}: loaded but not mapped");
    let options = PortOptions::new().binary(true);
    let port = rt.open_port(me.pid(), "echo_drv", options).expect("opens");
    let pid = *me.pid();
    let echo = move |rt: &Runtime| {
        for _ in 0..3 {
            rt.port_command_bytes(&pid, &port, b"ping")
                .expect("a command to an open port");
        }
    };
    echo(&rt);
    // Another thread commands the port too, then idles until the end of the test.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (commanded_tx, commanded_rx) = mpsc::channel::<()>();
    let idle = {
        let rt = rt.clone();
        std::thread::spawn(move || {
            echo(&rt);
            commanded_tx.send(()).expect("test waits");
            let _ = done_rx.recv();
        })
    };
    commanded_rx
        .recv()
        .expect("the other thread commanded the port");
    let echoes = std::iter::from_fn(|| me.receive(Some(Duration::ZERO))).count();
    assert_eq!(echoes, 6, "{close:?}: every command echoed");

    match close {
        Closing::PortClose => rt.port_close(me.pid(), &port).expect("closes"),
        Closing::PortCloseElsewhere => {
            let rt = rt.clone();
            std::thread::spawn(move || rt.port_close(&pid, &port).expect("closes"))
                .join()
                .expect("closer");
        }
        Closing::FailingCommand => rt
            .port_command_bytes(me.pid(), &port, b"fail")
            .expect("the failing command itself is accepted"),
        Closing::OwnerExit => rt.exit(me.pid(), Term::Atom(ddll::Atom::new("kill"))),
    }
    assert!(
        rt.port_command_bytes(me.pid(), &port, b"ping").is_err(),
        "{close:?}: a command to the closed port is badarg"
    );
    if !matches!(close, Closing::OwnerExit) {
        rt.try_unload(me.pid(), "echo_drv", Default::default())
            .expect("unloads");
    }
    assert!(
        !mapped(&library),
        "{close:?}: the library is still mapped after the final unload"
    );
    done_tx.send(()).expect("idle thread waits");
    idle.join().expect("idle thread");
}

#[test]
fn a_closed_port_pins_no_library() {
    for close in [
        Closing::PortClose,
        Closing::PortCloseElsewhere,
        Closing::FailingCommand,
        Closing::OwnerExit,
    ] {
        check(close);
    }
}

#[test]
fn a_port_of_another_runtime_is_badarg_even_when_remembered() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let dir = drivers.to_string_lossy().into_owned();
    let (ours, theirs) = (
        Runtime::new().expect("runtime"),
        Runtime::new().expect("runtime"),
    );
    let (me, them) = (ours.spawn(None), theirs.spawn(None));
    ours.try_load(me.pid(), &dir, "echo_drv", Default::default())
        .expect("loads");
    theirs
        .try_load(them.pid(), &dir, "echo_drv", Default::default())
        .expect("loads");
    let port = theirs
        .open_port(them.pid(), "echo_drv", Default::default())
        .expect("opens");
    // Remembered by this thread through its own runtime...
    theirs
        .port_command_bytes(them.pid(), &port, b"x")
        .expect("its runtime commands it");
    // ...it is still no port of the other one.
    assert!(ours.port_command_bytes(me.pid(), &port, b"x").is_err());
    assert!(ours
        .port_command(me.pid(), &port, &Term::List(vec![]))
        .is_err());
    assert_eq!(them.message_count(), 1);
}
