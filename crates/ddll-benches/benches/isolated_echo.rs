//! Echo round trip of 64 bytes (`port_command` → `echo_drv`'s `output` → `driver_output` →
//! the owner's message), in process and with the driver isolated in a host process
//! (`RuntimeOptions::isolate`): what isolation costs. Prints both figures and their ratio.
//!
//! The bench's own program is the host: `main` enters host mode first when started as one.
//!
//! Beside them, the floor of any transport between two processes on this machine: a bare
//! 64-byte round trip between two threads over a socket pair (each side sleeping in `read`, as
//! the isolation's request thread and caller do), and the bare hand-over of a counter through
//! shared memory with both sides spinning (no data, no wake-up: two cache-line transfers),
//! and a 64-byte frame's round trip through two shared-memory rings with both sides spinning
//! (the data crossing too: the floor of the isolation channel's design, before any work).
//! Threads of one process are the cheapest case: processes on the same cores pay the same
//! wake-ups and transfers, or more.
//!
//! With `DDLL_ISOLATED_ECHO_ROUNDS=N` set, it runs exactly N isolated round trips, prints
//! their mean time and exits instead (`echo.rs` does the same in process): for counting instructions
//! (`DDLL_ISOLATE_SPIN_US=0 valgrind --tool=callgrind --trace-children=yes
//! target/release/deps/isolated_echo-HASH` with two values of N: the difference over the
//! difference of N is the cost of one round trip, in the parent's profile and the host's).

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;

/// A runtime (isolated or not) with `echo_drv` loaded and a port open: one round trip per call.
fn echo_setup(isolate: bool) -> impl FnMut() {
    let drivers = support::own_drivers().expect("the example drivers build");
    let options =
        ddll::RuntimeOptions::default().isolate(isolate.then(ddll::isolate::Isolation::default));
    let rt = ddll::Runtime::with_options("/", options).expect("runtime");
    let me = rt.spawn(Some("bench"));
    let dir = drivers.to_string_lossy().into_owned();
    rt.try_load(me.pid(), &dir, "echo_drv", Default::default())
        .expect("loads");
    let options = ddll::PortOptions::new().binary(true);
    let port = rt.open_port(me.pid(), "echo_drv", options).expect("opens");
    let data = [b'x'; 64];
    move || {
        rt.port_command_bytes(me.pid(), &port, black_box(&data))
            .expect("sent");
        // The isolated echo arrives with the command's reply: it is here when the call returns.
        black_box(me.receive(Some(Duration::ZERO)).expect("echoed"));
    }
}

/// Mean time of one call of `f` over `rounds` calls, after a warm-up.
fn mean(f: &mut impl FnMut(), rounds: u32) -> Duration {
    for _ in 0..rounds / 10 {
        f();
    }
    let t0 = Instant::now();
    for _ in 0..rounds {
        f();
    }
    t0.elapsed() / rounds
}

/// A counter on a cache line of its own.
#[repr(align(128))]
struct Line(AtomicU64);

/// Mean time of a round trip through shared memory, both sides spinning: `rounds` hand-overs
/// of a counter to another thread and back.
fn spin_round_trip(rounds: u64) -> Duration {
    let (ping, pong) = (Line(AtomicU64::new(0)), Line(AtomicU64::new(0)));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 1..=rounds {
                while ping.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                pong.0.store(i, Ordering::Release);
            }
        });
        let t0 = Instant::now();
        for i in 1..=rounds {
            ping.0.store(i, Ordering::Release);
            while pong.0.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
        }
        t0.elapsed() / u32::try_from(rounds).expect("rounds fit u32")
    })
}

/// Words in each direction's ring of [`ring_round_trip`].
const RING_WORDS: usize = 1 << 13;

/// One direction of [`ring_round_trip`]: a single-producer, single-consumer ring of words,
/// each frame a length word and its payload, published by a store of `head` (as the isolation
/// channel's rings are).
struct WordRing {
    head: Line,
    tail: Line,
    data: Box<[AtomicU64]>,
}

