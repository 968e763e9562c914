//! `drv-abi`: the erl_driver C ABI.
//!
//! * [`types`]: `#[repr(C)]` types laid out exactly as OTP 25's `erl_driver.h`.
//! * `include/erl_driver.h`: the project's own ABI-compatible header, so drivers build with no
//!   OTP installed ([`include_dir`] gives its folder).
//! * The exported functions: every function of the header, implemented in Rust, reached by
//!   drivers through a small forwarding shim (see [`install_host`]).
//! * [`Host`]: what the runtime must provide (the facade crate `ddll` implements it).
//!
//! **Architecture Invariant:** raw pointers handed over by drivers are read only in this crate
//! (and in `drv-queue` for binaries); the host sees safe Rust values.

mod api;
pub mod driver;
mod host;
mod iovec;
mod shim;
mod time;
pub mod types;

pub use api::system::errno_id;
// The thread-local queue-grant fast path: a contract between this crate and the runtime's
// callback scopes (`ddll`), not API for other hosts; hidden from the docs, kept out of `Host`.
#[doc(hidden)]
pub use host::{forget_granted_queue, remember_granted_queue};
pub use host::{
    install_host, AsyncFn, AsyncHost, AsyncJob, CreatePortHost, Host, InitAckHost, LinkedInHost,
    MonitorHost, OutputBody, PortFailure, QueueAccess, QueueHost, Receiver, RuntimeFacts,
    SelectHost, TermHost, TermPort, TimerHost, Undeliverable,
};
pub use host::{term_log_receiver_added, term_log_receiver_removed};
pub use shim::{install as install_shim, ShimError, ShimInfo};

/// The names of every API function the shim exports to drivers.
pub fn api_function_names() -> Vec<String> {
    api::implementations()
        .into_iter()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect()
}

/// The folder holding the project's `erl_driver.h`, for building drivers against it.
pub fn include_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
