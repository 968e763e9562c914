//! Value types of the erl_ddll interface: options, replies, errors, notifications, info items.

use std::fmt;
use std::sync::Arc;

/// A monitor reference handed out by [`crate::DdllCore`].
///
/// References are unique within one core instance and strictly increasing, so a runtime can map
/// them to its own reference type (for example with a `HashMap<MonitorRef, ErlRef>`, or by
/// building its reference from the number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonitorRef(pub u64);

/// The `pending_driver | pending` argument of the `{monitor, _}` and `{reload, _}` options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pending {
    /// `pending_driver`: only wait for the driver (ports, in-flight work).
    PendingDriver,
    /// `pending`: also wait for (or ignore) other processes.
    Pending,
}

impl Pending {
    /// The Erlang atom.
    pub fn atom(self) -> &'static str {
        match self {
            Pending::PendingDriver => "pending_driver",
            Pending::Pending => "pending",
        }
    }
}

/// Options of `erl_ddll:try_load/3`.
///
/// A repeated `{monitor, _}` or `{reload, _}` option keeps the last value; `kill_ports` from any
/// `{driver_options, [kill_ports]}` accumulates, as in the runtime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LoadOptions {
    /// `{driver_options, [kill_ports]}`: kill the driver's ports when it is unloaded/reloaded.
    pub kill_ports: bool,
    /// `{monitor, Pending}`.
    pub monitor: Option<Pending>,
    /// `{reload, Pending}`.
    pub reload: Option<Pending>,
}

/// Options of `erl_ddll:try_unload/2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UnloadOptions {
    /// The bare `kill_ports` atom.
    pub kill_ports: bool,
    /// `{monitor, Pending}`.
    pub monitor: Option<Pending>,
}

/// The `Status` in a successful `{ok, Status}` / `{ok, Status, Ref}` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `loaded`: the driver was really loaded by this call.
    Loaded,
    /// `already_loaded`.
    AlreadyLoaded,
    /// `pending_driver`.
    PendingDriver,
    /// `pending_process`.
    PendingProcess,
}

impl Status {
    /// The Erlang atom.
    pub fn atom(self) -> &'static str {
        match self {
            Status::Loaded => "loaded",
            Status::AlreadyLoaded => "already_loaded",
            Status::PendingDriver => "pending_driver",
            Status::PendingProcess => "pending_process",
        }
    }
}

/// A successful reply: `{ok, status}` when `monitor` is `None`, else `{ok, status, Ref}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The status atom.
    pub status: Status,
    /// The monitor created by the call, if any.
    pub monitor: Option<MonitorRef>,
}

/// Why the host could not load a driver: the runtime's load error codes.
///
/// `to_code`/`from_code` use the runtime's numbering (`ERL_DE_*`); the runtime shows an error
/// with a table entry as its atom and any other code as `{open_error, Code}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadError {
    /// `no_driver_init` (-1).
    NoDriverInit,
    /// `driver_init_failed` (-2).
    DriverInitFailed,
    /// `bad_driver_name` (-3).
    BadDriverName,
    /// `driver_name_to_long` (-4; the runtime's spelling).
    DriverNameTooLong,
    /// `driver_incorrect_version` (-5).
    DriverIncorrectVersion,
    /// `no_ddll_available` (-6).
    NoDdllAvailable,
    /// `unspecified_error` (-7).
    UnspecifiedError,
    /// `symbol_not_found` (-8).
    SymbolNotFound,
    /// `{open_error, Code}`: a system error (the runtime uses codes ≤ -10 for `dlerror` texts).
    OpenError(i32),
}

/// The runtime's error-code table: code, atom, text.
pub(crate) const ERROR_TABLE: [(i32, &str, &str); 9] = [
    (0, "no_error", "No error"),
    (-1, "no_driver_init", "No driver init in dynamic library"),
    (-2, "driver_init_failed", "Driver init failed"),
    (-3, "bad_driver_name", "Bad driver name"),
    (-4, "driver_name_to_long", "Driver name to long"),
    (
        -5,
        "driver_incorrect_version",
        "Driver compiled with incorrect version of erl_driver.h",
    ),
    (
        -6,
        "no_ddll_available",
        "DDLL functionality not available on this platform",
    ),
    (-7, "unspecified_error", "Unspecified dynamic library error"),
    (
        -8,
        "symbol_not_found",
        "Symbol not found in dynamic library",
    ),
];

impl LoadError {
    /// The runtime's numeric code.
    pub fn to_code(self) -> i32 {
        match self {
            LoadError::NoDriverInit => -1,
            LoadError::DriverInitFailed => -2,
            LoadError::BadDriverName => -3,
            LoadError::DriverNameTooLong => -4,
            LoadError::DriverIncorrectVersion => -5,
            LoadError::NoDdllAvailable => -6,
            LoadError::UnspecifiedError => -7,
            LoadError::SymbolNotFound => -8,
            LoadError::OpenError(code) => code,
        }
    }

