//! ddll's half of `cargo xtask backlog-bench`: the same workloads as
//! `xtask/beam/backlog_bench.erl` runs under BEAM, on the same `backlog_drv.so` and `echo_drv.so`,
//! one workload per run (a fresh process, so that memory figures start clean).
//!
//! `cargo run --release -p ddll --example backlog_bench -- DRIVER_DIR WORKLOAD`
//!
//! Workloads (each prints `figure NAME VALUE` lines, the form the BEAM side prints too):
//! * `tokens`: port_control 1 of `backlog_drv` sends the caller a 60-token list of tuples with
//!   strings; the caller takes it with [`Runtime::receive`] and checks its length through the
//!   message's view (and, for comparison, makes a `Term` tree of it,
//!   [`ddll::Message::into_term`]). ns per control + receive, the median chunk.
//! * `megaco`: the same shape from a production driver nobody here wrote: erlang-megaco's
//!   `megaco_flex_scanner_drv` scans a 14-line Megaco message into 41 tokens and sends them to
//!   the caller, taken with [`Runtime::receive`]. ns per scan + receive, the median chunk.
//! * `output`: `driver_output` 64 B, `driver_outputv` 3×64 B, `erl_drv_output_term`
//!   `{tcp, Port, [100 | Bin50]}`, 200,000 of each left queued at an owner that does not
//!   receive (ports in binary mode). ns of CPU time per call in the driver (the
//!   calling thread's: the machine may be shared), the median chunk of 10,000. Each after the
//!   one before was killed, so on memory it freed.
//! * `output_64`, `outputv`, `output_term`: one of those alone in a fresh process (figures
//!   named `..._alone`): on memory no workload freed before.
//! * `queued`: 1,000,000 `driver_output` 64 B left queued: bytes of resident memory per
//!   message, and ns per call of the first chunk of 10,000 beside the last ones (flat under
//!   backlog or not); then the owner takes them all, reading each one's data: ns per message
//!   taken (what the backlog costs its receiver).
//! * `echo100`: 64-byte echo round trips (`echo_drv`) over 100 ports, one owner thread each: ns
//!   per round trip of the whole (wall clock over all round trips).
//! * `idle`: resident bytes per open idle port (10,000 ports; `backlog_drv` has no driver data).

use std::time::{Duration, Instant};

use ddll::{PortOptions, Runtime, Term};

const CHUNK: u64 = 10_000;

/// Port data as binaries (`{Port, {data, Binary}}`), the mode a user of these outputs picks.
const BINARY: PortOptions = PortOptions::new().binary(true);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Resident memory of this process, bytes.
fn resident_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("statm's second field");
    pages * 4096.0
}

fn figure(name: &str, value: f64) {
    println!("figure {name} {value:.1}");
}

/// A port control's decimal text reply as a number.
fn number(reply: &Term) -> f64 {
    let Term::List(chars) = reply else {
        panic!("not a text reply: {reply}");
    };
    let text: String = chars
        .iter()
        .map(|c| match c {
            Term::Int(c) => char::from(*c as u8),
            _ => '?',
        })
        .collect();
    text.parse().expect("a number")
}

struct Bench {
    rt: Runtime,
    dir: String,
}

impl Bench {
    fn new(dir: &str) -> Bench {
        let rt = Runtime::new().expect("runtime");
        Bench {
            rt,
            dir: dir.to_owned(),
        }
    }

    fn load(&self, pid: &ddll::Pid, driver: &str) {
        self.rt
            .try_load(pid, &self.dir, driver, Default::default())
            .expect("the driver loads");
    }

    /// ns per call in the driver of each chunk of `chunks` calls of loop `code`, on a fresh
    /// owner that never receives.
    fn output_chunks(&self, code: u32, chunks: u64) -> Vec<f64> {
        let me = self.rt.spawn(Some("owner"));
        self.load(me.pid(), "backlog_drv");
        let port = self
            .rt
            .open_port(me.pid(), "backlog_drv", BINARY)
            .expect("opens");
        let arg = Term::string_latin1(CHUNK.to_string().as_bytes());
        let per_call: Vec<f64> = (0..chunks)
            .map(|_| {
                let reply = self
                    .rt
                    .port_control(me.pid(), &port, code, &arg)
                    .expect("the loop replies");
                number(&reply) / CHUNK as f64
            })
            .collect();
        assert_eq!(me.message_count() as u64, chunks * CHUNK);
        self.rt.exit(me.pid(), Term::atom("kill"));
        per_call
    }
}

