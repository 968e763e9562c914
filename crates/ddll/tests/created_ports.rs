//! Ports created by drivers (`driver_create_port`) with `create_port_drv` and its driver-level
//! locking twin `create_port_dl_drv` (see their header comment), built against both headers:
//! what the scenarios cannot show — driver-level locking (where BEAM 25 deadlocks), the new
//! port's lock let go when its creator's callback returns (the scenario runner calls from one
//! thread only), and an owner dying while a port is created for it.

mod support;

/// The tests of this file take turns: the driver's stop log is one per process, whatever the
/// runtime.
static TURNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn my_turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS.lock().unwrap_or_else(|e| e.into_inner())
}

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use ddll::{Atom, Pid, Port, Runtime, Term};

use support::expect_text as text;

fn atom(name: &str) -> Term {
    Term::Atom(Atom::new(name))
}

fn control(rt: &Runtime, caller: &Pid, port: &Port, op: u32, data: &str) -> String {
    let data = Term::Binary(Bytes::copy_from_slice(data.as_bytes()));
    text(&rt.port_control(caller, port, op, &data).expect("control"))
}

/// A runtime with `driver` loaded from `dir`, its process, and a port opened on it.
fn setup(dir: &std::path::Path, driver: &str) -> (Runtime, std::sync::Arc<ddll::Process>, Port) {
    let fx = support::Fixture::new(dir, 1, &[driver]);
    let port = fx.open(driver);
    (fx.rt, fx.me, port)
}

/// The port of the `{NewPort, created, Name}` announcement a new port sends its owner.
fn created(message: Option<Term>) -> Port {
    match message {
        Some(Term::Tuple(items)) if items.len() == 3 && items[1] == atom("created") => {
            match &items[0] {
                Term::Port(port) => *port,
                other => panic!("not a port: {other}"),
            }
        }
        other => panic!("not an announcement: {other:?}"),
    }
}

#[test]
fn driver_level_locking_shares_the_driver_lock() {
    let _turn = my_turn();
    for dir in support::driver_dirs() {
        let (rt, me, creator) = setup(&dir, "create_port_dl_drv");
        assert_eq!(control(&rt, me.pid(), &creator, 1, "kid"), "ok");
        let kid = created(me.receive(Some(Duration::from_secs(1))).map(Term::from));
        assert_eq!(
            rt.port_info_item(&kid, &atom("locking")).expect("info"),
            Term::Tuple(vec![atom("locking"), atom("driver_level")])
        );
        // The creator holds the driver lock, which is the new port's too: its queue is usable.
        assert_eq!(control(&rt, me.pid(), &creator, 8, "queued"), "ok 3");
        let queued = created(me.receive(Some(Duration::from_secs(1))).map(Term::from));
        // Another thread runs the new ports' callbacks once the creator's have returned.
        let (rt2, pid) = (rt.clone(), *me.pid());
        let other = std::thread::spawn(move || {
            rt2.port_command(&pid, &kid, &Term::Binary(Bytes::from_static(b"hi")))
                .expect("command");
            control(&rt2, &pid, &queued, 9, "")
        });
        assert_eq!(other.join().expect("other thread"), "queued");
        assert_eq!(
            me.receive(Some(Duration::from_secs(1))).map(Term::from),
            Some(Term::Tuple(vec![
                Term::Port(kid),
                Term::Tuple(vec![
                    atom("data"),
                    Term::List(vec![Term::Int(104), Term::Int(105)])
                ]),
            ]))
        );
        // The creator's close leaves them; an unload with kill_ports ends all three.
        rt.port_close(me.pid(), &creator).expect("closes");
        assert_eq!(rt.ports(), vec![kid, queued]);
        let options = ddll::UnloadOptions {
            kill_ports: true,
            monitor: None,
        };
        rt.try_unload(me.pid(), "create_port_dl_drv", options)
            .expect("unloads");
        assert_eq!(rt.ports(), Vec::<Port>::new());
    }
}

#[test]
fn a_port_level_created_port_is_let_go_when_its_creator_returns() {
    let _turn = my_turn();
    for dir in support::driver_dirs() {
        let (rt, me, creator) = setup(&dir, "create_port_drv");
        assert_eq!(control(&rt, me.pid(), &creator, 1, "kid"), "ok");
        let kid = created(me.receive(Some(Duration::from_secs(1))).map(Term::from));
        // Held by this thread during the creator's callback only: another thread gets it now.
        let (done_tx, done_rx) = mpsc::channel();
        let (rt2, pid) = (rt.clone(), *me.pid());
        std::thread::spawn(move || {
            let _ = done_tx.send(control(&rt2, &pid, &kid, 9, ""));
        });
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(5)).as_deref(),
            Ok("kid"),
            "the created port's lock is still held after its creator's callback returned"
        );
        // Its own callbacks and its creator's run on their own locks.
        assert_eq!(
            rt.port_info_item(&kid, &atom("locking")).expect("info"),
            Term::Tuple(vec![atom("locking"), atom("port_level")])
        );
        rt.exit(me.pid(), atom("kill"));
        assert_eq!(rt.ports(), Vec::<Port>::new());
    }
}

#[test]
fn an_owner_dying_while_a_port_is_created_for_it_leaves_no_port() {
    let _turn = my_turn();
    for dir in support::driver_dirs() {
        let (rt, me, creator) = setup(&dir, "create_port_drv");
        let (mut made, mut refused) = (0, 0);
        for round in 0..100 {
            let victim = rt.spawn(None);
            let pid = *victim.pid();
            let killer = {
                let rt = rt.clone();
                std::thread::spawn(move || rt.exit(&pid, atom("kill")))
            };
            // Owned by the caller, the victim.
            let rc = control(&rt, &pid, &creator, 1, "r");
            killer.join().expect("killer");
            assert_eq!(
                rt.ports(),
                vec![creator],
                "round {round}: a port outlived its owner"
            );
            // A port that was made was closed by its owner's death: its stop ran.
            let stopped = control(&rt, me.pid(), &creator, 11, "");
            match rc.as_str() {
                "ok" => {
                    assert_eq!(stopped, "r", "round {round}");
                    made += 1;
                }
                "invalid" => {
                    assert_eq!(stopped, "", "round {round}: stop of a port never made");
                    refused += 1;
                }
                other => panic!("round {round}: {other}"),
            }
        }
        eprintln!("created for a dying owner: {made} made then closed, {refused} refused");
        let count = ddll::erl_ddll_call(
            &rt,
            me.pid(),
            "info",
            &[atom("create_port_drv"), atom("port_count")],
        )
        .expect("info");
        assert_eq!(count, Term::Int(1), "only the creator counts");
    }
}
