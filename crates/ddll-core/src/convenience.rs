//! The convenience functions of the Erlang module `erl_ddll` (OTP 25), as data.
//!
//! Each function makes one `try_load`/`try_unload` call with fixed options and, when the reply
//! carries a monitor, waits for the first `{'UP'|'DOWN', Ref, driver, _, Tag}` message with that
//! reference. The runtime does the waiting; this module says which options to pass and how to
//! map the reply and the message to the function's result.
//!
//! | function | call | options (in this order) |
//! |---|---|---|
//! | `load(Path, Name)` | `try_load` | `[{monitor, pending_driver}]` |
//! | `load_driver(Path, Name)` | `try_load` | `[{monitor, pending_driver}, {driver_options, [kill_ports]}]` |
//! | `reload(Path, Name)` | `try_load` | `[{monitor, pending_driver}, {reload, pending_driver}]` |
//! | `reload_driver(Path, Name)` | `try_load` | `[{monitor, pending_driver}, {reload, pending_driver}, {driver_options, [kill_ports]}]` |
//! | `unload(Name)` | `try_unload` | `[]` |
//! | `unload_driver(Name)` | `try_unload` | `[{monitor, pending_driver}, kill_ports]` |
//!
//! The load family maps `{error, inconsistent}` to `{error, bad_driver_name}`.

use crate::types::{
    DdllError, LoadError, LoadOptions, Notification, Pending, Reply, Tag, UnloadOptions, UpDown,
};

/// One of the Erlang module's convenience functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Convenience {
    /// `erl_ddll:load/2`.
    Load,
    /// `erl_ddll:load_driver/2`.
    LoadDriver,
    /// `erl_ddll:reload/2`.
    Reload,
    /// `erl_ddll:reload_driver/2`.
    ReloadDriver,
    /// `erl_ddll:unload/1`.
    Unload,
    /// `erl_ddll:unload_driver/1`.
    UnloadDriver,
}

/// The underlying call with its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// `try_load(Path, Name, Options)`.
    TryLoad(LoadOptions),
    /// `try_unload(Name, Options)`.
    TryUnload(UnloadOptions),
}

/// The error of a convenience function: `{error, Reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvenienceError {
    /// The call's error (after the `inconsistent` → `bad_driver_name` mapping).
    Call(DdllError),
    /// `load_cancelled` (from the monitor message).
    LoadCancelled,
    /// `permanent` (from the monitor message).
    Permanent,
    /// The load failure from the monitor message.
    LoadFailure(LoadError),
}

/// After the call's reply: done, or wait for the monitor message with this reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The function returns now (`ok` or `{error, _}`).
    Done(Result<(), ConvenienceError>),
    /// Wait for the monitor message with this reference, then call [`Convenience::finish`].
    Wait(crate::types::MonitorRef),
}

impl Convenience {
    /// Whether this is one of the loading functions.
    pub fn is_load(self) -> bool {
        !matches!(self, Convenience::Unload | Convenience::UnloadDriver)
    }

    /// The call and options the Erlang module uses.
    pub fn call(self) -> Call {
        let load = |kill_ports, reload| {
            Call::TryLoad(LoadOptions {
                kill_ports,
                monitor: Some(Pending::PendingDriver),
                reload,
            })
        };
        match self {
            Convenience::Load => load(false, None),
            Convenience::LoadDriver => load(true, None),
            Convenience::Reload => load(false, Some(Pending::PendingDriver)),
            Convenience::ReloadDriver => load(true, Some(Pending::PendingDriver)),
            Convenience::Unload => Call::TryUnload(UnloadOptions::default()),
            Convenience::UnloadDriver => Call::TryUnload(UnloadOptions {
                kill_ports: true,
                monitor: Some(Pending::PendingDriver),
            }),
        }
    }

    /// Map the call's reply.
    pub fn first_step(self, reply: Result<Reply, DdllError>) -> Step {
        match reply {
            Err(DdllError::Inconsistent) if self.is_load() => Step::Done(Err(
                ConvenienceError::Call(DdllError::Load(LoadError::BadDriverName)),
            )),
            Err(e) => Step::Done(Err(ConvenienceError::Call(e))),
            Ok(Reply {
                monitor: Some(r), ..
            }) => Step::Wait(r),
            Ok(Reply { monitor: None, .. }) => Step::Done(Ok(())),
        }
    }

    /// Map the awaited monitor message; `None`: not a message this function waits for (the
    /// Erlang `receive` leaves it in the mailbox).
    pub fn finish<P>(self, message: &Notification<P>) -> Option<Result<(), ConvenienceError>> {
        Some(match (self.is_load(), message.kind, message.tag) {
            (true, UpDown::Down, Tag::LoadCancelled) => Err(ConvenienceError::LoadCancelled),
            (_, UpDown::Up, Tag::Permanent) => Err(ConvenienceError::Permanent),
            (true, UpDown::Down, Tag::LoadFailure(e)) => Err(ConvenienceError::LoadFailure(e)),
            (true, UpDown::Up, Tag::Loaded) => Ok(()),
            (false, UpDown::Up, Tag::UnloadCancelled) => Ok(()),
            (false, UpDown::Down, Tag::Unloaded) => Ok(()),
            _ => return None,
        })
    }
}
