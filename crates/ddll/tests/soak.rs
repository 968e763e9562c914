//! Soak: every capability of the runtime at once, for a set time, checking as it goes.
//!
//! Owner threads each run rounds: a fresh process loads the example drivers and opens a port
//! on each, then, step after step, sends commands, controls and calls to `echo_drv` (every
//! echo must come back once and in order), term output from `term_drv`, port timers of
//! `timer_drv` (each timeout once, numbered in order; a timer set and cancelled never fires),
//! async jobs of `async_drv` (every job reported done once, some cancelled), writes to the pipe
//! `select_drv` polls (every write read back), monitors from `monitor_drv` of processes that
//! die (every death reported), ports `create_port_drv` creates (each announced, echoing,
//! closed), and `queue_drv`'s port queue, used by its callbacks and by a driver thread under
//! the port data lock. A round ends by killing the owner (its ports die with it, its jobs are freed) or by
//! closing its ports and unloading. Meanwhile a reloader thread loads, reloads and unloads
//! `echov_drv` with `kill_ports` while its ports run. The main thread samples the RSS
//! (`/proc/self/statm`): it must stay flat after the warm-up. At the end every job has ended
//! exactly once (async_drv's counts), and no port, driver or library is left.
//!
//! `DDLL_SOAK_SECONDS` (default 5) sets the time; `cargo xtask soak [SECONDS] [--valgrind]`
//! runs it longer, or under memcheck. `DDLL_SOAK_WAIT_MS` (default 10 s) is how long a reply
//! may take before it counts as lost (longer under valgrind).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddll::{Atom, LoadOptions, Pending, Port, Process, Runtime, Term, UnloadOptions};
use support::text;

const OWNER_DRIVERS: [&str; 8] = [
    "echo_drv",
    "timer_drv",
    "async_drv",
    "term_drv",
    "select_drv",
    "monitor_drv",
    "create_port_drv",
    "queue_drv",
];
const OWNERS: u64 = 3;
const STEPS_PER_ROUND: u64 = 12;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the run did, for the report (and to show it did real work).
#[derive(Debug, Default)]
struct Counts {
    rounds: AtomicU64,
    owners_killed: AtomicU64,
    messages: AtomicU64,
    controls: AtomicU64,
    calls: AtomicU64,
    timeouts: AtomicU64,
    jobs: AtomicU64,
    cancels: AtomicU64,
    selects: AtomicU64,
    monitors: AtomicU64,
    created: AtomicU64,
    terms: AtomicU64,
    queue_workers: AtomicU64,
    reloads: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's resident field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).expect("a positive page size")
}

fn bin(s: &str) -> Term {
    Term::Binary(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

/// One owner process and what it waits for.
struct Owner<'a> {
    rt: &'a Runtime,
    me: Arc<Process>,
    wait: Duration,
    counts: &'a Counts,
}

impl Owner<'_> {
    fn control(&self, port: &Port, op: u32, data: &str) -> String {
        let reply = self
            .rt
            .port_control(self.me.pid(), port, op, &bin(data))
            .unwrap_or_else(|e| panic!("control {op} {data:?}: {e:?}"));
        bump(&self.counts.controls);
        text(&reply).expect("a text reply")
    }

    /// The next message from `port` (a tuple whose first element it is) that `matches`;
    /// panics when none comes in time: a lost message.
    fn message_from(&self, port: &Port, what: &str, matches: impl Fn(&Term) -> bool) -> Term {
        let message = self
            .me
            .receive_matching(Some(self.wait), |t| {
                let t = t.to_term();
                matches!(&t, Term::Tuple(items) if items.first() == Some(&Term::Port(*port)))
                    && matches(&t)
            })
            .map(Term::from)
            .unwrap_or_else(|| panic!("lost: {what} from {port:?} within {:?}", self.wait));
        bump(&self.counts.messages);
        message
    }

    /// The next `{Port, {data, Text}}` whose text starts with `prefix`.
    fn data(&self, port: &Port, prefix: &str) -> String {
        let message = self.message_from(port, prefix, |t| {
            data_text(t).is_some_and(|d| d.starts_with(prefix))
        });
        data_text(&message).expect("matched data")
    }
}

