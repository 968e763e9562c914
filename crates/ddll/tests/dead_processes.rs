//! A process that exited is forgotten by the runtime: a long-running host spawning and killing
//! processes must not grow (the soak's RSS rose by about 200 bytes per dead process before).

use std::sync::Arc;

use ddll::{Atom, Runtime, Term};

#[test]
fn an_exited_process_is_no_longer_held_by_the_runtime() {
    let rt = Runtime::new().expect("runtime");
    for reason in ["normal", "kill", "other"] {
        let process = rt.spawn(Some("short_lived"));
        assert!(
            Arc::strong_count(&process) > 1,
            "the runtime holds a live process"
        );
        rt.exit(process.pid(), Term::Atom(Atom::new(reason)));
        assert!(!process.is_alive());
        assert_eq!(
            Arc::strong_count(&process),
            1,
            "after exit({reason}) only this handle is left"
        );
        // What the runtime answers for the dead pid is what it answered before it forgot it.
        assert_eq!(
            rt.receive(process.pid(), Some(std::time::Duration::ZERO)),
            None
        );
    }
}
