//! The C types and constants of `erl_driver.h` (OTP 25, extended driver API 3.3), as
//! `#[repr(C)]` Rust items with the C names.
//!
//! Everything here is layout-identical to the C declarations in OTP's header and in this
//! crate's own `include/erl_driver.h`; `tests/layout.rs` checks every size, alignment, field
//! offset and constant against a C compiler. The binary and I/O-vector types live in
//! `drv-queue` and are re-exported here so that one `use drv_abi::types::*` covers the ABI.
//!
//! Handles that C keeps opaque (`ErlDrvPort`, `ErlDrvData`, `ErlDrvEvent`, ...) are raw
//! pointers to zero-sized, unconstructible structs: distinct types in Rust as in C, and
//! free to carry any value the runtime or driver puts in them (ports and events are often
//! integers cast to pointers).
//!
//! ```
//! use drv_abi::types::*;
//!
//! // A minimal extended driver entry, as a Rust-written driver would fill it.
//! let mut entry = ErlDrvEntry::EMPTY;
//! entry.driver_name = c"echo_drv".as_ptr().cast_mut();
//! entry.extended_marker = ERL_DRV_EXTENDED_MARKER;
//! entry.major_version = ERL_DRV_EXTENDED_MAJOR_VERSION;
//! entry.minor_version = ERL_DRV_EXTENDED_MINOR_VERSION;
//! entry.driver_flags = ERL_DRV_FLAG_USE_PORT_LOCKING;
//! assert!(entry.start.is_none());
//! assert_eq!(ERL_DRV_EXTENDED_MARKER as u32, 0xfeee_eeed);
//! assert_eq!(ERL_DRV_ERROR_GENERAL as isize, -1);
//! ```

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::marker::{PhantomData, PhantomPinned};

pub use drv_queue::{ErlDrvBinary, ErlIOVec, SysIOVec};

// ---------------------------------------------------------------------------------------
// Integer types
// ---------------------------------------------------------------------------------------

/// `ErlDrvSizeT`: `size_t` on Unix.
pub type ErlDrvSizeT = usize;
/// `ErlDrvSSizeT`: `ssize_t` on Unix.
pub type ErlDrvSSizeT = isize;
/// `ErlDrvSInt`: a signed integer as wide as a pointer.
pub type ErlDrvSInt = isize;
/// `ErlDrvUInt`: an unsigned integer as wide as a pointer.
pub type ErlDrvUInt = usize;
/// `ErlDrvSInt64`.
pub type ErlDrvSInt64 = i64;
/// `ErlDrvUInt64`.
pub type ErlDrvUInt64 = u64;
/// `ErlDrvTime`: a time value in some [`ErlDrvTimeUnit`].
pub type ErlDrvTime = ErlDrvSInt64;
/// `ErlDrvTermData`: one word of a term spec (a tag, atom, port, pid or operand).
///
/// C declares it pointer-sized; `c_ulong` is pointer-sized on every Unix target (checked at
/// compile time below), which is what this crate supports.
pub type ErlDrvTermData = c_ulong;
/// `ErlDrvTSDKey`: a thread-specific-data key.
pub type ErlDrvTSDKey = c_int;

const _: () = assert!(
    size_of::<ErlDrvTermData>() == size_of::<usize>(),
    "ErlDrvTermData must be pointer-sized"
);

// ---------------------------------------------------------------------------------------
// Opaque handles
// ---------------------------------------------------------------------------------------