/// The text of a `{Port, {data, Data}}` message.
fn data_text(message: &Term) -> Option<String> {
    let Term::Tuple(items) = message else {
        return None;
    };
    let Some(Term::Tuple(data)) = items.get(1) else {
        return None;
    };
    match data.as_slice() {
        [Term::Atom(tag), payload] if tag.as_str() == "data" => text(payload),
        _ => None,
    }
}

/// One round of one owner: `STEPS_PER_ROUND` steps of everything, then death or a clean end.
fn round(rt: &Runtime, dir: &str, seed: u64, wait: Duration, counts: &Counts) {
    let me = rt.spawn(Some("soak_owner"));
    let owner = Owner {
        rt,
        me,
        wait,
        counts,
    };
    let pid = *owner.me.pid();
    for driver in OWNER_DRIVERS {
        rt.try_load(&pid, dir, driver, LoadOptions::default())
            .unwrap_or_else(|e| panic!("{driver} loads: {e:?}"));
    }
    let open = |command: &str| {
        rt.open_port(&pid, command, Default::default())
            .unwrap_or_else(|e| panic!("{command} opens: {e:?}"))
    };
    let (echo, timer, jobs, term) = (
        open("echo_drv"),
        open("timer_drv"),
        open("async_drv"),
        open("term_drv"),
    );
    let (select, monitor, creator) = (
        open("select_drv read"),
        open("monitor_drv"),
        open("create_port_drv"),
    );
    // A driver thread works on the port's queue under its data lock while callbacks use it.
    let queue = open("queue_drv");
    assert_eq!(
        owner.control(&queue, u32::from(b'l'), ""),
        "first=ok second=null"
    );
    assert_eq!(owner.control(&queue, u32::from(b't'), "300"), "started=0");
    let mut echoed = 0u64;
    let mut timeouts = 0u64;
    for step in 0..STEPS_PER_ROUND {
        // Commands: every echo once, in the order sent (one sender: this owner).
        for _ in 0..4 {
            echoed += 1;
            rt.port_command_bytes(&pid, &echo, format!("seq:{echoed}").as_bytes())
                .expect("echo command");
        }
        for expected in echoed - 3..=echoed {
            let got = owner.data(&echo, "seq:");
            assert_eq!(got, format!("seq:{expected}"), "echo lost or reordered");
        }
        assert_eq!(owner.control(&echo, 2, "soak"), "SOAK");
        let calls = rt
            .port_call(&pid, &echo, 3, &Term::Atom(Atom::new("n")))
            .expect("port_call");
        bump(&counts.calls);
        assert!(matches!(calls, Term::Tuple(_)), "{{calls, N}}: {calls}");

        // A timer fires once, numbered after the last; one set and cancelled never fires.
        assert_eq!(owner.control(&timer, 8, "1"), "0 0");
        assert_eq!(owner.control(&timer, 1, "1"), "0");
        timeouts += 1;
        assert_eq!(owner.data(&timer, "timeout"), format!("timeout {timeouts}"));
        bump(&counts.timeouts);

        // Async jobs: each reported done once; now and then a cancel (of a queued job).
        let reply = owner.control(&jobs, 1, "abc");
        assert!(reply == "queued" || reply == "ran", "driver_async: {reply}");
        assert_eq!(owner.data(&jobs, "done:"), "done:cba");
        bump(&counts.jobs);
        if (seed + step) % 6 == 0 {
            assert_eq!(owner.control(&jobs, 7, ""), "1 0 0", "cancel once");
            assert_eq!(owner.data(&jobs, "slept"), "slept 200");
            bump(&counts.cancels);
        }

        // Queue calls from a callback (given the data lock) race the worker thread's.
        let enq = owner.control(&queue, u32::from(b'e'), "abc");
        assert!(enq.starts_with("rc=0 "), "driver_enq: {enq}");
        owner.control(&queue, u32::from(b'd'), "all");

        // Term output: one term per control.
        assert_eq!(owner.control(&term, 1, "atom"), "1");
        // The "atom" case's term is the bare atom `hello`.
        let hello = Term::Atom(Atom::new("hello"));
        owner
            .me
            .receive_matching(Some(wait), |t| t.to_term() == hello)
            .expect("lost: term_drv's atom");
        bump(&counts.terms);

        // Select: what is written to the pipe is read back by ready_input.
        assert_eq!(owner.control(&select, 1, "x"), "wrote 1");
        assert_eq!(owner.data(&select, "in:"), "in:x");
        bump(&counts.selects);

        // A monitored process dies: the driver hears of it once.
        let victim = rt.spawn(Some("soak_victim"));
        let rc = rt
            .port_control(victim.pid(), &monitor, 1, &bin("0"))
            .expect("monitor control");
        assert_eq!(text(&rc).as_deref(), Some("0"), "monitored");
        rt.exit(victim.pid(), Term::Atom(Atom::new("kill")));
        owner.message_from(&monitor, "process_exit", |t| {
            matches!(t, Term::Tuple(items) if items.get(1) == Some(&Term::Atom(Atom::new("process_exit"))))
        });
        bump(&counts.monitors);

        // A created port announces itself, echoes, and closes.
        let name = format!("made{step}");
        assert_eq!(owner.control(&creator, 1, &name), "ok");
        let created = owner
            .me
            .receive_matching(Some(wait), |t| {
                matches!(t.to_term(), Term::Tuple(items) if items.len() == 3
                    && items[1] == Term::Atom(Atom::new("created")))
            })
            .map(Term::from);
        let Some(Term::Tuple(items)) = created else {
            panic!("lost: the created port's announcement");
        };
        let Term::Port(made) = items[0] else {
            panic!("not a port: {}", items[0]);
        };
        rt.port_command_bytes(&pid, &made, b"hi")
            .expect("command to a created port");
        assert_eq!(owner.data(&made, "hi"), "hi");
        rt.port_close(&pid, &made).expect("created port closes");
        bump(&counts.created);
    }
    assert_eq!(
        owner.control(&queue, u32::from(b'w'), ""),
        "rounds=300 fails=0",
        "the worker's queue calls under the data lock"
    );
    bump(&counts.queue_workers);
    // A last batch of jobs left in flight: killed or closed, each still ends exactly once.
    owner.control(&jobs, 6, "8");
    bump(&counts.rounds);
    if seed % 2 == 0 {
        bump(&counts.owners_killed);
        rt.exit(&pid, Term::Atom(Atom::new("kill")));
    } else {
        for port in [echo, timer, jobs, term, select, monitor, creator, queue] {
            rt.port_close(&pid, &port).expect("port closes");
        }
        for driver in OWNER_DRIVERS {
            rt.try_unload(&pid, driver, UnloadOptions::default())
                .unwrap_or_else(|e| panic!("{driver} unloads: {e:?}"));
        }
        rt.exit(&pid, Term::Atom(Atom::new("normal")));
    }
}

