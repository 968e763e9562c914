//! Port timers and async jobs through the C API, with `timer_drv` and `async_drv` (see their
//! header comments for the control commands), built against both headers: what the
//! differential scenarios cannot show (exact read values, races, loads, pool sizes other than
//! BEAM's default, `driver_async_cancel`).

mod support;

use std::time::{Duration, Instant};

use ddll::{Runtime, RuntimeOptions, Term};

/// async_drv counts jobs in static variables, shared by every runtime of this process that
/// loads the same library: tests that read the counts run one at a time.
static ASYNC_COUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn counts_lock() -> std::sync::MutexGuard<'static, ()> {
    ASYNC_COUNTS.lock().unwrap_or_else(|e| e.into_inner())
}

use support::{text, Fixture};

/// The next `{Port, {data, Text}}` within `ms`, skipping exit messages.
fn data(fx: &Fixture, ms: u64) -> Option<(ddll::Port, String)> {
    let is_data = |t: ddll::FlatRef<'_>| {
        t.tuple().is_some_and(|mut items| {
            items.len() == 2 && items.next().and_then(|p| p.port()).is_some()
        })
    };
    let message = fx
        .me
        .receive_matching(Some(Duration::from_millis(ms)), is_data)?;
    let Term::Tuple(items) = message.into_term() else {
        unreachable!("matched a tuple")
    };
    let (Term::Port(port), Term::Tuple(data)) = (&items[0], &items[1]) else {
        panic!("not a data message: {items:?}");
    };
    Some((*port, text(&data[1]).expect("text data")))
}

/// Driver-wide job counts of async_drv: (submitted, invoked, readied, freed, ended, twice).
fn job_counts(fx: &Fixture, port: &ddll::Port) -> [u64; 6] {
    let reply = fx.control(port, 4, "");
    let numbers: Vec<u64> = reply
        .split(' ')
        .map(|n| n.parse().expect("a count"))
        .collect();
    numbers.try_into().expect("six counts")
}