/// Declares zero-sized structs that can only be pointed at (never built, moved or shared).
macro_rules! opaque_structs {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(Debug)]
        pub struct $name {
            _private: [u8; 0],
            _not_send_sync_unpin: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque_structs! {
    /// What an [`ErlDrvPort`] points at (`struct _erl_drv_port`); never dereferenced.
    ErlDrvPortOpaque;
    /// What an [`ErlDrvData`] points at (`struct _erl_drv_data`); the driver's own state.
    ErlDrvDataOpaque;
    /// What an [`ErlDrvEvent`] points at (`struct _erl_drv_event`); usually a cast fd.
    ErlDrvEventOpaque;
    /// What an [`ErlDrvTid`] points at (`struct ErlDrvTid_`).
    ErlDrvTidOpaque;
    /// What an [`ErlDrvPDL`] points at (`struct erl_drv_port_data_lock`).
    ErlDrvPDLOpaque;
    /// `ErlDrvMutex` (`struct ErlDrvMutex_`): the API passes `ErlDrvMutex *`.
    ErlDrvMutex;
    /// `ErlDrvCond` (`struct ErlDrvCond_`): the API passes `ErlDrvCond *`.
    ErlDrvCond;
    /// `ErlDrvRWLock` (`struct ErlDrvRWLock_`): the API passes `ErlDrvRWLock *`.
    ErlDrvRWLock;
}

/// `ErlDrvPort`: a port (driver instance) handle.
pub type ErlDrvPort = *mut ErlDrvPortOpaque;
/// `ErlDrvData`: the driver's per-port data, returned by `start`.
pub type ErlDrvData = *mut ErlDrvDataOpaque;
/// `ErlDrvEvent`: something `driver_select` can wait on (a file descriptor on Unix).
pub type ErlDrvEvent = *mut ErlDrvEventOpaque;
/// `ErlDrvThreadData`: C declares it with the same struct as [`ErlDrvPort`].
pub type ErlDrvThreadData = *mut ErlDrvPortOpaque;
/// `ErlDrvTid`: a driver thread identifier.
pub type ErlDrvTid = *mut ErlDrvTidOpaque;
/// `ErlDrvPDL`: a port data lock.
pub type ErlDrvPDL = *mut ErlDrvPDLOpaque;

// ---------------------------------------------------------------------------------------
// Structs
// ---------------------------------------------------------------------------------------

/// `ErlDrvMonitor`: opaque monitor storage, four pointers wide, byte-aligned (as in C).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ErlDrvMonitor {
    /// The runtime's encoding of the monitor.
    pub data: [u8; 4 * size_of::<*const c_void>()],
}

impl ErlDrvMonitor {
    /// The monitor the runtime names `id`: the number in the first eight bytes (native
    /// order), the rest zero.
    pub fn from_id(id: u64) -> ErlDrvMonitor {
        let mut monitor = ErlDrvMonitor::default();
        monitor.data[..8].copy_from_slice(&id.to_ne_bytes());
        monitor
    }

    /// The runtime's number for this monitor (0, never used, for a monitor never filled in).
    pub fn id(&self) -> u64 {
        let mut id = [0; 8];
        id.copy_from_slice(&self.data[..8]);
        u64::from_ne_bytes(id)
    }
}

/// `ErlDrvNowData`: a timestamp split like `erlang:now/0`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErlDrvNowData {
    /// Whole millions of seconds.
    pub megasecs: c_ulong,
    /// Seconds within the current million.
    pub secs: c_ulong,
    /// Microseconds within the current second.
    pub microsecs: c_ulong,
}

/// `ErlDrvThreadOpts`: options for `erl_drv_thread_create`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErlDrvThreadOpts {
    /// Suggested stack size in kilowords; negative means the default.
    pub suggested_stack_size: c_int,
}

/// `ErlDrvSysInfo`: what `driver_system_info` reports (all OTP 25 fields, in order).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ErlDrvSysInfo {
    /// `ERL_DRV_EXTENDED_MAJOR_VERSION` of the runtime.
    pub driver_major_version: c_int,
    /// `ERL_DRV_EXTENDED_MINOR_VERSION` of the runtime.
    pub driver_minor_version: c_int,
    /// NUL-terminated runtime version string.
    pub erts_version: *mut c_char,
    /// NUL-terminated OTP release string.
    pub otp_release: *mut c_char,
    /// Non-zero when threads are supported.
    pub thread_support: c_int,
    /// Non-zero when the runtime runs several schedulers.
    pub smp_support: c_int,
    /// Number of async threads.
    pub async_threads: c_int,
    /// Number of scheduler threads.
    pub scheduler_threads: c_int,
    /// NIF API major version.
    pub nif_major_version: c_int,
    /// NIF API minor version.
    pub nif_minor_version: c_int,
    /// Non-zero when dirty schedulers exist.
    pub dirty_scheduler_support: c_int,
}

impl Default for ErlDrvSysInfo {
    /// All zero, strings null (what a caller passes in before the call fills it).
    fn default() -> Self {
        Self {
            driver_major_version: 0,
            driver_minor_version: 0,
            erts_version: std::ptr::null_mut(),
            otp_release: std::ptr::null_mut(),
            thread_support: 0,
            smp_support: 0,
            async_threads: 0,
            scheduler_threads: 0,
            nif_major_version: 0,
            nif_minor_version: 0,
            dirty_scheduler_support: 0,
        }
    }
}

/// The function a dynamic driver exports as `driver_init` (see `DRIVER_INIT` in C).
pub type DriverInitFn = unsafe extern "C" fn() -> *mut ErlDrvEntry;

