//! Shared by the integration tests: building the example drivers, finding BEAM.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// Whether this run must not skip anything (CI sets `CI=true`).
pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (returns `None`) with a loud message, or fails under `CI=true`.
pub fn skip<T>(why: &str) -> Option<T> {
    assert!(!strict(), "CI=true: cannot skip: {why}");
    eprintln!("SKIPPED: {why}");
    None
}

/// OTP's include folder, if Erlang/OTP's development files are installed.
pub fn otp_include() -> Option<PathBuf> {
    let out = Command::new("erl")
        .args([
            "-noshell",
            "-eval",
            "io:format(\"~s\", [code:root_dir()]), halt().",
        ])
        .output()
        .ok()?;
    let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let include = root.join("usr/include");
    include.join("erl_driver.h").exists().then_some(include)
}

/// Builds every example driver against the header folder `include` into `out` (once per
/// test process), plus `not_a_library.so`, with `examples/drivers/build.sh` — the one recipe
/// that `cargo xtask drivers` uses too.
fn build_drivers(include: &Path, out: &Path) -> Result<(), String> {
    let status = Command::new("sh")
        .arg(workspace().join("examples/drivers/build.sh"))
        .arg(out)
        .env("ERL_INCLUDE", include)
        .status()
        .map_err(|e| format!("running build.sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "examples/drivers/build.sh failed for {}",
            include.display()
        ))
    }
}

/// The example drivers built against the project's own header.
pub fn own_drivers() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = workspace().join("target/test-drivers/own");
        build_drivers(&workspace().join("crates/drv-abi/include"), &out).map(|()| out)
    });
    match built {
        Ok(dir) => Some(dir.clone()),
        Err(e) => skip(&format!(
            "cannot build the example drivers (C compiler?): {e}"
        )),
    }
}

/// The example drivers built against OTP's header.
pub fn otp_drivers() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let include = otp_include().ok_or("OTP's erl_driver.h is not installed (erlang-dev)")?;
        let out = workspace().join("target/test-drivers/otp");
        build_drivers(&include, &out).map(|()| out)
    });
    match built {
        Ok(dir) => Some(dir.clone()),
        Err(e) => skip(&format!(
            "cannot build the drivers against OTP's header: {e}"
        )),
    }
}

/// Runs a scenario under real BEAM (`xtask/beam/run.sh`), if `erl` is installed.
pub fn run_beam(scenario: &Path, drivers: &Path) -> Option<Vec<String>> {
    if Command::new("erl").arg("-version").output().is_err() {
        return skip("erl is not installed (erlang-nox)");
    }
    let ebin = workspace().join("target/beam-ebin");
    let out = Command::new("sh")
        .arg(workspace().join("xtask/beam/run.sh"))
        .arg(scenario)
        .arg(drivers)
        .env("DDLL_BEAM_EBIN", ebin)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "BEAM runner failed on {}: {}",
        scenario.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// Both builds of the example drivers (own header, OTP's header), those that could be built.
pub fn driver_dirs() -> Vec<PathBuf> {
    [own_drivers(), otp_drivers()]
        .into_iter()
        .flatten()
        .collect()
}

/// A runtime with one process, `test`, that has loaded example drivers: what the tests that
/// drive a port through `port_control` share.
pub struct Fixture {
    pub rt: ddll::Runtime,
    pub me: std::sync::Arc<ddll::Process>,
}

impl Fixture {
    /// A runtime of `async_threads` async threads, with `drivers` loaded from `dir`.
    pub fn new(dir: &Path, async_threads: usize, drivers: &[&str]) -> Fixture {
        let options = ddll::RuntimeOptions::default().async_threads(async_threads);
        let rt = ddll::Runtime::with_options(".", options).expect("runtime");
        let me = rt.spawn(Some("test"));
        for driver in drivers {
            rt.try_load(me.pid(), &dir.to_string_lossy(), driver, Default::default())
                .unwrap_or_else(|e| panic!("{driver} loads from {}: {e:?}", dir.display()));
        }
        Fixture { rt, me }
    }

    /// Opens `command` (`"name args"`) as the test process.
    pub fn open(&self, command: &str) -> ddll::Port {
        self.rt
            .open_port(self.me.pid(), command, Default::default())
            .expect("port opens")
    }

    /// `port_control` with text data; the text reply.
    pub fn control(&self, port: &ddll::Port, op: u32, data: &str) -> String {
        let data = ddll::Term::Binary(bytes::Bytes::copy_from_slice(data.as_bytes()));
        let reply = self
            .rt
            .port_control(self.me.pid(), port, op, &data)
            .expect("control succeeds");
        text(&reply).expect("a text reply")
    }

    /// The next message within `ms`.
    pub fn message(&self, ms: u64) -> Option<ddll::Term> {
        self.me
            .receive(Some(std::time::Duration::from_millis(ms)))
            .map(ddll::Term::from)
    }
}

/// The text of a string (a list of bytes) or a binary.
pub fn text(term: &ddll::Term) -> Option<String> {
    match term {
        ddll::Term::List(items) => items
            .iter()
            .map(|t| match t {
                ddll::Term::Int(b) => u8::try_from(*b).ok().map(char::from),
                _ => None,
            })
            .collect(),
        ddll::Term::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// [`text`], for a term that must be text.
pub fn expect_text(term: &ddll::Term) -> String {
    text(term).unwrap_or_else(|| panic!("not text: {term}"))
}