fn tokens(bench: &Bench) {
    let rt = &bench.rt;
    let me = rt.spawn(Some("scanner_user"));
    bench.load(me.pid(), "backlog_drv");
    let port = rt
        .open_port(me.pid(), "backlog_drv", Default::default())
        .expect("opens");
    let nothing = Term::List(vec![]);
    let (chunks, chunk) = (30, 3_000);
    let run = |into_term: bool| -> f64 {
        let times = (0..chunks)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..chunk {
                    rt.port_control(me.pid(), &port, 1, &nothing)
                        .expect("control 1");
                    let tokens = rt
                        .receive(me.pid(), Some(Duration::ZERO))
                        .expect("the token list");
                    if into_term {
                        let tokens = tokens.into_term();
                        assert!(matches!(&tokens, Term::List(l) if l.len() == 60));
                    } else {
                        assert!(tokens.view().list().is_some_and(|l| l.len() == 60));
                    }
                }
                start.elapsed().as_nanos() as f64 / chunk as f64
            })
            .collect();
        median(times)
    };
    run(false); // warm up
    figure("tokens_receive_ns", run(false));
    figure("tokens_receive_into_term_ns", run(true));
}

/// A Megaco message (version 1, a service change, written out as people write them), the
/// same bytes as `xtask/beam/backlog_bench.erl`'s.
const MEGACO_TEXT: &[u8] = b"MEGACO/1 [124.124.124.222]:55555\nTransaction = 9998 {\n  Context = - {\n    ServiceChange = ROOT {\n      Services {\n        Method = Restart,\n        ServiceChangeAddress = 55555,\n        Profile = ResGW/1,\n        Reason = \"901 mg col boot\"\n      }\n    }\n  }\n}\n";

/// Tokens the scanner finds in [`MEGACO_TEXT`].
const MEGACO_TOKENS: usize = 41;

/// Where Erlang keeps erlang-megaco's drivers (`code:priv_dir(megaco) ++ "/lib"`, as `erl`
/// answers).
fn megaco_lib_dir() -> String {
    let out = std::process::Command::new("erl")
        .args([
            "-noshell",
            "-eval",
            "io:format(\"~s\", [code:priv_dir(megaco)]), halt().",
        ])
        .output()
        .expect("erl runs (the megaco workload needs erlang-megaco)");
    let dir = String::from_utf8(out.stdout).expect("a folder name");
    assert!(dir.starts_with('/'), "no megaco installed: {dir}");
    format!("{dir}/lib")
}

/// erlang-megaco's own text scanner (`megaco_flex_scanner_drv`, a production driver nobody
/// here wrote), driven as `megaco_flex_scanner:scan/2` drives it: `port_control(Port, $s,
/// Text)` answers `[]` and sends the caller `{tokens, Tokens, LatestLine}`, taken with
/// [`Runtime::receive`] and read through the message's view. ns per scan and receive.
fn megaco(bench: &Bench) {
    let rt = &bench.rt;
    let me = rt.spawn(Some("megaco_user"));
    let driver = "megaco_flex_scanner_drv";
    rt.try_load(me.pid(), &megaco_lib_dir(), driver, Default::default())
        .expect("megaco's scanner loads");
    let port = rt.open_port(me.pid(), driver, BINARY).expect("opens");
    let text = Term::Binary(bytes::Bytes::from_static(MEGACO_TEXT));
    // `{tokens, Tokens, LatestLine}`: how many tokens.
    let token_count = |message: &ddll::Message| -> Option<usize> {
        let mut items = message.view().tuple().filter(|items| items.len() == 3)?;
        Some(items.nth(1)?.list()?.len())
    };
    let (chunks, chunk) = (30, 3_000);
    let run = || -> f64 {
        let times = (0..chunks)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..chunk {
                    let reply = rt
                        .port_control(me.pid(), &port, u32::from(b's'), &text)
                        .expect("scans");
                    assert!(matches!(&reply, Term::List(l) if l.is_empty()), "{reply}");
                    let message = rt
                        .receive(me.pid(), Some(Duration::ZERO))
                        .expect("the tokens");
                    assert_eq!(token_count(&message), Some(MEGACO_TOKENS), "{message:?}");
                }
                start.elapsed().as_nanos() as f64 / chunk as f64
            })
            .collect();
        median(times)
    };
    run(); // warm up
    figure("megaco_scan_receive_ns", run());
}

/// The output workloads: backlog_drv's control code, the figure's name and the workload that
/// runs it alone.
const OUTPUTS: [(u32, &str, &str); 3] = [
    (2, "output_64_ns", "output_64"),
    (3, "outputv_3x64_ns", "outputv"),
    (4, "output_term_tcp_ns", "output_term"),
];

fn output(bench: &Bench) {
    for (code, name, _) in OUTPUTS {
        figure(name, median(bench.output_chunks(code, 20)));
    }
}

/// One output workload in a fresh process: what it costs on memory the others did not free.
fn output_alone(bench: &Bench, workload: &str) {
    let (code, name, _) = OUTPUTS
        .into_iter()
        .find(|(_, _, alone)| *alone == workload)
        .expect("an output workload");
    figure(
        &format!("{name}_alone"),
        median(bench.output_chunks(code, 20)),
    );
}

