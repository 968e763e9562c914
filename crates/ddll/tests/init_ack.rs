//! Drivers that acknowledge their start later (`ERL_DRV_FLAG_USE_INIT_ACK`) with
//! `init_ack_drv` (see its header comment), built against both headers: what the scenarios
//! cannot show — an `open_port` waiting on another thread while its owner dies or its driver is
//! unloaded, acknowledgements from a thread of the driver's, and many opens at once whose
//! acknowledgements come from the timer thread, the async pool and driver threads.

mod support;

/// The tests of this file take turns: the driver's stop log is one per process, whatever the
/// runtime.
static TURNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn my_turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS.lock().unwrap_or_else(|e| e.into_inner())
}

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ddll::{Atom, Exception, Port, Process, Runtime, Term};

fn atom(name: &str) -> Term {
    Term::Atom(Atom::new(name))
}

use support::expect_text as text;

fn control(rt: &Runtime, process: &Process, port: &Port, op: u32) -> String {
    let data = Term::Binary(Bytes::new());
    text(
        &rt.port_control(process.pid(), port, op, &data)
            .expect("control"),
    )
}

fn setup(dir: &std::path::Path) -> (Runtime, Arc<Process>) {
    let fx = support::Fixture::new(dir, 1, &["init_ack_drv"]);
    (fx.rt, fx.me)
}

/// Opens `init_ack_drv MODE` as `opener` on another thread: the `open_port` result comes on
/// the returned channel.
fn open_elsewhere(
    rt: &Runtime,
    opener: &Process,
    mode: &str,
) -> mpsc::Receiver<Result<Port, Exception>> {
    let (tx, rx) = mpsc::channel();
    let (rt, pid, command) = (rt.clone(), *opener.pid(), format!("init_ack_drv {mode}"));
    std::thread::spawn(move || {
        let _ = tx.send(rt.open_port(&pid, &command, Default::default()));
    });
    rx
}

/// What the open of [`open_elsewhere`] returned once its waiting port had gone: the port, as
/// in BEAM.
fn opened_once_gone(opened: &mpsc::Receiver<Result<Port, Exception>>) -> Option<Port> {
    opened
        .recv_timeout(Duration::from_secs(5))
        .expect("open_port returns once its port is gone")
        .ok()
}

/// A port to read the driver's stop log through, the log emptied first: it is one per
/// loaded library, and a port of an earlier test (another runtime, the library still mapped)
/// may have left its stop there.
fn log_port(rt: &Runtime, me: &Process) -> Port {
    let log = rt
        .open_port(me.pid(), "init_ack_drv timer", Default::default())
        .expect("a port to read the stop log through");
    control(rt, me, &log, 11);
    log
}

/// The port of `rt` whose open is waiting (the only one besides `others`), once it is there.
fn waiting_port(rt: &Runtime, others: &[Port]) -> Port {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(port) = rt.ports().into_iter().find(|p| !others.contains(p)) {
            return port;
        }
        assert!(Instant::now() < deadline, "the waiting port never appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn an_open_waiting_when_its_owner_dies_ends_with_the_port() {
    let _turn = my_turn();
    for dir in support::driver_dirs() {
        let (rt, me) = setup(&dir);
        let log = log_port(&rt, &me);
        let opener = rt.spawn(Some("opener"));
        let opened = open_elsewhere(&rt, &opener, "never");
        let port = waiting_port(&rt, &[log]);
        assert!(
            opened.recv_timeout(Duration::from_millis(50)).is_err(),
            "open_port returned without an acknowledgement"
        );
        rt.exit(opener.pid(), atom("kill"));
        assert_eq!(
            opened_once_gone(&opened),
            Some(port),
            "as in BEAM, the open returns the port"
        );
        assert_eq!(rt.ports(), vec![log]);
        assert_eq!(
            control(&rt, &me, &log, 11),
            "started",
            "stop got start's data"
        );
        // Nothing holds the driver but `log`: it goes, and the driver with it.
        rt.port_close(me.pid(), &log).expect("closes");
        rt.try_unload(me.pid(), "init_ack_drv", Default::default())
            .expect("unloads");
        assert!(rt.loaded_drivers().is_empty());
    }
}

#[test]
fn an_unload_killing_a_waiting_port_completes_its_open() {
    let _turn = my_turn();
    for dir in support::driver_dirs() {
        let (rt, me) = setup(&dir);
        let opener = rt.spawn(Some("opener"));
        let opened = open_elsewhere(&rt, &opener, "never");
        let port = waiting_port(&rt, &[]);
        let options = ddll::UnloadOptions {
            kill_ports: true,
            monitor: None,
        };
        rt.try_unload(me.pid(), "init_ack_drv", options)
            .expect("unloads");
        assert_eq!(opened_once_gone(&opened), Some(port));
        // As in BEAM: the exit signal is already in the opener's mailbox.
        assert_eq!(
            opener.receive(Some(Duration::ZERO)).map(Term::from),
            Some(Term::Tuple(vec![
                atom("EXIT"),
                Term::Port(port),
                atom("driver_unloaded")
            ]))
        );
        assert!(rt.loaded_drivers().is_empty());
    }
}

#[test]
fn a_driver_thread_may_acknowledge() {
    let _turn = my_turn();
    for dir in support::driver_dirs() {
        let (rt, me) = setup(&dir);
        let log = log_port(&rt, &me);
        let port = rt
            .open_port(me.pid(), "init_ack_drv thread", Default::default())
            .expect("acknowledged by the driver's thread");
        assert_eq!(control(&rt, &me, &port, 9), "acked");
        rt.port_close(me.pid(), &port).expect("closes");
        assert_eq!(control(&rt, &me, &log, 11), "acked");
    }
}

#[test]
fn many_opens_acknowledged_from_other_threads_all_complete() {
    let _turn = my_turn();
    for dir in support::driver_dirs() {
        let (rt, _me) = setup(&dir);
        let openers: Vec<_> = (0..6)
            .map(|n| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    let opener = rt.spawn(None);
                    let mode = ["timer", "async", "thread"][n % 3];
                    for _ in 0..10 {
                        let port = rt
                            .open_port(
                                opener.pid(),
                                &format!("init_ack_drv {mode}"),
                                Default::default(),
                            )
                            .expect("opens");
                        assert_eq!(control(&rt, &opener, &port, 9), "acked", "{mode}");
                        rt.port_close(opener.pid(), &port).expect("closes");
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        for opener in openers {
            while !opener.is_finished() {
                assert!(Instant::now() < deadline, "opens still waiting after 60 s");
                std::thread::sleep(Duration::from_millis(10));
            }
            opener.join().expect("opener");
        }
        assert_eq!(rt.ports(), Vec::<Port>::new());
    }
}
