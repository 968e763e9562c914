//! The options of a runtime, of `open_port` and of `port_command`: non-exhaustive, built
//! with setters, so that a new option is not a breaking change.

/// Options of `open_port/2` that ddll honours: `PortOptions::new().binary(true)`.
///
/// Non-exhaustive (an option ddll learns later is a new field): build it with [`Self::new`]
/// and its setters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortOptions {
    /// `binary`: data arrives as binaries instead of lists.
    pub binary: bool,
    /// `eof`: `driver_failure_eof` sends `{Port, eof}` instead of closing.
    pub eof: bool,
}

impl PortOptions {
    /// No options: data arrives as lists, `driver_failure_eof` closes the port.
    pub const fn new() -> PortOptions {
        PortOptions {
            binary: false,
            eof: false,
        }
    }

    /// `binary`: data arrives as binaries instead of lists.
    #[must_use]
    pub const fn binary(mut self, binary: bool) -> PortOptions {
        self.binary = binary;
        self
    }

    /// `eof`: `driver_failure_eof` sends `{Port, eof}` instead of closing.
    #[must_use]
    pub const fn eof(mut self, eof: bool) -> PortOptions {
        self.eof = eof;
        self
    }
}

/// Options of `erlang:port_command/3`: `CommandOptions::new().nosuspend(true)`.
///
/// Non-exhaustive: build it with [`Self::new`] and its setters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandOptions {
    /// `force`: the command goes to the port even if it is busy. Only for drivers with
    /// `ERL_DRV_FLAG_SOFT_BUSY`; others raise `notsup`.
    pub force: bool,
    /// `nosuspend`: on a busy port the command is dropped and `false` returned instead of
    /// waiting for the port to cease to be busy.
    pub nosuspend: bool,
}

impl CommandOptions {
    /// No options: a command to a busy port waits.
    pub const fn new() -> CommandOptions {
        CommandOptions {
            force: false,
            nosuspend: false,
        }
    }

    /// `force`: the command goes to the port even if it is busy (soft-busy drivers only).
    #[must_use]
    pub const fn force(mut self, force: bool) -> CommandOptions {
        self.force = force;
        self
    }

    /// `nosuspend`: on a busy port the command is dropped instead of waiting.
    #[must_use]
    pub const fn nosuspend(mut self, nosuspend: bool) -> CommandOptions {
        self.nosuspend = nosuspend;
        self
    }
}

/// Options of a runtime, the `erl` flags that ddll honours:
/// `RuntimeOptions::default().async_threads(4)`.
///
/// Non-exhaustive: build it with [`Default::default`] and its setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeOptions {
    /// Threads in the async pool (`+A`; BEAM's default is 1). At most 1024. 0 runs each
    /// `driver_async` job at once in the calling driver, as the runtime does without a pool
    /// (OTP 25 itself no longer has that mode: it takes `+A 0` as 1).
    pub async_threads: usize,
    /// Load every driver isolated, in a child host process of its own (see
    /// [`crate::isolate`]); `None` loads drivers into this process.
    pub isolate: Option<crate::isolate::Isolation>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            async_threads: crate::async_pool::DEFAULT_ASYNC_THREADS,
            isolate: None,
        }
    }
}

impl RuntimeOptions {
    /// Threads in the async pool (`+A`; the default is BEAM's, 1). At most 1024; 0 runs each
    /// `driver_async` job at once in the calling driver.
    #[must_use]
    pub fn async_threads(mut self, threads: usize) -> RuntimeOptions {
        self.async_threads = threads;
        self
    }

    /// Load every driver isolated, in a child host process of its own (`Some`), or into this
    /// process (`None`, the default).
    #[must_use]
    pub fn isolate(mut self, isolation: Option<crate::isolate::Isolation>) -> RuntimeOptions {
        self.isolate = isolation;
        self
    }
}
