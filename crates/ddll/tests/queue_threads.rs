//! Driver threads using a port's queue under its port data lock while the port is commanded
//! from another thread and closed: `queue_drv`'s worker joined by `stop` (`$t`) and one that
//! outlives the port (`$u`). Also run under valgrind by `cargo xtask sanitize`.

mod support;

use std::time::Duration;

use ddll::{PortOptions, Runtime, Term};

fn text(s: &str) -> Term {
    Term::List(s.bytes().map(|b| Term::Int(i64::from(b))).collect())
}

/// What the worker that outlived its port did, from the driver's export.
#[derive(Debug)]
struct Detached {
    rounds: i32,
    fails: i64,
    revived: bool,
    last_refc: i64,
}

fn join_detached(library: &libloading::Library) -> Detached {
    type Join = unsafe extern "C" fn(*mut i64, *mut i32, *mut i64) -> i32;
    // SAFETY: queue_drv.c exports this symbol as a function of exactly this C signature.
    let join = unsafe { library.get::<Join>(b"queue_drv_join_detached\0") };
    let join = join.expect("exported");
    let (mut fails, mut revived, mut last_refc) = (0, 0, 0);
    // SAFETY: valid out-pointers; the function joins the driver's own thread.
    let rounds = unsafe { join(&mut fails, &mut revived, &mut last_refc) };
    Detached {
        rounds,
        fails,
        revived: revived != 0,
        last_refc,
    }
}

#[test]
fn driver_threads_share_the_queue_while_the_port_is_commanded_and_closed() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let rounds: usize = std::env::var("QUEUE_THREADS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("test"));
    let dir = drivers.to_string_lossy().into_owned();
    rt.try_load(me.pid(), &dir, "queue_drv", Default::default())
        .expect("loads");
    // The runtime already opened it: this is the same library, for the driver's export.
    // SAFETY: loading the driver library again runs no initialisers of its own.
    let library = unsafe { libloading::Library::new(drivers.join("queue_drv.so")) }.expect("opens");
    let control = |port: &ddll::Port, op: u8, args: &str| {
        rt.port_control(me.pid(), port, u32::from(op), &text(args))
            .map(|t| t.to_string())
    };
    for round in 0..rounds {
        let port = rt
            .open_port(me.pid(), "queue_drv", PortOptions::default())
            .expect("opens");
        assert_eq!(
            control(&port, b'l', ""),
            Ok("\"first=ok second=null\"".into())
        );
        assert_eq!(
            control(&port, b'u', "100000000"),
            Ok("\"started=0\"".into())
        );
        assert_eq!(control(&port, b't', "3000"), Ok("\"started=0\"".into()));
        for i in 0..200 {
            rt.port_command_bytes(me.pid(), &port, &[b'a' + (i % 26) as u8; 40])
                .expect("commands");
            if i % 10 == 0 {
                let peek = control(&port, b'q', "").expect("peeks");
                assert!(peek.starts_with("\"vlen_ok=yes"), "round {round}: {peek}");
            }
            if i % 50 == 49 {
                control(&port, b'd', "all").expect("dequeues");
            }
        }
        rt.port_close(me.pid(), &port).expect("closes");
        assert_eq!(
            rt.receive(me.pid(), Some(Duration::from_secs(5)))
                .map(|t| t.to_string()),
            Some(format!("{{'EXIT',{},normal}}", Term::Port(port)))
        );
        // The worker may have refilled the queue after flush: then the port is still
        // closing, and failing it ends it (else it is gone already: badarg).
        let _ = control(&port, b'F', "");
        assert_eq!(rt.port_info(&port).to_string(), "undefined");
        let detached = join_detached(&library);
        assert!(
            detached.rounds > 0 && detached.fails > 0 && !detached.revived,
            "round {round}: it ran, saw the port go, and never got it back: {detached:?}"
        );
        // Its reference was the last one, or the port's was still being dropped.
        assert!(
            (0..=1).contains(&detached.last_refc),
            "round {round}: {detached:?}"
        );
    }
}
