//! Isolated drivers: a driver whose library runs in a child host process.

use std::time::Duration;

/// How drivers are isolated ([`crate::RuntimeOptions::isolate`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Isolation {
    /// A callback (or load, or start) of an isolated driver that runs longer than this is
    /// ended by killing its host process: its ports exit with
    /// `{driver_crashed, callback_timeout}`. `None` waits as long as the driver takes.
    pub callback_timeout: Option<Duration>,
}
