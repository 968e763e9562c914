//! Process monitors through the C API with `monitor_drv` (see its header comment), built
//! against both headers: what the scenarios cannot show — a process dying while a driver
//! monitors it (either the monitor fails with 1, or `process_exit` comes exactly once), and
//! `driver_demonitor_process` inside `process_exit` (BEAM crashes there; ddll removes it).

mod support;

use std::time::Duration;

use bytes::Bytes;
use ddll::{Runtime, Term};

use support::expect_text as text;

fn setup(dir: &std::path::Path) -> (Runtime, std::sync::Arc<ddll::Process>, ddll::Port) {
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("test"));
    rt.try_load(
        me.pid(),
        &dir.to_string_lossy(),
        "monitor_drv",
        Default::default(),
    )
    .expect("monitor_drv loads");
    let port = rt
        .open_port(me.pid(), "monitor_drv", Default::default())
        .expect("opens");
    (rt, me, port)
}

fn control(rt: &Runtime, caller: &ddll::Pid, port: &ddll::Port, op: u32, data: &str) -> String {
    let data = Term::Binary(Bytes::copy_from_slice(data.as_bytes()));
    text(&rt.port_control(caller, port, op, &data).expect("control"))
}

/// The tag (second element) of a `{Port, Tag, ...}` term from the driver.
fn tag(message: &Term) -> String {
    match message {
        Term::Tuple(items) => format!("{}", items[1]),
        _ => panic!("unexpected {message}"),
    }
}

#[test]
fn a_process_dying_while_monitored_is_reported_once_or_refused() {
    for dir in support::driver_dirs() {
        let (rt, me, port) = setup(&dir);
        let (mut refused, mut reported) = (0, 0);
        for round in 0..100 {
            let victim = rt.spawn(None);
            let pid = *victim.pid();
            let killer = {
                let rt = rt.clone();
                std::thread::spawn(move || rt.exit(&pid, Term::Atom(ddll::Atom::new("kill"))))
            };
            let rc = control(&rt, &pid, &port, 1, "0");
            killer.join().expect("killer");
            // A reported monitor's process_exit comes within a second; a second report (or
            // one for a refused monitor) would come right after.
            let mut exits = 0;
            let first_wait = if rc == "0" { 1000 } else { 20 };
            let mut wait = first_wait;
            while let Some(message) = me
                .receive(Some(Duration::from_millis(wait)))
                .map(Term::from)
            {
                assert_eq!(tag(&message), "process_exit", "round {round}");
                exits += 1;
                wait = 20;
            }
            match rc.as_str() {
                "0" => {
                    assert_eq!(exits, 1, "round {round}: a monitor fires once");
                    reported += 1;
                }
                "1" => {
                    assert_eq!(exits, 0, "round {round}: refused, never fires");
                    refused += 1;
                }
                other => panic!("round {round}: driver_monitor_process gave {other}"),
            }
            assert_eq!(control(&rt, me.pid(), &port, 3, "0"), "nil");
        }
        eprintln!("{}: {reported} reported, {refused} refused", dir.display());
    }
}

#[test]
fn demonitor_inside_process_exit_removes_the_monitor_once() {
    for dir in support::driver_dirs() {
        let (rt, me, port) = setup(&dir);
        let victim = rt.spawn(Some("victim"));
        assert_eq!(control(&rt, victim.pid(), &port, 1, "4"), "0");
        assert_eq!(control(&rt, me.pid(), &port, 8, "4"), "ok");
        rt.exit(victim.pid(), Term::Atom(ddll::Atom::new("kill")));
        let first = me
            .receive(Some(Duration::from_secs(2)))
            .map(Term::from)
            .expect("process_exit");
        assert_eq!(tag(&first), "process_exit");
        let second = me
            .receive(Some(Duration::from_secs(2)))
            .map(Term::from)
            .expect("demonitor");
        assert!(format!("{second}").ends_with(",demonitor,0}"), "{second}");
        assert_eq!(
            me.receive(Some(Duration::from_millis(100))).map(Term::from),
            None
        );
        assert_eq!(control(&rt, me.pid(), &port, 3, "4"), "nil");
        assert_eq!(control(&rt, me.pid(), &port, 2, "4"), "1");
    }
}
