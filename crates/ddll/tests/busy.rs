//! Busy ports and busy message queues with `busy_drv` (see its header comment), built against
//! both headers: what the scenarios cannot show — a sender blocked on a busy port woken by a
//! driver thread or by another Rust thread's control, a port closing under a blocked sender
//! (BEAM: the sender gets `badarg`), and a message queue made busy by commands waiting for
//! the port's lock.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ddll::{CommandOptions, Exception, Runtime, Term};

use support::expect_text as text;

fn setup(dir: &std::path::Path) -> (Runtime, Arc<ddll::Process>, ddll::Port) {
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("test"));
    rt.try_load(
        me.pid(),
        &dir.to_string_lossy(),
        "busy_drv",
        Default::default(),
    )
    .expect("busy_drv loads");
    let port = rt
        .open_port(me.pid(), "busy_drv", Default::default())
        .expect("opens");
    (rt, me, port)
}

fn control(rt: &Runtime, caller: &ddll::Pid, port: &ddll::Port, op: u32, data: &str) -> String {
    let data = Term::Binary(Bytes::copy_from_slice(data.as_bytes()));
    text(&rt.port_control(caller, port, op, &data).expect("control"))
}

fn binary(bytes: &[u8]) -> Term {
    Term::Binary(Bytes::copy_from_slice(bytes))
}

const NOSUSPEND: CommandOptions = CommandOptions::new().nosuspend(true);

/// The data of the next `{Port, {data, D}}` of `me`.
fn next_data(rt: &Runtime, me: &ddll::Process) -> String {
    let message = rt
        .receive(me.pid(), Some(Duration::from_secs(5)))
        .map(Term::from)
        .expect("a message");
    match &message {
        Term::Tuple(items) => match &items[1] {
            Term::Tuple(data) => text(&data[1]),
            other => panic!("not data: {other}"),
        },
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_blocked_sender_is_woken_by_a_driver_thread() {
    for dir in support::driver_dirs() {
        let (rt, me, port) = setup(&dir);
        assert_eq!(control(&rt, me.pid(), &port, 1, "1"), "ok");
        assert_eq!(
            rt.port_command_with(me.pid(), &port, &binary(b"a"), NOSUSPEND),
            Ok(false)
        );
        // The driver's thread clears busy in 200 ms, without the port's lock.
        assert_eq!(control(&rt, me.pid(), &port, 4, "200"), "ok");
        let start = Instant::now();
        rt.port_command_bytes(me.pid(), &port, b"b")
            .expect("the command goes once the port is not busy");
        assert!(start.elapsed() >= Duration::from_millis(150), "it waited");
        assert_eq!(next_data(&rt, &me), "b");
        rt.port_close(me.pid(), &port).expect("closes");
    }
}

#[test]
fn a_blocked_sender_is_woken_by_another_threads_control() {
    for dir in support::driver_dirs() {
        let (rt, me, port) = setup(&dir);
        let other = rt.spawn(Some("other"));
        assert_eq!(control(&rt, me.pid(), &port, 1, "1"), "ok");
        let sender = {
            let (rt, pid) = (rt.clone(), *other.pid());
            std::thread::spawn(move || rt.port_command(&pid, &port, &binary(b"c")))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !sender.is_finished(),
            "the sender waits while the port is busy"
        );
        // The waiting sender holds no lock: a control of the same port runs, and clears busy.
        assert_eq!(control(&rt, me.pid(), &port, 1, "0"), "ok");
        assert_eq!(sender.join().expect("sender"), Ok(()));
        assert_eq!(next_data(&rt, &me), "c");
        rt.port_close(me.pid(), &port).expect("closes");
    }
}

#[test]
fn a_port_closing_under_a_blocked_sender_gives_it_badarg() {
    for dir in support::driver_dirs() {
        let (rt, me, port) = setup(&dir);
        assert_eq!(control(&rt, me.pid(), &port, 1, "1"), "ok");
        let senders: Vec<_> = (0..4)
            .map(|i| {
                let (rt, pid) = (rt.clone(), *me.pid());
                std::thread::spawn(move || {
                    if i % 2 == 0 {
                        rt.port_command(&pid, &port, &binary(b"d"))
                    } else {
                        rt.port_message(
                            &pid,
                            &port,
                            &Term::Tuple(vec![
                                Term::Pid(pid),
                                Term::Tuple(vec![
                                    Term::Atom(ddll::Atom::new("command")),
                                    binary(b"d"),
                                ]),
                            ]),
                        )
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        rt.port_close(me.pid(), &port).expect("closes");
        let results: Vec<Result<(), Exception>> = senders
            .into_iter()
            .map(|s| s.join().expect("sender"))
            .collect();
        // port_command raises badarg as in BEAM; a message to a port that closed is dropped.
        assert_eq!(
            results,
            vec![
                Err(Exception::badarg()),
                Ok(()),
                Err(Exception::badarg()),
                Ok(())
            ]
        );
        // Only the exit signal: no command reached the driver.
        let exit = rt
            .receive(me.pid(), Some(Duration::from_secs(1)))
            .map(Term::from)
            .expect("EXIT");
        assert!(format!("{exit}").starts_with("{'EXIT',"), "{exit}");
        assert_eq!(
            rt.receive(me.pid(), Some(Duration::from_millis(100)))
                .map(Term::from),
            None
        );
    }
}

#[test]
fn commands_waiting_for_the_port_lock_make_its_message_queue_busy() {
    for dir in support::driver_dirs() {
        let (rt, me, port) = setup(&dir);
        assert_eq!(control(&rt, me.pid(), &port, 3, "1000 2000"), "1000 2000");
        // A control holds the port's lock for 600 ms ...
        let holder = {
            let (rt, pid) = (rt.clone(), *me.pid());
            std::thread::spawn(move || control(&rt, &pid, &port, 6, "600"))
        };
        std::thread::sleep(Duration::from_millis(100));
        // ... so this 3000-byte command waits, queued: above the high limit.
        let queued = {
            let (rt, pid) = (rt.clone(), *me.pid());
            std::thread::spawn(move || rt.port_command_bytes(&pid, &port, &[b'q'; 3000]))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            rt.port_command_with(me.pid(), &port, &binary(b"e"), NOSUSPEND),
            Ok(false),
            "the message queue is busy"
        );
        assert_eq!(holder.join().expect("holder"), "ok");
        assert_eq!(queued.join().expect("queued"), Ok(()));
        // The queued command reached the port: the queue is empty, not busy.
        assert_eq!(
            rt.port_command_with(me.pid(), &port, &binary(b"e"), NOSUSPEND),
            Ok(true)
        );
        assert_eq!(next_data(&rt, &me).len(), 3000);
        assert_eq!(next_data(&rt, &me), "e");
        rt.port_close(me.pid(), &port).expect("closes");
    }
}