    /// The error for a numeric code (codes outside the table, including 0, are `OpenError`).
    pub fn from_code(code: i32) -> LoadError {
        match code {
            -1 => LoadError::NoDriverInit,
            -2 => LoadError::DriverInitFailed,
            -3 => LoadError::BadDriverName,
            -4 => LoadError::DriverNameTooLong,
            -5 => LoadError::DriverIncorrectVersion,
            -6 => LoadError::NoDdllAvailable,
            -7 => LoadError::UnspecifiedError,
            -8 => LoadError::SymbolNotFound,
            other => LoadError::OpenError(other),
        }
    }

    /// The same error in canonical form: `OpenError(-3)` becomes `BadDriverName`, as the runtime
    /// builds its error term from the code.
    pub fn normalized(self) -> LoadError {
        LoadError::from_code(self.to_code())
    }

    /// The atom for table errors; `None` for `OpenError` (the term is `{open_error, Code}`).
    pub fn atom(self) -> Option<&'static str> {
        // The runtime picks the term by code, so `OpenError(-3)` is `bad_driver_name` too.
        let code = self.to_code();
        ERROR_TABLE
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(_, atom, _)| *atom)
    }
}

/// Every error a call can give. All but `BadArg` are `{error, Atom}` (or `{error, LoadError}`);
/// `BadArg` means the runtime raises `error:badarg`, and the state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DdllError {
    /// Wrong argument shapes, unknown driver in `info/2`, misuse of the host hooks.
    BadArg,
    /// `inconsistent`: path or driver options differ from the loaded driver's.
    Inconsistent,
    /// `linked_in_driver`.
    LinkedInDriver,
    /// `permanent`.
    Permanent,
    /// `not_loaded`.
    NotLoaded,
    /// `not_loaded_by_this_process`.
    NotLoadedByThisProcess,
    /// `pending_reload`.
    PendingReload,
    /// `pending_process` (`{reload, pending_driver}` while others use the driver).
    PendingProcess,
    /// The host's load error, passed through.
    Load(LoadError),
}

impl DdllError {
    /// The error atom; `None` for `Load(OpenError(_))`, whose term is `{open_error, Code}`.
    pub fn atom(self) -> Option<&'static str> {
        Some(match self {
            DdllError::BadArg => "badarg",
            DdllError::Inconsistent => "inconsistent",
            DdllError::LinkedInDriver => "linked_in_driver",
            DdllError::Permanent => "permanent",
            DdllError::NotLoaded => "not_loaded",
            DdllError::NotLoadedByThisProcess => "not_loaded_by_this_process",
            DdllError::PendingReload => "pending_reload",
            DdllError::PendingProcess => "pending_process",
            DdllError::Load(e) => return e.atom(),
        })
    }
}

impl fmt::Display for DdllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            DdllError::BadArg => "bad argument",
            DdllError::Load(LoadError::OpenError(code)) => {
                return f.write_str(crate::format::builtin_code_text(*code));
            }
            other => {
                let atom = other.atom().expect("every non-open error has an atom");
                crate::format::atom_text(atom).expect("every error atom has a text")
            }
        };
        f.write_str(text)
    }
}

impl std::error::Error for DdllError {}

/// `'UP'` or `'DOWN'` in a driver monitor message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpDown {
    /// `'UP'`.
    Up,
    /// `'DOWN'`.
    Down,
}

impl UpDown {
    /// The Erlang atom.
    pub fn atom(self) -> &'static str {
        match self {
            UpDown::Up => "UP",
            UpDown::Down => "DOWN",
        }
    }
}

/// The `Tag` of a `{'UP'|'DOWN', Ref, driver, Name, Tag}` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// `loaded`.
    Loaded,
    /// `unloaded`.
    Unloaded,
    /// `unload_cancelled`.
    UnloadCancelled,
    /// `load_cancelled`.
    LoadCancelled,
    /// `permanent`.
    Permanent,
    /// `{load_failure, LoadError}`.
    LoadFailure(LoadError),
}

impl Tag {
    /// The atom; for `LoadFailure` the tuple's first element `load_failure`.
    pub fn atom(self) -> &'static str {
        match self {
            Tag::Loaded => "loaded",
            Tag::Unloaded => "unloaded",
            Tag::UnloadCancelled => "unload_cancelled",
            Tag::LoadCancelled => "load_cancelled",
            Tag::Permanent => "permanent",
            Tag::LoadFailure(_) => "load_failure",
        }
    }
}

