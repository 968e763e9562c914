//! `ddll-core`: the Erlang runtime's dynamic driver loader (`erl_ddll`) as a pure state machine.
//!
//! It keeps, per driver name, what the runtime keeps: the driver's state (loaded, unload or
//! reload pending, permanent), which processes loaded it and how often, which processes wait
//! for it to load or unload, its open ports, its reference count and its consistent options.
//! It answers `try_load`, `try_unload`, `monitor`, `demonitor`, `info`, `loaded_drivers` and
//! `format_error` exactly like the runtime, and tells its host what to do. No I/O, no threads,
//! no unsafe code: the host (a BEAM-like runtime, or any plugin host) does the real loading.
//!
//! # Protocol
//!
//! * The host implements [`DriverHost`]: `load` (really open a library) and `unload` (call
//!   `finish`, close it). The core calls them synchronously: `load` from
//!   [`DdllCore::try_load`] for an unknown driver, both from [`DdllCore::run_scheduled`].
//! * Calls that change state return an [`Outcome`]: the reply (`result`) and a list of
//!   [`Effect`]s. The host applies the effects **in order** (send a [`Notification`]; kill a
//!   driver's ports with reason `driver_unloaded`), and hands the reply to the caller.
//! * Killing or closing ports and finishing in-flight work re-enter the core through
//!   [`DdllCore::port_closed`] / [`DdllCore::dereference`]; they never unload anything
//!   themselves. When the last reference goes, the core *queues* the final check, as the
//!   runtime schedules it. The host later calls [`DdllCore::run_scheduled`] (for instance
//!   after each call's reply is delivered) and applies the effects it returns. So a reply such
//!   as `{ok, pending_driver, Ref}` always precedes the `{'DOWN', Ref, driver, Name, unloaded}`
//!   message, as in BEAM.
//! * Monitor references are [`MonitorRef`]s numbered by the core; the host maps them to its own.
//!
//! # Example: a plugin host
//!
//! ```
//! use ddll_core::{
//!     DdllCore, DriverHost, Effect, LoadError, LoadOptions, Pending, Status, Tag,
//!     UnloadOptions,
//! };
//!
//! /// Pretends to load libraries; remembers what is loaded.
//! #[derive(Default)]
//! struct Plugins {
//!     loaded: Vec<String>,
//! }
//!
//! impl DriverHost for Plugins {
//!     fn load(&mut self, full_path: &str, name: &str) -> Result<(), LoadError> {
//!         if full_path.contains("missing") {
//!             return Err(LoadError::OpenError(-10));
//!         }
//!         self.loaded.push(name.to_owned());
//!         Ok(())
//!     }
//!     fn unload(&mut self, name: &str) {
//!         self.loaded.retain(|n| n != name);
//!     }
//! }
//!
//! let mut host = Plugins::default();
//! let mut core: DdllCore<u32> = DdllCore::new();
//! let me = 1;
//!
//! // Load, and open a port on the driver.
//! let out = core.try_load(&mut host, me, "/opt/plugins/", "echo", LoadOptions::default());
//! assert_eq!(out.result.unwrap().status, Status::Loaded);
//! assert_eq!(core.full_path_of("echo"), Some("/opt/plugins/echo"));
//! core.port_opened("echo").unwrap();
//!
//! // Unload while the port is open: pending, with a monitor.
//! let opts = UnloadOptions { kill_ports: false, monitor: Some(Pending::PendingDriver) };
//! let out = core.try_unload(me, "echo", opts);
//! let reply = out.result.unwrap();
//! assert_eq!(reply.status, Status::PendingDriver);
//! assert!(out.effects.is_empty());
//!
//! // The port closes: the last reference goes; the host runs the queued check.
//! core.port_closed("echo").unwrap();
//! assert!(core.has_scheduled());
//! let effects = core.run_scheduled(&mut host);
//! assert!(host.loaded.is_empty());
//! match &effects[..] {
//!     [Effect::Notify(n)] => {
//!         assert_eq!((n.to, n.monitor, n.tag), (me, reply.monitor.unwrap(), Tag::Unloaded));
//!     }
//!     other => panic!("unexpected effects {other:?}"),
//! }
//! assert!(core.loaded_drivers().is_empty());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod convenience;
mod core;
pub mod format;
pub mod term;
mod types;

pub use crate::core::{full_path, DdllCore, DriverHost};
pub use crate::format::{format_error, ErrorTerm};
pub use crate::types::{
    DdllError, Effect, HandleStatus, InfoItem, InfoValue, LoadError, LoadOptions, MonitorKind,
    MonitorRef, Notification, Outcome, Pending, Reply, Status, Tag, UnloadOptions, UpDown,
};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
