//! ddll's half of `cargo xtask term-bench`: the same measurement as
//! `xtask/beam/term_bench.erl` makes under BEAM, on the same `term_drv.so`.
//!
//! `cargo run --release -p ddll --example term_bench -- DRIVER_DIR [CHUNKS] [CHUNK]`
//!
//! Each chunk asks the driver (port_control 10) to call `erl_drv_output_term` of
//! `{tcp, Port, [100 | Bin50]}` CHUNK times and to report its own elapsed time ("in the
//! driver"); the owner then takes every term from its mailbox as it is (`receive`,
//! the one-buffer form) and drops it ("delivered" is the whole chunk on the caller's clock).
//! Prints the mean and the median chunk, per call.

use std::time::{Duration, Instant};

use ddll::{Runtime, Term};

fn text(term: &Term) -> String {
    match term {
        Term::List(chars) => chars
            .iter()
            .map(|c| match c {
                Term::Int(c) => char::from(*c as u8),
                _ => '?',
            })
            .collect(),
        other => other.to_string(),
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .expect("usage: term_bench DRIVER_DIR [CHUNKS] [CHUNK]");
    let chunks: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let chunk: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("bench"));
    rt.try_load(me.pid(), dir, "term_drv", Default::default())
        .expect("term_drv loads");
    let port = rt
        .open_port(me.pid(), "term_drv", Default::default())
        .expect("opens");
    let count = Term::string_latin1(chunk.to_string().as_bytes());
    let run = |n: usize| -> Vec<(u64, u64)> {
        (0..n)
            .map(|_| {
                let start = Instant::now();
                let reply = rt
                    .port_control(me.pid(), &port, 10, &count)
                    .expect("control 10 replies");
                for _ in 0..chunk {
                    let term = me.receive(Some(Duration::ZERO)).expect("one term per call");
                    std::hint::black_box(term);
                }
                let delivered = start.elapsed().as_nanos() as u64;
                let in_driver: u64 = text(&reply).parse().expect("nanoseconds");
                (in_driver, delivered)
            })
            .collect()
    };
    run(10); // warm up
    let (in_driver, delivered): (Vec<u64>, Vec<u64>) = run(chunks).into_iter().unzip();
    let calls = (chunks as u64 * chunk) as f64;
    for (what, v) in [("in_driver", in_driver), ("delivered", delivered)] {
        let mean = v.iter().sum::<u64>() as f64 / calls;
        let med = median(v) as f64 / chunk as f64;
        println!("ddll {what}_ns_per_call {mean:.1} median {med:.1}");
    }
}