/// A message `{Kind, Ref, driver, Driver, Tag}` to send to process `to`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification<P> {
    /// The receiving process.
    pub to: P,
    /// `'UP'` or `'DOWN'`.
    pub kind: UpDown,
    /// The monitor reference.
    pub monitor: MonitorRef,
    /// The driver name (sent as an atom). For `immediate` notifications the runtime sends the
    /// name term exactly as the caller passed it to `monitor/2` (possibly a string).
    pub driver: Arc<str>,
    /// The tag.
    pub tag: Tag,
    /// True when produced by [`crate::DdllCore::monitor`] at once (the driver was already in the
    /// monitored state).
    pub immediate: bool,
}

/// Something the host must do after a call returns, in the order given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Effect<P> {
    /// Send this message.
    Notify(Notification<P>),
    /// Make every open port of this driver fail with exit reason `driver_unloaded`
    /// (`driver_failure_atom(Port, "driver_unloaded")`); call
    /// [`crate::DdllCore::port_closed`] for each of them as it closes.
    KillPorts {
        /// The driver whose ports must go.
        driver: Arc<str>,
    },
}

/// A call's result plus the effects the host applies, in order, after the call returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the effects must be applied by the host"]
pub struct Outcome<T, P> {
    /// The reply (or error) for the caller.
    pub result: Result<T, DdllError>,
    /// Effects to apply, in order.
    pub effects: Vec<Effect<P>>,
}

/// What `monitor(driver, {Name, Kind})` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MonitorKind {
    /// `loaded`.
    Loaded,
    /// `unloaded` (also fires when the driver is unloaded for a reload).
    Unloaded,
    /// `unloaded_only` (fires like `unloaded`, but is not cancelled by a new load).
    UnloadedOnly,
}

impl MonitorKind {
    /// Parse the atom; `None` (badarg) for anything else.
    pub fn from_atom(atom: &str) -> Option<MonitorKind> {
        match atom {
            "loaded" => Some(MonitorKind::Loaded),
            "unloaded" => Some(MonitorKind::Unloaded),
            "unloaded_only" => Some(MonitorKind::UnloadedOnly),
            _ => None,
        }
    }
}

/// An `erl_ddll:info/2` item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InfoItem {
    /// `processes`.
    Processes,
    /// `driver_options`.
    DriverOptions,
    /// `port_count`.
    PortCount,
    /// `linked_in_driver`.
    LinkedInDriver,
    /// `permanent`.
    Permanent,
    /// `awaiting_load`.
    AwaitingLoad,
    /// `awaiting_unload`.
    AwaitingUnload,
}

impl InfoItem {
    /// All items in the order `erl_ddll:info/1` lists them.
    pub const ALL: [InfoItem; 7] = [
        InfoItem::Processes,
        InfoItem::DriverOptions,
        InfoItem::PortCount,
        InfoItem::LinkedInDriver,
        InfoItem::Permanent,
        InfoItem::AwaitingLoad,
        InfoItem::AwaitingUnload,
    ];

    /// The atom.
    pub fn atom(self) -> &'static str {
        match self {
            InfoItem::Processes => "processes",
            InfoItem::DriverOptions => "driver_options",
            InfoItem::PortCount => "port_count",
            InfoItem::LinkedInDriver => "linked_in_driver",
            InfoItem::Permanent => "permanent",
            InfoItem::AwaitingLoad => "awaiting_load",
            InfoItem::AwaitingUnload => "awaiting_unload",
        }
    }

    /// Parse the atom; `None` (badarg) for anything else.
    pub fn from_atom(atom: &str) -> Option<InfoItem> {
        InfoItem::ALL.into_iter().find(|item| item.atom() == atom)
    }
}

/// An `erl_ddll:info/2` answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InfoValue<P> {
    /// `[{Pid, Count}]` for processes / awaiting_load / awaiting_unload, in the runtime's order.
    Processes(Vec<(P, u32)>),
    /// `[kill_ports]` or `[]`.
    DriverOptions {
        /// Whether the list holds `kill_ports`.
        kill_ports: bool,
    },
    /// An integer port count.
    PortCount(u32),
    /// `true` / `false`.
    Bool(bool),
    /// The atom `linked_in_driver` (the driver is linked in).
    LinkedInDriver,
    /// The atom `permanent` (the driver is permanent).
    Permanent,
}

/// The internal state of a dynamically loaded driver (`DE_Handle` status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandleStatus {
    /// Loaded and usable.
    Ok,
    /// Unload pending (waiting for ports / references).
    Unload,
    /// Unload pending, ports being killed; no new ports may open.
    ForceUnload,
    /// Reload pending.
    Reload,
    /// Reload pending, ports being killed; no new ports may open.
    ForceReload,
    /// Locked by `driver_lock_driver`: never unloaded.
    Permanent,
}
