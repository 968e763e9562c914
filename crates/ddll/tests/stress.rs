//! Stress: several threads load, unload and reload the same drivers while they open ports on
//! them, command them and close them. Nothing may crash or hang, no callback may come after a
//! driver's `finish` (probe_drv aborts the process if one does), and at the end every driver
//! is unloaded and every driver library closed.
//!
//! `DDLL_STRESS_OPS` (operations per thread, default 300) and `DDLL_STRESS_THREADS` (default
//! 4) make it longer: `cargo xtask stress` runs it under valgrind that way.

mod support;

use std::time::{Duration, Instant};

use ddll::{Atom, LoadOptions, Pending, PortOptions, Runtime, Term, UnloadOptions};

/// A small deterministic generator (xorshift64*): each thread replays the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const DRIVERS: [&str; 2] = ["probe_drv", "echo_drv"];

/// What one worker's operations achieved (printed, so a run shows that it did real work).
#[derive(Debug, Default)]
struct Tally {
    loads: u64,
    unloads: u64,
    reloads: u64,
    opens: u64,
    commands: u64,
    controls: u64,
    closes: u64,
    messages: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.loads += other.loads;
        self.unloads += other.unloads;
        self.reloads += other.reloads;
        self.opens += other.opens;
        self.commands += other.commands;
        self.controls += other.controls;
        self.closes += other.closes;
        self.messages += other.messages;
    }
}

/// One thread's run: `ops` random operations by its own process.
fn worker(rt: &Runtime, dir: &str, seed: u64, ops: u64) -> Tally {
    let mut tally = Tally::default();
    let me = rt.spawn(Some("worker"));
    let pid = *me.pid();
    let mut rng = Rng(seed | 1);
    let mut ports: Vec<(ddll::Port, &str)> = Vec::new();
    let mut stragglers = 0;
    for _ in 0..ops {
        let name = DRIVERS[rng.below(2) as usize];
        match rng.below(12) {
            0 | 1 => {
                tally.loads +=
                    u64::from(rt.try_load(&pid, dir, name, LoadOptions::default()).is_ok());
            }
            2 => {
                let kill_ports = rng.below(2) == 0;
                let options = UnloadOptions {
                    kill_ports,
                    monitor: Some(Pending::PendingDriver),
                };
                tally.unloads += u64::from(rt.try_unload(&pid, name, options).is_ok());
            }
            3 => {
                // A reload needs a load of the caller's own, and the driver's kill_ports.
                let _ = rt.try_load(&pid, dir, name, LoadOptions::default());
                let mut options = LoadOptions {
                    kill_ports: false,
                    monitor: Some(Pending::PendingDriver),
                    reload: Some(if rng.below(4) == 0 {
                        Pending::PendingDriver
                    } else {
                        Pending::Pending
                    }),
                };
                let mut reloaded = rt.try_load(&pid, dir, name, options);
                if reloaded == Err(ddll::DdllError::Inconsistent) {
                    options.kill_ports = true;
                    reloaded = rt.try_load(&pid, dir, name, options);
                }
                tally.reloads += u64::from(reloaded.is_ok());
            }
            4 => {
                let options = LoadOptions {
                    kill_ports: true,
                    ..LoadOptions::default()
                };
                tally.loads += u64::from(rt.try_load(&pid, dir, name, options).is_ok());
            }
            5..=7 if ports.len() < 2 => {
                if let Ok(port) = rt.open_port(&pid, name, PortOptions::default()) {
                    tally.opens += 1;
                    ports.push((port, name));
                }
            }
            8 | 9 => {
                if let Some((port, _)) = pick(&mut rng, &ports) {
                    tally.commands +=
                        u64::from(rt.port_command_bytes(&pid, &port, b"stress").is_ok());
                }
            }
            10 => {
                if let Some((port, driver)) = pick(&mut rng, &ports) {
                    // probe_drv: 1 = version, 6 = a straggler thread (a few per worker).
                    let op = if driver == "probe_drv" && stragglers < 3 && rng.below(8) == 0 {
                        stragglers += 1;
                        6
                    } else {
                        1
                    };
                    tally.controls += u64::from(
                        rt.port_control(&pid, &port, op, &Term::List(vec![]))
                            .is_ok(),
                    );
                }
            }
            _ => {
                if !ports.is_empty() {
                    let (port, _) = ports.swap_remove(rng.below(ports.len() as u64) as usize);
                    tally.closes += u64::from(rt.port_close(&pid, &port).is_ok());
                }
            }
        }
        // Port data, exits and driver monitors pile up otherwise.
        while me.receive(Some(Duration::ZERO)).is_some() {
            tally.messages += 1;
        }
    }
    rt.exit(&pid, Term::Atom(Atom::new("kill")));
    tally
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.below(items.len() as u64) as usize])
}

#[test]
fn threads_load_unload_reload_while_ports_run() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let dir = drivers.to_string_lossy().into_owned();
    let ops = env_number("DDLL_STRESS_OPS", 300);
    let threads = env_number("DDLL_STRESS_THREADS", 4);
    let rt = Runtime::new().expect("runtime");
    let mut total = Tally::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (rt, dir) = (&rt, &dir);
                scope.spawn(move || worker(rt, dir, 0x9e37_79b9_7f4a_7c15 ^ (t + 1), ops))
            })
            .collect();
        for w in workers {
            total.add(&w.join().expect("a worker thread finishes"));
        }
    });
    eprintln!("stress: {threads} threads x {ops} operations: {total:?}");
    assert!(
        total.opens > 0 && total.commands > 0 && total.reloads > 0,
        "the run did real work: {total:?}"
    );
    // Every worker exited: its loads and ports are gone, so is every driver.
    assert_eq!(rt.loaded_drivers(), Vec::<String>::new());
    // Stragglers sleep 100 ms in their library; it closes when the last one is done.
    let deadline = Instant::now() + Duration::from_secs(10);
    while drv_abi::driver::mapped_libraries() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        drv_abi::driver::mapped_libraries(),
        0,
        "every driver library is closed"
    );
}
