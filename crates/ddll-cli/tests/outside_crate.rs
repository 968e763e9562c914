//! The seam: a crate outside this workspace, with no linker flags of its own, depends on
//! `ddll` by path and runs a driver (see `tests/outside-crate`).

// The integration tests' shared helpers live with the runtime's tests; one copy serves both.
#[path = "../../ddll/tests/support/mod.rs"]
mod support;

#[test]
fn a_crate_outside_the_workspace_runs_a_driver() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let root = support::workspace();
    let out = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(root.join("tests/outside-crate/Cargo.toml"))
        .arg("--")
        .arg(&drivers)
        // Its own target folder: a separate build, sharing nothing with this workspace's.
        .env("CARGO_TARGET_DIR", root.join("target/outside-crate"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "outside crate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("{#Port<0."), "a port message: {stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with(",{data,<<\"hello from outside\">>}}"),
        "the echo: {stdout}"
    );
}
