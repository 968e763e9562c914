//! `ddll`: run Erlang port drivers without BEAM.
//!
//! A [`Runtime`] loads driver libraries (the `erl_ddll` state machine of `ddll-core`), opens
//! ports on them, sends them commands, controls and calls, and delivers what they send back as
//! messages to its processes, exactly as BEAM would. Drivers are unmodified C code compiled
//! against `erl_driver.h` (OTP's or this project's own); the C API they call is `drv-abi`'s.
//!
//! ```no_run
//! use ddll::{PortOptions, Runtime};
//! let rt = Runtime::new().expect("the C API shim installs");
//! let me = rt.spawn(Some("main"));
//! rt.try_load(me.pid(), "target/drivers/own", "echo_drv", Default::default()).expect("loads");
//! let port = rt.open_port(me.pid(), "echo_drv", PortOptions::new().binary(true)).expect("opens");
//! rt.port_command_bytes(me.pid(), &port, b"hello").expect("sends");
//! println!("{}", rt.receive(me.pid(), None).expect("echo"));
//! ```

mod async_pool;
mod busy;
mod command;
mod create_port;
mod drivers;
mod erl_ddll;
mod error;
mod failure;
mod host;
mod huge_pages;
mod id_hash;
mod in_flight;
mod init_ack;
pub mod iodata;
pub mod isolate;
mod linked_in;
mod monitor;
mod options;
mod output;
mod port;
mod port_info;
mod port_signal;
mod process;
mod queue;
mod runtime;
mod select;
mod spin;
mod sync;
mod term_output;
mod timer;

#[cfg(all(test, loom))]
mod loom_models;

pub use ddll_core::{DdllError, InfoItem, LoadOptions, MonitorKind, Pending, Reply, UnloadOptions};
pub use drv_term::{Atom, FlatItems, FlatRef, FlatTerm, Pid, Port, Ref, Term};
pub use erl_ddll::{call as erl_ddll_call, string_term};
pub use error::{Error, Exception};
pub use options::{CommandOptions, PortOptions, RuntimeOptions};
pub use process::{Message, Process};
pub use runtime::Runtime;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