/// Loads, reloads and unloads `echov_drv` (killing its ports) while they are used.
fn reloader(rt: &Runtime, dir: &str, stop: &AtomicBool, counts: &Counts) {
    let me = rt.spawn(Some("soak_reloader"));
    let pid = *me.pid();
    let kill_ports = LoadOptions {
        kill_ports: true,
        ..LoadOptions::default()
    };
    while !stop.load(Ordering::Relaxed) {
        rt.try_load(&pid, dir, "echov_drv", kill_ports)
            .expect("echov_drv loads");
        let port = rt
            .open_port(&pid, "echov_drv", Default::default())
            .expect("echov_drv opens");
        for _ in 0..4 {
            // The reload below may kill the port at any time: errors are expected then.
            let _ = rt.port_command_bytes(&pid, &port, b"reload");
        }
        let reload = LoadOptions {
            kill_ports: true,
            monitor: Some(Pending::PendingDriver),
            reload: Some(Pending::Pending),
        };
        if rt.try_load(&pid, dir, "echov_drv", reload).is_ok() {
            bump(&counts.reloads);
        }
        let unload = UnloadOptions {
            kill_ports: true,
            monitor: None,
        };
        let _ = rt.try_unload(&pid, "echov_drv", unload);
        while me.receive(Some(Duration::ZERO)).is_some() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.exit(&pid, Term::Atom(Atom::new("kill")));
}

#[test]
fn everything_at_once_loses_nothing_and_leaks_nothing() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    // A private copy: another test process rebuilding the shared driver folder (build.sh
    // replaces each library) would make a load of this long run fail in between.
    let private = tempfile::tempdir().expect("a temporary folder");
    for name in OWNER_DRIVERS.iter().chain(&["echov_drv"]) {
        let file = format!("{name}.so");
        std::fs::copy(drivers.join(&file), private.path().join(&file))
            .unwrap_or_else(|e| panic!("copying {file}: {e}"));
    }
    let dir = private.path().to_string_lossy().into_owned();
    let seconds = env_number("DDLL_SOAK_SECONDS", 5);
    let wait = Duration::from_millis(env_number("DDLL_SOAK_WAIT_MS", 10_000));
    let rt = Runtime::with_options(".", ddll::RuntimeOptions::default().async_threads(2))
        .expect("runtime");
    // The keeper holds a load of async_drv for the whole run, so its job counts (statics of
    // the library) cover every job.
    let keeper = rt.spawn(Some("soak_keeper"));
    rt.try_load(keeper.pid(), &dir, "async_drv", LoadOptions::default())
        .expect("async_drv loads");
    let counter = rt
        .open_port(keeper.pid(), "async_drv", Default::default())
        .expect("async_drv opens");
    let job_counts = || -> Vec<u64> {
        let reply = rt
            .port_control(keeper.pid(), &counter, 4, &bin(""))
            .expect("counts");
        text(&reply)
            .expect("text")
            .split(' ')
            .map(|n| n.parse().expect("a count"))
            .collect()
    };
    let base = job_counts();
    let counts = Counts::default();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let rss_start = rss();
    let mut rss_warm = None;
    let mut rss_peak = rss_start;
    std::thread::scope(|scope| {
        let owners: Vec<_> = (0..OWNERS)
            .map(|t| {
                let (rt, dir, counts) = (&rt, &dir, &counts);
                scope.spawn(move || {
                    let mut seed = t;
                    while Instant::now() < deadline {
                        round(rt, dir, seed, wait, counts);
                        seed += OWNERS;
                    }
                })
            })
            .collect();
        let reloading = scope.spawn(|| reloader(&rt, &dir, &stop, &counts));
        // Samples: the warm-up is the first quarter of the run.
        while owners.iter().any(|o| !o.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            let now = rss();
            rss_peak = rss_peak.max(now);
            if rss_warm.is_none() && start.elapsed() * 4 >= Duration::from_secs(seconds) {
                rss_warm = Some(now);
            }
        }
        stop.store(true, Ordering::Relaxed);
        for owner in owners {
            owner
                .join()
                .expect("an owner thread ends without a failed check");
        }
        reloading.join().expect("the reloader ends");
    });
    // Every job ended exactly once (in ready_async, or in async_free for the killed owners'
    // and the cancelled ones); they end asynchronously, so wait for the last ones.
    let settle = Instant::now() + wait;
    let mut jobs = job_counts();
    while jobs[0] != jobs[4] && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(10));
        jobs = job_counts();
    }
    let delta: Vec<u64> = jobs.iter().zip(&base).map(|(n, b)| n - b).collect();
    let rss_end = rss();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "soak: {seconds} s, {counts:?}\nsoak: jobs submitted/invoked/readied/freed/ended/twice \
         {delta:?}\nsoak: RSS start {:.1} MiB, after warm-up {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
        mib(rss_start),
        mib(rss_warm.unwrap_or(rss_start)),
        mib(rss_peak),
        mib(rss_end)
    );
    assert!(counts.rounds.load(Ordering::Relaxed) > 0, "no round ran");
    assert_eq!(delta[0], delta[4], "every submitted job ended: {delta:?}");
    assert_eq!(delta[5], 0, "no job ended twice: {delta:?}");
    if std::env::var_os("DDLL_SOAK_NO_RSS").is_none() {
        // Flat: after the warm-up, growth stays under half the warm figure, at least 8 MiB
        // (allocator noise). Measured: 5.5 -> 5.3 MiB over 600 s; with dead processes kept in
        // the process table, 9.8 -> 22.4 MiB over 1,500 s, which this rejects.
        let warm = rss_warm.unwrap_or(rss_start);
        let slack = (warm / 2).max(8 << 20);
        assert!(
            rss_end <= warm + slack,
            "RSS grew from {:.1} MiB to {:.1} MiB",
            mib(warm),
            mib(rss_end)
        );
    }
    rt.exit(keeper.pid(), Term::Atom(Atom::new("kill")));
    assert_eq!(rt.ports(), Vec::<Port>::new(), "no port is left");
    assert_eq!(
        rt.loaded_drivers(),
        Vec::<String>::new(),
        "no driver is left"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while drv_abi::driver::mapped_libraries() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        drv_abi::driver::mapped_libraries(),
        0,
        "every library is closed"
    );
}