/// Waits until every submitted job has ended, then returns the counts since `base` (the
/// counts are the library's, which earlier tests may have loaded already).
fn settled_counts(fx: &Fixture, port: &ddll::Port, base: [u64; 6]) -> [u64; 6] {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counts = job_counts(fx, port);
        if counts[0] == counts[4] || Instant::now() > deadline {
            return std::array::from_fn(|i| counts[i] - base[i]);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn read_timer_reports_what_is_left_never_more_than_set() {
    for dir in support::driver_dirs() {
        let fx = Fixture::new(&dir, 1, &["timer_drv"]);
        let port = fx.open("timer_drv");
        fn check(fx: &Fixture, port: &ddll::Port, set_ms: u64) {
            assert_eq!(fx.control(port, 1, &set_ms.to_string()), "0");
            let reply = fx.control(port, 4, "");
            let (rc, left) = reply.split_once(' ').expect("RC LEFT");
            let left: u64 = left.parse().expect("a number");
            assert_eq!(rc, "0");
            assert!(left <= set_ms, "set {set_ms}, read {left}");
            assert!(
                left + 1000 > set_ms,
                "set {set_ms}, read {left}: a second gone?"
            );
            assert_eq!(fx.control(port, 2, ""), "0");
            assert_eq!(fx.control(port, 4, ""), "0 0", "cancelled: nothing left");
        }
        for set_ms in [1_000, 60_000, 3_600_000, 86_400_000 * 30] {
            check(&fx, &port, set_ms);
        }
        // Beyond the clock's range: still a pending timer, not "no timer".
        assert_eq!(fx.control(&port, 1, &u64::MAX.to_string()), "0");
        let reply = fx.control(&port, 4, "");
        let left: u64 = reply.strip_prefix("0 ").expect("RC 0").parse().expect("ms");
        assert!(left > 1 << 40, "{left} ms left");
        assert_eq!(fx.control(&port, 2, ""), "0");
        assert_eq!(data(&fx, 50), None, "cancelled timers never fire");
    }
}

#[test]
fn many_ports_each_time_out_once_and_never_early() {
    for dir in support::driver_dirs() {
        let fx = Fixture::new(&dir, 1, &["timer_drv"]);
        let ports: Vec<ddll::Port> = (0..60).map(|_| fx.open("timer_drv")).collect();
        let mut expected = std::collections::HashMap::new();
        let mut armed_at = std::collections::HashMap::new();
        for (i, port) in ports.iter().enumerate() {
            let delay = (i as u64 % 7) * 6 + 1;
            armed_at.insert(*port, (Instant::now(), delay));
            assert_eq!(fx.control(port, 1, &delay.to_string()), "0");
            if i % 3 == 0 {
                assert_eq!(fx.control(port, 2, ""), "0");
            } else {
                expected.insert(*port, "timeout 1".to_owned());
            }
        }
        let mut got = std::collections::HashMap::new();
        while got.len() < expected.len() {
            let (port, text) = data(&fx, 5_000).expect("every armed timer fires");
            let (at, delay) = armed_at[&port];
            assert!(
                at.elapsed() >= Duration::from_millis(delay),
                "a {delay} ms timer fired early"
            );
            assert!(got.insert(port, text).is_none(), "{port:?} timed out twice");
        }
        assert_eq!(got, expected);
        assert_eq!(data(&fx, 100), None, "no further timeouts");
    }
}

#[test]
fn a_timer_replaced_or_cancelled_as_it_expires_never_fires() {
    for dir in support::driver_dirs() {
        let fx = Fixture::new(&dir, 1, &["timer_drv"]);
        let port = fx.open("timer_drv");
        // The 0 ms timer is due at once, so the timer thread races the replacement; the
        // driver's next call runs under the same callback lock as its timeout would.
        for round in 0..200 {
            assert_eq!(fx.control(&port, 10, "60000"), "0 0", "round {round}");
            if round % 4 == 0 {
                // Give the timer thread time to expire the 0 ms entry before the next call.
                std::thread::sleep(Duration::from_millis(2));
            }
            assert_eq!(fx.control(&port, 8, "0"), "0 0", "round {round}");
        }
        assert_eq!(data(&fx, 50), None);
        assert_eq!(fx.control(&port, 5, ""), "0", "no timeout ran");
        // The last 0 ms timer was cancelled too; a fresh one still works.
        assert_eq!(fx.control(&port, 1, "0"), "0");
        assert_eq!(
            data(&fx, 5_000).map(|(_, t)| t).as_deref(),
            Some("timeout 1")
        );
    }
}

#[test]
fn closing_ports_cancels_their_timers_and_releases_the_driver() {
    for dir in support::driver_dirs() {
        let fx = Fixture::new(&dir, 1, &["timer_drv"]);
        let ports: Vec<ddll::Port> = (0..40).map(|_| fx.open("timer_drv")).collect();
        // The short timers are long enough to outlast setting them all and closing the ports
        // (under memcheck too, which runs this tens of times slower), and the wait below is
        // longer than they are: one that fired would have been seen.
        for (i, port) in ports.iter().enumerate() {
            let delay = if i % 2 == 0 { "1500" } else { "600000" };
            assert_eq!(fx.control(port, 1, delay), "0");
        }
        for port in &ports {
            fx.rt.port_close(fx.me.pid(), port).expect("closes");
        }
        assert_eq!(data(&fx, 2_500), None, "a closed port's timer never fires");
        fx.rt
            .try_unload(fx.me.pid(), "timer_drv", Default::default())
            .expect("unloads");
        assert!(
            fx.rt.loaded_drivers().is_empty(),
            "no timer keeps the driver: {:?}",
            fx.rt.loaded_drivers()
        );
    }
}

#[test]
fn async_round_trips_on_pools_of_several_sizes() {
    let _counts = counts_lock();
    for dir in support::driver_dirs() {
        for (threads, kind) in [(0, "ran"), (1, "queued"), (4, "queued")] {
            let fx = Fixture::new(&dir, threads, &["async_drv"]);
            let port = fx.open("async_drv");
            let base = job_counts(&fx, &port);
            assert_eq!(fx.control(&port, 8, ""), threads.to_string());
            assert_eq!(fx.control(&port, 1, "hello"), kind);
            assert_eq!(
                data(&fx, 5_000).map(|(_, t)| t).as_deref(),
                Some("done:olleh")
            );
            let reply = fx.control(&port, 2, "keyed");
            let (got_kind, queue) = reply.split_once(' ').expect("KIND KEY");
            assert_eq!(got_kind, kind, "{threads} threads");
            let queue: usize = queue.parse().expect("a queue index");
            assert!(queue < threads.max(1), "queue {queue} of {threads}");
            assert_eq!(
                data(&fx, 5_000).map(|(_, t)| t).as_deref(),
                Some("done:deyek")
            );
            assert_eq!(
                settled_counts(&fx, &port, base),
                [2, 2, 2, 0, 2, 0],
                "{threads} threads"
            );
        }
    }
}

#[test]
fn async_blast_over_many_ports_ends_every_job_once_and_keeps_key_order() {
    let _counts = counts_lock();
    for dir in support::driver_dirs() {
        let fx = Fixture::new(&dir, 4, &["async_drv"]);
        let ports: Vec<ddll::Port> = (0..12).map(|_| fx.open("async_drv")).collect();
        let base = job_counts(&fx, &ports[0]);
        for port in &ports {
            assert_eq!(fx.control(port, 6, "800"), "ok");
        }
        for _ in &ports {
            let (_, text) = data(&fx, 20_000).expect("every blast completes");
            assert_eq!(text, "blast 800 disorder 0");
        }
        let jobs = 12 * 800;
        assert_eq!(
            settled_counts(&fx, &ports[0], base),
            [jobs, jobs, jobs, 0, jobs, 0],
            "submitted invoked readied freed ended twice"
        );
    }
}

#[test]
fn jobs_outliving_their_ports_are_freed_exactly_once() {
    let _counts = counts_lock();
    for dir in support::driver_dirs() {
        let fx = Fixture::new(&dir, 2, &["async_drv"]);
        let observer = fx.open("async_drv");
        let base = job_counts(&fx, &observer);
        for _ in 0..8 {
            let port = fx.open("async_drv");
            // A slow job ahead of a backlog, then the port goes.
            assert_eq!(fx.control(&port, 3, "20"), "queued");
            assert_eq!(fx.control(&port, 6, "200"), "ok");
            fx.rt.port_close(fx.me.pid(), &port).expect("closes");
        }
        let [submitted, invoked, readied, freed, ended, twice] =
            settled_counts(&fx, &observer, base);
        assert_eq!(submitted, 8 * 201);
        assert_eq!(invoked, submitted, "every job ran");
        assert_eq!(readied + freed, submitted, "each ended through one path");
        assert!(freed > 0, "closed ports' jobs reach async_free");
        assert_eq!((ended, twice), (submitted, 0));
        assert_eq!(
            data(&fx, 50),
            None,
            "no ready_async output for a closed port"
        );
    }
}

#[test]
fn async_cancel_withdraws_only_a_job_not_started() {
    let _counts = counts_lock();
    for dir in support::driver_dirs() {
        let fx = Fixture::new(&dir, 1, &["async_drv"]);
        let port = fx.open("async_drv");
        let base = job_counts(&fx, &port);
        // A 200 ms job holds the port's thread; the quick job behind it is withdrawn once.
        assert_eq!(fx.control(&port, 7, ""), "1 0 0");
        assert_eq!(
            data(&fx, 5_000).map(|(_, t)| t).as_deref(),
            Some("slept 200")
        );
        let [submitted, invoked, readied, freed, ended, twice] = settled_counts(&fx, &port, base);
        assert_eq!(
            [submitted, invoked, readied, freed, ended, twice],
            [2, 1, 1, 1, 2, 0],
            "the cancelled job was freed, never invoked"
        );
        assert_eq!(
            data(&fx, 50),
            None,
            "the cancelled job never reaches ready_async"
        );
    }
}

#[test]
fn a_pool_above_beams_maximum_is_refused() {
    let refused = Runtime::with_options(".", RuntimeOptions::default().async_threads(1025));
    assert!(matches!(refused, Err(ddll::Error::AsyncThreads(1025))));
}
