//! `driver_select` through the C API with `select_drv` (see its header comment for the control
//! codes), built against both headers: the races the differential scenarios cannot pin down —
//! a deselect while the poll thread has an event in hand, ports closing while selected and
//! reported, and a `stop_select` deferred behind a running `ready_input`, also across an
//! unload of the driver.

mod support;

use std::time::{Duration, Instant};

use ddll::{Term, UnloadOptions};

/// select_drv counts `stop_select` calls in static variables, shared by every runtime of this
/// process that loads the same library: the tests run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

use support::{text, Fixture};

/// `stop_select` calls so far (all ports of the library).
fn stops(fx: &Fixture, port: &ddll::Port) -> u64 {
    let reply = fx.control(port, 7, "");
    reply
        .strip_prefix("stops ")
        .and_then(|n| n.parse().ok())
        .expect("stops N")
}

/// A runtime with select_drv loaded from `dir`.
fn fixture(dir: &std::path::Path) -> Fixture {
    Fixture::new(dir, 1, &["select_drv"])
}

/// `{Port, {data, Text}}`'s text.
fn data_text(message: &Term) -> Option<String> {
    match message {
        Term::Tuple(items) if items.len() == 2 => match &items[1] {
            Term::Tuple(data) if data.len() == 2 => text(&data[1]),
            _ => None,
        },
        _ => None,
    }
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor table; an unknown number fails with EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

#[test]
fn a_deselect_while_the_poll_thread_has_the_event_in_hand_is_never_delivered() {
    let _serial = serial();
    for dir in support::driver_dirs() {
        let fx = fixture(&dir);
        let port = fx.open("select_drv read");
        for round in 0..40 {
            // Writes (the poller reports the pipe at once and the poll thread waits for the
            // port's callback lock, held by this control), waits 30 ms, deselects.
            assert_eq!(fx.control(&port, 23, "x"), "0");
            assert_eq!(
                fx.message(20),
                None,
                "round {round}: ready_input ran after the deselect"
            );
            // Drain the byte for the next round: select, get it, deselect.
            assert_eq!(fx.control(&port, 2, ""), "0");
            let got = fx.message(2000).and_then(|m| data_text(&m));
            assert_eq!(got.as_deref(), Some("in:x"), "round {round}");
            assert_eq!(fx.control(&port, 3, ""), "0");
        }
    }
}

#[test]
fn a_port_closed_while_reported_gets_no_more_events_and_releases_in_stop() {
    let _serial = serial();
    for dir in support::driver_dirs() {
        let fx = fixture(&dir);
        let witness = fx.open("select_drv");
        let before = stops(&fx, &witness);
        let rounds = 60;
        for _ in 0..rounds {
            let port = fx.open("select_drv read");
            // Ready for reading and writing, then closed at once: whatever the poll thread
            // has reported must not reach the closed port.
            assert_eq!(fx.control(&port, 5, ""), "0");
            assert_eq!(fx.control(&port, 1, "data"), "wrote 4");
            fx.rt.port_close(fx.me.pid(), &port).expect("closes");
        }
        // Every port's messages end with its 'EXIT'; none comes after it.
        let mut closed = std::collections::HashSet::new();
        while let Some(message) = fx.message(300) {
            let Term::Tuple(items) = &message else {
                panic!("unexpected {message:?}");
            };
            match (&items[0], &items[1]) {
                (Term::Atom(a), Term::Port(p)) if a.as_str() == "EXIT" => {
                    assert!(closed.insert(*p), "two exits of {p:?}");
                }
                (Term::Port(p), _) => {
                    assert!(!closed.contains(p), "{message:?} after the port's exit")
                }
                _ => panic!("unexpected {message:?}"),
            }
        }
        assert_eq!(closed.len(), rounds);
        // Each stop released both ends: two stop_select calls per port.
        assert_eq!(stops(&fx, &witness) - before, 2 * rounds as u64);
    }
}

#[test]
fn stop_select_waits_for_a_ready_input_running_on_the_descriptor() {
    let _serial = serial();
    for dir in support::driver_dirs() {
        let fx = fixture(&dir);
        // select_drv uses port-level locking: B's callbacks run while A's ready_input does.
        let a = fx.open("select_drv read keep");
        let b = fx.open("select_drv");
        let fd: i32 = fx.control(&a, 24, "").parse().expect("fd");
        assert_eq!(fx.control(&a, 14, ""), "ok");
        assert_eq!(fx.control(&a, 20, "400"), "ok");
        let before = stops(&fx, &b);
        assert_eq!(fx.control(&a, 1, "slow"), "wrote 4");
        // A's ready_input is now sleeping on the poll thread, before its read.
        std::thread::sleep(Duration::from_millis(100));
        // B releases the descriptor: stop_select (which closes it) must wait.
        assert_eq!(fx.control(&b, 22, ""), "0 0", "deferred, not run at once");
        assert!(is_open(fd), "not closed under the running ready_input");
        let got = fx.message(3000).and_then(|m| data_text(&m));
        assert_eq!(
            got.as_deref(),
            Some("in:slow"),
            "the read found its pipe open"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while stops(&fx, &b) == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            stops(&fx, &b),
            before + 1,
            "stop_select ran once, afterwards"
        );
        assert!(!is_open(fd), "stop_select closed it");
    }
}

#[test]
fn an_unload_waits_for_a_pending_stop_select() {
    let _serial = serial();
    for dir in support::driver_dirs() {
        let fx = fixture(&dir);
        let a = fx.open("select_drv read keep");
        let b = fx.open("select_drv");
        let fd: i32 = fx.control(&a, 24, "").parse().expect("fd");
        assert_eq!(fx.control(&a, 14, ""), "ok");
        assert_eq!(fx.control(&a, 20, "400"), "ok");
        // A's ready_input fails its port after reading: A closes inside its own callback.
        assert_eq!(fx.control(&a, 25, ""), "ok");
        assert_eq!(fx.control(&a, 1, "bye"), "wrote 3");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(fx.control(&b, 22, ""), "0 0", "deferred");
        fx.rt.port_close(fx.me.pid(), &b).expect("B closes");
        // The last port (A) closes inside the delivery; the driver's unload must wait for the
        // stop_select after it (a library closed first would crash this process).
        let unloading = fx
            .rt
            .try_unload(fx.me.pid(), "select_drv", UnloadOptions::default());
        assert!(unloading.is_ok(), "{unloading:?}");
        assert_eq!(fx.rt.loaded_drivers(), vec!["select_drv".to_owned()]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !fx.rt.loaded_drivers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(fx.rt.loaded_drivers().is_empty(), "unloaded in the end");
        assert!(!is_open(fd), "stop_select ran (it closes the descriptor)");
        let mut texts = Vec::new();
        while let Some(m) = fx.message(100) {
            texts.push(data_text(&m).unwrap_or_else(|| format!("{m}")));
        }
        assert!(texts.iter().any(|t| t == "in:bye"), "{texts:?}");
    }
}

/// Many ports selecting their pipes while threads write into them at once (what OTP's
/// driver_SUITE smp_select checks): every port's `ready_input` gets all its bytes, in the
/// order written, and nothing of another port's.
#[test]
fn ports_written_from_many_threads_read_everything_in_order() {
    const PORTS: usize = 6;
    const WRITES: usize = 200;
    let _serial = serial();
    for dir in support::driver_dirs() {
        let fx = fixture(&dir);
        let ports: Vec<ddll::Port> = (0..PORTS).map(|_| fx.open("select_drv read")).collect();
        let expected: Vec<String> = (0..PORTS)
            .map(|p| (0..WRITES).map(|w| format!("{p}:{w};")).collect())
            .collect();
        std::thread::scope(|scope| {
            for pair in ports.chunks(2).enumerate() {
                let (index, pair) = pair;
                let rt = &fx.rt;
                scope.spawn(move || {
                    let me = rt.spawn(None);
                    for w in 0..WRITES {
                        for (k, port) in pair.iter().enumerate() {
                            let data = format!("{}:{w};", index * 2 + k);
                            let data = Term::Binary(bytes::Bytes::from(data.into_bytes()));
                            rt.port_control(me.pid(), port, 1, &data)
                                .expect("the write succeeds");
                        }
                    }
                });
            }
        });
        let mut got = vec![String::new(); PORTS];
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.iter().zip(&expected).any(|(g, e)| g.len() < e.len()) {
            assert!(Instant::now() < deadline, "not everything came: {got:?}");
            let Some(message) = fx.message(1000) else {
                continue;
            };
            let Term::Tuple(items) = &message else {
                panic!("not a port message: {message}");
            };
            let Term::Port(from) = &items[0] else {
                panic!("not a port message: {message}");
            };
            let index = ports.iter().position(|p| p == from).expect("one of ours");
            let text = data_text(&message).expect("data");
            got[index].push_str(text.strip_prefix("in:").expect("in:BYTES"));
        }
        assert_eq!(got, expected);
        for port in &ports {
            fx.rt.port_close(fx.me.pid(), port).expect("closes");
        }
    }
}
