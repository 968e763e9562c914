//! The driver queue through the real C ABI where BEAM cannot be the oracle: calls that break
//! the C contract (BEAM crashes, reads out of bounds or races on them; ddll refuses them with
//! the failure value, or copies) and counts BEAM does not show the same way. The
//! BEAM-comparable behaviour is in `scenarios/queue_*.scen`.

mod support;

use ddll::{PortOptions, Runtime, Term};

/// One control call of `examples/drivers/queue_drv.c` and the reply it must give.
type Step = (u8, &'static str, &'static str);

/// Runs `steps` on a fresh `queue_drv` port (after closing one, for a stale handle), checking
/// every reply.
fn check(steps: &[Step]) {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let me = rt.spawn(Some("test"));
    rt.try_load(
        me.pid(),
        &drivers.to_string_lossy(),
        "queue_drv",
        Default::default(),
    )
    .expect("loads");
    let old = rt
        .open_port(me.pid(), "queue_drv", PortOptions::default())
        .expect("opens");
    rt.port_close(me.pid(), &old).expect("closes");
    let port = rt
        .open_port(me.pid(), "queue_drv", PortOptions::default())
        .expect("opens");
    for &(op, args, expected) in steps {
        let args = Term::List(args.bytes().map(|b| Term::Int(i64::from(b))).collect());
        let reply = rt
            .port_control(me.pid(), &port, u32::from(op), &args)
            .map(|t| t.to_string());
        assert_eq!(
            reply.as_deref(),
            Ok(format!("{:?}", expected).as_str()),
            "${} {args} in {steps:?}",
            op as char
        );
    }
    rt.port_close(me.pid(), &port).expect("closes");
}

#[test]
fn slices_outside_their_binary_are_refused() {
    check(&[
        (b'e', "ab", "rc=0 size=2"),
        (b'r', "2 5 abc", "enq_bin=-1 pushq_bin=-1 size=2 refc=1"),
        (b'r', "4 0 abc", "enq_bin=-1 pushq_bin=-1 size=2 refc=1"),
        (b'r', "3 0 abc", "enq_bin=0 pushq_bin=0 size=2 refc=1"),
        (b'q', "", "vlen_ok=yes data=ab"),
    ]);
}

#[test]
fn vector_entries_without_a_binary_are_copied() {
    // The driver scribbles over its plain bytes after the call: the queue has its own copy.
    check(&[
        (b'v', "0 p:plain,b:bin", "rc=0 size=8"),
        (b'v', "1 !p:xy,p:z", "rc=0 size=10"),
        (b'V', "0 !p:AB,b:,p:C", "rc=0 size=13"),
        (b'V', "2 p:__,s:[D]", "rc=0 size=14"),
        (b'q', "", "vlen_ok=yes data=DABCplainbinyz"),
        (b'Q', "", "rc=14 vsize_ok=yes data=DABCplainbinyz binv=ok"),
    ]);
}

#[test]
fn stale_handles_get_the_failure_values() {
    let all_fail = "enq=-1 pushq=-1 enq_bin=-1 pushq_bin=-1 enqv=-1 pushqv=-1 deq=-1 \
                    sizeq=-1 peekq=null vlen=-1 peekqv=-1 pdl=null refc=1";
    check(&[(b'x', "stale", all_fail), (b'x', "", all_fail)]);
}

#[test]
fn threads_without_the_port_data_lock_are_refused() {
    // Each round: enq refused, peekq NULL (sizeq -1, so no deq): two failed checks.
    check(&[
        (b'T', "50", "started=0"),
        (b'w', "", "rounds=50 fails=100"),
        (b'l', "", "first=ok second=null"),
        (b'T', "50", "started=0"),
        (b'w', "", "rounds=50 fails=100"),
        (b's', "", "size=0"),
    ]);
}

#[test]
fn port_data_lock_counts_and_misuse() {
    check(&[
        (b'C', "", "refc=-1"),
        (b'l', "", "first=ok second=null"),
        // The port holds the one reference (BEAM adds one per port task in flight).
        (b'C', "", "refc=1"),
        (b'L', "", "inc=+1 dec=+0"),
        // Locking twice and unlocking three times is reported and survived...
        (b'k', "", "survived"),
        // ...and leaves the lock usable.
        (b'e', "ok", "rc=0 size=2"),
        (b't', "100", "started=0"),
        (b'w', "", "rounds=100 fails=0"),
        (b'C', "", "refc=1"),
    ]);
}

#[test]
fn a_port_data_lock_created_in_a_callback_guards_its_later_queue_calls() {
    // The callback used the queue before creating the lock; its next call must still wait
    // for the thread holding the new lock ("c" after the thread's "t"; BEAM lets it race).
    check(&[
        (b'P', "", "data=atc"),
        (b'C', "", "refc=1"),
        (b'e', "d", "rc=0 size=4"),
    ]);
}