/// `ErlDrvEntry`: a driver's name, version stamp and callbacks (24 fields, C order).
///
/// Callbacks a driver does not implement are `None` (NULL in C). Fields from
/// `extended_marker` on are meaningful only when it equals [`ERL_DRV_EXTENDED_MARKER`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ErlDrvEntry {
    /// Called once after the driver is loaded; non-zero means failure.
    pub init: Option<unsafe extern "C" fn() -> c_int>,
    /// `open_port/2`: returns the port's data or one of the `ERL_DRV_ERROR_*` values.
    pub start: Option<unsafe extern "C" fn(port: ErlDrvPort, command: *mut c_char) -> ErlDrvData>,
    /// The port is closing.
    pub stop: Option<unsafe extern "C" fn(drv_data: ErlDrvData)>,
    /// Bytes sent to the port.
    pub output:
        Option<unsafe extern "C" fn(drv_data: ErlDrvData, buf: *mut c_char, len: ErlDrvSizeT)>,
    /// A selected event is readable.
    pub ready_input: Option<unsafe extern "C" fn(drv_data: ErlDrvData, event: ErlDrvEvent)>,
    /// A selected event is writable.
    pub ready_output: Option<unsafe extern "C" fn(drv_data: ErlDrvData, event: ErlDrvEvent)>,
    /// NUL-terminated driver name (must match the file name for dynamic drivers).
    pub driver_name: *mut c_char,
    /// Called just before the driver is unloaded.
    pub finish: Option<unsafe extern "C" fn()>,
    /// Reserved for the runtime.
    pub handle: *mut c_void,
    /// `port_control/3`.
    pub control: Option<
        unsafe extern "C" fn(
            drv_data: ErlDrvData,
            command: c_uint,
            buf: *mut c_char,
            len: ErlDrvSizeT,
            rbuf: *mut *mut c_char,
            rlen: ErlDrvSizeT,
        ) -> ErlDrvSSizeT,
    >,
    /// The driver timer expired.
    pub timeout: Option<unsafe extern "C" fn(drv_data: ErlDrvData)>,
    /// Data sent to the port, as an I/O vector.
    pub outputv: Option<unsafe extern "C" fn(drv_data: ErlDrvData, ev: *mut ErlIOVec)>,
    /// An async job finished.
    pub ready_async:
        Option<unsafe extern "C" fn(drv_data: ErlDrvData, thread_data: ErlDrvThreadData)>,
    /// The port is closing with data still queued.
    pub flush: Option<unsafe extern "C" fn(drv_data: ErlDrvData)>,
    /// `port_call/3`; may set [`DRIVER_CALL_KEEP_BUFFER`] in `*flags`.
    pub call: Option<
        unsafe extern "C" fn(
            drv_data: ErlDrvData,
            command: c_uint,
            buf: *mut c_char,
            len: ErlDrvSizeT,
            rbuf: *mut *mut c_char,
            rlen: ErlDrvSizeT,
            flags: *mut c_uint,
        ) -> ErlDrvSSizeT,
    >,
    /// Kept for layout; never called.
    pub unused_event_callback: Option<unsafe extern "C" fn()>,
    /// [`ERL_DRV_EXTENDED_MARKER`] for extended drivers.
    pub extended_marker: c_int,
    /// The driver's [`ERL_DRV_EXTENDED_MAJOR_VERSION`].
    pub major_version: c_int,
    /// The driver's [`ERL_DRV_EXTENDED_MINOR_VERSION`].
    pub minor_version: c_int,
    /// `ERL_DRV_FLAG_*` bits.
    pub driver_flags: c_int,
    /// Reserved for the runtime.
    pub handle2: *mut c_void,
    /// A process monitored with `driver_monitor_process` exited.
    pub process_exit:
        Option<unsafe extern "C" fn(drv_data: ErlDrvData, monitor: *mut ErlDrvMonitor)>,
    /// An event deselected with [`ERL_DRV_USE`] may now be closed.
    pub stop_select: Option<unsafe extern "C" fn(event: ErlDrvEvent, reserved: *mut c_void)>,
    /// The port is closed abruptly.
    pub emergency_close: Option<unsafe extern "C" fn(drv_data: ErlDrvData)>,
}

