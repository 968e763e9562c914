//! Many processes calling one port's `call` at once (what OTP's driver_SUITE otp_6879 checks):
//! BEAM runs the calls one at a time on the port and hands every caller its own reply. A
//! scenario cannot show this (its processes take turns), so threads do it here, on
//! `echo_drv` built against both headers: each caller must get back its own term,
//! and the driver must have counted every call.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use ddll::{Atom, Runtime, Term};

const CALLERS: usize = 8;
const CALLS_EACH: usize = 500;

fn calls_answer_their_own_callers(dir: &std::path::Path) {
    let rt = Arc::new(Runtime::new().expect("runtime"));
    let owner = rt.spawn(Some("owner"));
    rt.try_load(
        owner.pid(),
        &dir.to_string_lossy(),
        "echo_drv",
        Default::default(),
    )
    .expect("echo_drv loads");
    let port = rt
        .open_port(owner.pid(), "echo_drv", Default::default())
        .expect("port opens");
    let threads: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let rt = Arc::clone(&rt);
            std::thread::spawn(move || {
                let me = rt.spawn(None);
                for call in 0..CALLS_EACH {
                    // A term of its own per caller and call, of varying length; operation 2
                    // answers with the argument's own encoding.
                    let padding = "x".repeat(call % 70);
                    let data = Term::Tuple(vec![
                        Term::Int(i64::try_from(caller).expect("small")),
                        Term::Int(i64::try_from(call).expect("small")),
                        Term::Binary(Bytes::from(padding.into_bytes())),
                    ]);
                    let reply = rt
                        .port_call(me.pid(), &port, 2, &data)
                        .expect("the call succeeds");
                    assert_eq!(reply, data, "caller {caller}, call {call}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .expect("a caller thread ends without panicking");
    }
    // {calls, N} counts this call too.
    let counted = rt
        .port_call(owner.pid(), &port, 3, &Term::List(vec![]))
        .expect("the count call succeeds");
    let total = i64::try_from(CALLERS * CALLS_EACH + 1).expect("fits");
    assert_eq!(
        counted,
        Term::Tuple(vec![Term::Atom(Atom::new("calls")), Term::Int(total)])
    );
}

#[test]
fn concurrent_calls_each_get_their_own_reply() {
    let dirs = support::driver_dirs();
    for dir in &dirs {
        calls_answer_their_own_callers(dir);
    }
}