fn queued(bench: &Bench) {
    let before = resident_bytes();
    let me = bench.rt.spawn(Some("owner"));
    bench.load(me.pid(), "backlog_drv");
    let port = bench
        .rt
        .open_port(me.pid(), "backlog_drv", BINARY)
        .expect("opens");
    let arg = Term::string_latin1(CHUNK.to_string().as_bytes());
    let chunks = 100;
    let per_call: Vec<f64> = (0..chunks)
        .map(|_| {
            let reply = bench
                .rt
                .port_control(me.pid(), &port, 2, &arg)
                .expect("the loop replies");
            number(&reply) / CHUNK as f64
        })
        .collect();
    let after = resident_bytes();
    figure(
        "queued_64_bytes_per_message",
        (after - before) / (chunks * CHUNK) as f64,
    );
    figure("queued_first_10k_ns", per_call[0]);
    figure(
        "queued_last_10x10k_ns",
        median(per_call[per_call.len() - 10..].to_vec()),
    );
    // The backlog taken at last, oldest first, each message read as a user reads it: what
    // a queued message costs its receiver (ns per message, wall clock).
    let start = Instant::now();
    let mut taken = 0u64;
    while let Some(message) = me.receive(Some(Duration::ZERO)) {
        let data = message.view().tuple().and_then(|mut t| t.nth(1));
        let bytes = data.and_then(|d| d.tuple()).and_then(|mut d| d.nth(1));
        assert_eq!(bytes.and_then(|b| b.binary()).map(<[u8]>::len), Some(64));
        taken += 1;
    }
    figure(
        "queued_taken_ns",
        start.elapsed().as_nanos() as f64 / taken as f64,
    );
    assert_eq!(taken, chunks * CHUNK);
}

fn echo100(bench: &Bench) {
    let (ports, rounds) = (100, 5_000u64);
    let data = [b'x'; 64];
    let owners: Vec<_> = (0..ports)
        .map(|_| {
            let me = bench.rt.spawn(Some("owner"));
            bench.load(me.pid(), "echo_drv");
            let port = bench
                .rt
                .open_port(me.pid(), "echo_drv", BINARY)
                .expect("opens");
            (me, port)
        })
        .collect();
    // Two barriers: every owner thread is up at the first; the clock starts before the main
    // thread reaches the second, which no owner can pass before it, so no round trip runs
    // before the clock starts (BEAM's side likewise starts its clock before sending `go`).
    let (ready, go) = (
        std::sync::Barrier::new(ports + 1),
        std::sync::Barrier::new(ports + 1),
    );
    let start = std::thread::scope(|s| {
        for (me, port) in &owners {
            let (ready, go, rt) = (&ready, &go, &bench.rt);
            s.spawn(move || {
                ready.wait();
                go.wait();
                for _ in 0..rounds {
                    rt.port_command_bytes(me.pid(), port, &data).expect("sent");
                    std::hint::black_box(me.receive(None).expect("echoed"));
                }
            });
        }
        ready.wait();
        let start = Instant::now();
        go.wait();
        start
    });
    // The scope returns when every owner thread has finished its round trips.
    let elapsed = start.elapsed();
    figure(
        "echo_100_ports_ns",
        elapsed.as_nanos() as f64 / (ports as u64 * rounds) as f64,
    );
}

fn idle(bench: &Bench) {
    let me = bench.rt.spawn(Some("owner"));
    bench.load(me.pid(), "backlog_drv");
    // One port first, so that what every runtime sets up once is not counted.
    let mut ports = vec![bench
        .rt
        .open_port(me.pid(), "backlog_drv", Default::default())
        .expect("opens")];
    let n = 10_000;
    let before = resident_bytes();
    for _ in 0..n {
        ports.push(
            bench
                .rt
                .open_port(me.pid(), "backlog_drv", Default::default())
                .expect("opens"),
        );
    }
    let after = resident_bytes();
    figure("idle_port_bytes", (after - before) / n as f64);
    std::hint::black_box(ports);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, workload] = &args[..] else {
        panic!(
            "usage: backlog_bench DRIVER_DIR \
             tokens|megaco|output|output_64|outputv|output_term|queued|echo100|idle"
        );
    };
    let bench = Bench::new(dir);
    match workload.as_str() {
        "tokens" => tokens(&bench),
        "megaco" => megaco(&bench),
        "output" => output(&bench),
        "output_64" | "outputv" | "output_term" => output_alone(&bench, workload),
        "queued" => queued(&bench),
        "echo100" => echo100(&bench),
        "idle" => idle(&bench),
        other => panic!("no workload {other}"),
    }
}
