//! `cargo xtask` as a CI job calls it: a task it does not know fails the job.

use std::process::Command;

#[test]
fn an_unknown_or_missing_task_exits_non_zero() {
    for args in [&["no-such-task"][..], &[]] {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .output()
            .expect("xtask runs");
        assert!(!out.status.success(), "{args:?} exited 0");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: cargo xtask"));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("help")
        .output()
        .expect("xtask runs");
    assert!(out.status.success());
}