impl ErlDrvEntry {
    /// An entry with every callback `None`, every pointer null and every number zero.
    pub const EMPTY: Self = Self {
        init: None,
        start: None,
        stop: None,
        output: None,
        ready_input: None,
        ready_output: None,
        driver_name: std::ptr::null_mut(),
        finish: None,
        handle: std::ptr::null_mut(),
        control: None,
        timeout: None,
        outputv: None,
        ready_async: None,
        flush: None,
        call: None,
        unused_event_callback: None,
        extended_marker: 0,
        major_version: 0,
        minor_version: 0,
        driver_flags: 0,
        handle2: std::ptr::null_mut(),
        process_exit: None,
        stop_select: None,
        emergency_close: None,
    };
}

// ---------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------

/// `ErlNifSelectFlags`: read interest.
pub const ERL_NIF_SELECT_READ: c_int = 1 << 0;
/// `ErlNifSelectFlags`: write interest.
pub const ERL_NIF_SELECT_WRITE: c_int = 1 << 1;
/// `ErlNifSelectFlags`: stop (driver_select: `ERL_DRV_USE`).
pub const ERL_NIF_SELECT_STOP: c_int = 1 << 2;
/// `ErlNifSelectFlags`: cancel.
pub const ERL_NIF_SELECT_CANCEL: c_int = 1 << 3;
/// `ErlNifSelectFlags`: custom message.
pub const ERL_NIF_SELECT_CUSTOM_MSG: c_int = 1 << 4;
/// `ErlNifSelectFlags`: error interest.
pub const ERL_NIF_SELECT_ERROR: c_int = 1 << 5;

/// `ErlDirtyJobFlags`: CPU-bound dirty job.
pub const ERL_DIRTY_JOB_CPU_BOUND: c_int = 1;
/// `ErlDirtyJobFlags`: I/O-bound dirty job.
pub const ERL_DIRTY_JOB_IO_BOUND: c_int = 2;

/// `driver_select` mode: readable.
pub const ERL_DRV_READ: c_int = ERL_NIF_SELECT_READ;
/// `driver_select` mode: writable.
pub const ERL_DRV_WRITE: c_int = ERL_NIF_SELECT_WRITE;
/// `driver_select` mode: the event is in use (`stop_select` runs when released).
pub const ERL_DRV_USE: c_int = ERL_NIF_SELECT_STOP;
/// `driver_select` mode: in use, but release without calling `stop_select`.
pub const ERL_DRV_USE_NO_CALLBACK: c_int = ERL_DRV_USE | (ERL_DRV_USE << 1);
/// Old name of [`ERL_DRV_READ`].
pub const DO_READ: c_int = ERL_DRV_READ;
/// Old name of [`ERL_DRV_WRITE`].
pub const DO_WRITE: c_int = ERL_DRV_WRITE;

/// `ERL_DRV_EXTENDED_MARKER` (`0xfeeeeeed`), typed as the `int` field it is stored in.
pub const ERL_DRV_EXTENDED_MARKER: c_int = 0xfeee_eeed_u32 as c_int;
/// Extended driver API major version implemented (OTP 25).
pub const ERL_DRV_EXTENDED_MAJOR_VERSION: c_int = 3;
/// Extended driver API minor version implemented (OTP 25).
pub const ERL_DRV_EXTENDED_MINOR_VERSION: c_int = 3;
/// Lowest driver major version a loader accepts.
pub const ERL_DRV_MIN_REQUIRED_MAJOR_VERSION_ON_LOAD: c_int = 2;

/// `set_port_control_flags`: `port_control` replies are binaries.
pub const PORT_CONTROL_FLAG_BINARY: c_int = 1 << 0;
/// `set_port_control_flags`: (obsolete) heavy port.
pub const PORT_CONTROL_FLAG_HEAVY: c_int = 1 << 1;
/// `get_port_flags`: the port was opened with `binary`.
pub const PORT_FLAG_BINARY: c_int = 1 << 0;
/// `get_port_flags`: the port was opened with `{line, N}`.
pub const PORT_FLAG_LINE: c_int = 1 << 1;

/// `driver_flags`: the driver runs with port-level locking.
pub const ERL_DRV_FLAG_USE_PORT_LOCKING: c_int = 1 << 0;
/// `driver_flags`: output callbacks may run while the port is busy.
pub const ERL_DRV_FLAG_SOFT_BUSY: c_int = 1 << 1;
/// `driver_flags`: no busy message queue functionality.
pub const ERL_DRV_FLAG_NO_BUSY_MSGQ: c_int = 1 << 2;
/// `driver_flags`: `start` is acknowledged later with `erl_drv_init_ack`.
pub const ERL_DRV_FLAG_USE_INIT_ACK: c_int = 1 << 3;