impl WordRing {
    fn new() -> WordRing {
        WordRing {
            head: Line(AtomicU64::new(0)),
            tail: Line(AtomicU64::new(0)),
            data: (0..RING_WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn word(&self, at: u64) -> &AtomicU64 {
        &self.data[at as usize % RING_WORDS]
    }

    /// Writes one frame of `payload` at the writer's position `at`; gives the next.
    fn write(&self, at: u64, payload: &[u64]) -> u64 {
        let end = at + 1 + payload.len() as u64;
        while end - self.tail.0.load(Ordering::Acquire) > RING_WORDS as u64 {
            std::hint::spin_loop();
        }
        self.word(at).store(payload.len() as u64, Ordering::Relaxed);
        for (i, &w) in payload.iter().enumerate() {
            self.word(at + 1 + i as u64).store(w, Ordering::Relaxed);
        }
        self.head.0.store(end, Ordering::Release);
        end
    }

    /// Reads the frame at the reader's position `at` into `payload`, spinning until it is
    /// there; gives the next position.
    fn read(&self, at: u64, payload: &mut Vec<u64>) -> u64 {
        while self.head.0.load(Ordering::Acquire) == at {
            std::hint::spin_loop();
        }
        let len = self.word(at).load(Ordering::Relaxed);
        payload.clear();
        payload.extend((0..len).map(|i| self.word(at + 1 + i).load(Ordering::Relaxed)));
        let end = at + 1 + len;
        self.tail.0.store(end, Ordering::Release);
        end
    }
}

/// Mean time of a 64-byte round trip through two shared-memory rings with both sides
/// spinning and no work besides the copies: the frame's bytes cross between the cores both
/// ways, which the bare hand-over of a counter does not measure. Any isolated echo costs
/// this plus the echo's own work (the command, the driver's callback, the delivery to the
/// owner: what the in-process echo does).
fn ring_round_trip(rounds: u64) -> Duration {
    let (requests, replies) = (WordRing::new(), WordRing::new());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let (mut read_at, mut write_at, mut frame) = (0, 0, Vec::with_capacity(8));
            for _ in 0..rounds {
                read_at = requests.read(read_at, &mut frame);
                write_at = replies.write(write_at, &frame);
            }
        });
        let payload = [u64::from_ne_bytes(*b"xxxxxxxx"); 8];
        let (mut read_at, mut write_at, mut frame) = (0, 0, Vec::with_capacity(8));
        let t0 = Instant::now();
        for _ in 0..rounds {
            write_at = requests.write(write_at, black_box(&payload));
            read_at = replies.read(read_at, &mut frame);
        }
        black_box(&frame);
        t0.elapsed() / u32::try_from(rounds).expect("rounds fit u32")
    })
}

/// Mean time of a 64-byte round trip over a socket pair to an echoing thread.
fn socket_round_trip(rounds: u32) -> Duration {
    let (mut ours, mut theirs) = UnixStream::pair().expect("a socket pair");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..rounds {
            theirs.read_exact(&mut buf).expect("read");
            theirs.write_all(&buf).expect("write");
        }
    });
    let mut buf = [b'x'; 64];
    let t0 = Instant::now();
    for _ in 0..rounds {
        ours.write_all(&buf).expect("write");
        ours.read_exact(&mut buf).expect("read");
    }
    let elapsed = t0.elapsed() / rounds;
    echo.join().expect("the echo thread");
    elapsed
}

fn main() {
    ddll::isolate::run_host_if_requested();
    let mut in_process = echo_setup(false);
    let mut isolated = echo_setup(true);
    if let Some(rounds) = std::env::var_os("DDLL_ISOLATED_ECHO_ROUNDS") {
        let rounds: u32 = rounds
            .to_str()
            .and_then(|n| n.parse().ok())
            .expect("DDLL_ISOLATED_ECHO_ROUNDS is a number");
        let t0 = Instant::now();
        for _ in 0..rounds {
            isolated();
        }
        let ns = t0.elapsed().as_nanos() as f64 / f64::from(rounds);
        eprintln!("isolated ns_per_round_trip: {ns:.1}");
        std::process::exit(0);
    }
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("echo_round_trip_64B_in_process", |b| {
        b.iter(&mut in_process)
    });
    c.bench_function("echo_round_trip_64B_isolated", |b| b.iter(&mut isolated));
    c.final_summary();
    // Criterion's figures are above; the ratios from interleaved runs: the median of five
    // turns of each (a turn that a stall of the loaded machine hit does not move it).
    let mut turns: [Vec<Duration>; 5] = Default::default();
    for _ in 0..5 {
        turns[0].push(mean(&mut in_process, 20_000));
        turns[1].push(mean(&mut isolated, 2_000));
        turns[2].push(spin_round_trip(200_000));
        turns[3].push(socket_round_trip(5_000));
        turns[4].push(ring_round_trip(200_000));
    }
    let [a, b, spin, socket, ring] = turns.map(|mut t| {
        t.sort();
        t[t.len() / 2]
    });
    let ratio = |d: Duration| d.as_secs_f64() / a.as_secs_f64();
    println!(
        "echo round trip 64 B (medians of 5 turns): in process {:?}, isolated {:?}, \
         isolated/in process {:.1}x",
        a,
        b,
        ratio(b)
    );
    println!(
        "floor of a transport between two processes: socket pair 64 B round trip {:?} ({:.1}x \
         the in-process echo), shared-memory hand-over with both sides spinning {:?} ({:.1}x)",
        socket,
        ratio(socket),
        spin,
        ratio(spin)
    );
    println!(
        "64 B round trip through shared-memory rings, both sides spinning, no work: {:?} \
         ({:.1}x); with the in-process echo's own work on top, an isolated echo cannot take \
         less than about {:.1}x",
        ring,
        ratio(ring),
        ratio(ring) + 1.0
    );
}