/// `ErlDrvTimeUnit` (a C enum, `int`-sized): pass one of the `ERL_DRV_*SEC` constants.
pub type ErlDrvTimeUnit = c_int;
/// Seconds.
pub const ERL_DRV_SEC: ErlDrvTimeUnit = 0;
/// Milliseconds.
pub const ERL_DRV_MSEC: ErlDrvTimeUnit = 1;
/// Microseconds.
pub const ERL_DRV_USEC: ErlDrvTimeUnit = 2;
/// Nanoseconds.
pub const ERL_DRV_NSEC: ErlDrvTimeUnit = 3;
/// The error value of the time functions.
pub const ERL_DRV_TIME_ERROR: ErlDrvTime = i64::MIN;

/// What `driver_create_port` returns when it creates no port: the runtime's invalid port
/// (`ERTS_INVALID_ERL_DRV_PORT`, -1 as a pointer; never a port handle).
pub const ERL_DRV_INVALID_PORT: ErlDrvPort = -1_isize as ErlDrvPort;

/// `start` result: `open_port/2` fails with `einval`.
pub const ERL_DRV_ERROR_GENERAL: ErlDrvData = -1_isize as ErlDrvData;
/// `start` result: `open_port/2` fails with the name of `errno`.
pub const ERL_DRV_ERROR_ERRNO: ErlDrvData = -2_isize as ErlDrvData;
/// `start` result: `open_port/2` fails with `badarg`.
pub const ERL_DRV_ERROR_BADARG: ErlDrvData = -3_isize as ErlDrvData;

/// `erl_drv_busy_msgq_limits`: busy message queue disabled.
pub const ERL_DRV_BUSY_MSGQ_DISABLED: ErlDrvSizeT = !0;
/// `erl_drv_busy_msgq_limits`: only read the current limits.
pub const ERL_DRV_BUSY_MSGQ_READ_ONLY: ErlDrvSizeT = 0;
/// Largest settable limit.
pub const ERL_DRV_BUSY_MSGQ_LIM_MAX: ErlDrvSizeT = ERL_DRV_BUSY_MSGQ_DISABLED - 1;
/// Smallest settable limit.
pub const ERL_DRV_BUSY_MSGQ_LIM_MIN: ErlDrvSizeT = 1;

/// `port_call` return flag: the driver keeps ownership of `*rbuf`.
pub const DRIVER_CALL_KEEP_BUFFER: c_uint = 0x1;

/// Term spec tag: `[]`.
pub const ERL_DRV_NIL: ErlDrvTermData = 1;
/// Term spec tag: an atom (`driver_mk_atom`).
pub const ERL_DRV_ATOM: ErlDrvTermData = 2;
/// Term spec tag: an `ErlDrvSInt`.
pub const ERL_DRV_INT: ErlDrvTermData = 3;
/// Term spec tag: a port (`driver_mk_port`).
pub const ERL_DRV_PORT: ErlDrvTermData = 4;
/// Term spec tag: `ErlDrvBinary *`, length, offset.
pub const ERL_DRV_BINARY: ErlDrvTermData = 5;
/// Term spec tag: `char *`, length (a string).
pub const ERL_DRV_STRING: ErlDrvTermData = 6;
/// Term spec tag: a tuple of the given arity.
pub const ERL_DRV_TUPLE: ErlDrvTermData = 7;
/// Term spec tag: a list of the given length (including the tail).
pub const ERL_DRV_LIST: ErlDrvTermData = 8;
/// Term spec tag: `char *`, length, consed onto the previous term.
pub const ERL_DRV_STRING_CONS: ErlDrvTermData = 9;
/// Term spec tag: a pid (`driver_connected`, `driver_caller`).
pub const ERL_DRV_PID: ErlDrvTermData = 10;
/// Term spec tag: `double *`.
pub const ERL_DRV_FLOAT: ErlDrvTermData = 11;
/// Term spec tag: `char *`, length, in external term format.
pub const ERL_DRV_EXT2TERM: ErlDrvTermData = 12;
/// Term spec tag: an `ErlDrvUInt`.
pub const ERL_DRV_UINT: ErlDrvTermData = 13;
/// Term spec tag: `char *`, length, copied into a binary.
pub const ERL_DRV_BUF2BINARY: ErlDrvTermData = 14;
/// Term spec tag: `ErlDrvSInt64 *`.
pub const ERL_DRV_INT64: ErlDrvTermData = 15;
/// Term spec tag: `ErlDrvUInt64 *`.
pub const ERL_DRV_UINT64: ErlDrvTermData = 16;
/// Term spec tag: a map of the given number of pairs.
pub const ERL_DRV_MAP: ErlDrvTermData = 17;
