//! A loaded driver: its library, its `ErlDrvEntry`, and safe calls of its callbacks.
//!
//! Loading follows the runtime's order of checks — open the library, find `driver_init`, call
//! it (NULL: `driver_init_failed`), check the extended marker and versions
//! (`driver_incorrect_version`), check the name (`bad_driver_name`), run the entry's `init`
//! (non-zero: `driver_init_failed`) — and closes the library again on any failure.
//!
//! Calling into a driver runs foreign code: the trust decision is made once, when the library
//! is loaded; after that the callbacks are called through safe methods whose C arguments this
//! module builds and owns.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use ddll_sys::{DriverLibrary, SysError};
use drv_queue::BinaryRef;

use crate::host::AsyncJob;
use crate::types::{
    ErlDrvBinary, ErlDrvData, ErlDrvEntry, ErlDrvPort, ErlDrvThreadData, ErlIOVec, SysIOVec,
    DRIVER_CALL_KEEP_BUFFER, ERL_DRV_ERROR_BADARG, ERL_DRV_ERROR_ERRNO, ERL_DRV_ERROR_GENERAL,
    ERL_DRV_EXTENDED_MAJOR_VERSION, ERL_DRV_EXTENDED_MARKER, ERL_DRV_EXTENDED_MINOR_VERSION,
};

/// The driver answered a control with a negative length: the caller raises `badarg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the driver returned a negative reply length")]
pub struct NegativeReply;

/// What `port_control` returns for a driver's control reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlReply {
    /// The driver left `*rbuf` NULL: `[]` in list and binary mode alike.
    Nil,
    /// A list of these bytes (list mode).
    List(Bytes),
    /// A binary (`PORT_CONTROL_FLAG_BINARY`).
    Binary(Bytes),
}

/// The reply buffer `control` is offered, as BEAM's (`ERL_ONHEAP_BIN_LIMIT`).
const CONTROL_BUFFER: usize = 64;
/// The reply buffer `call` is offered, as BEAM's (its `port_call` answered at once).
const CALL_BUFFER: usize = 255;
/// The first byte of external term format.
const ETF_VERSION: u8 = 131;

/// Why a driver could not be loaded; each maps to the runtime's error term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The dynamic linker failed: `{open_error, Code}`.
    #[error("{message}")]
    Open { code: i32, message: String },
    /// No `driver_init` symbol: `no_driver_init`.
    #[error("No driver init in dynamic library")]
    NoDriverInit,
    /// `driver_init` returned NULL or the entry's `init` failed: `driver_init_failed`.
    #[error("Driver init failed")]
    DriverInitFailed,
    /// The entry's `driver_name` differs from the requested name: `bad_driver_name`.
    #[error("Bad driver name")]
    BadDriverName,
    /// Wrong marker, major version, or a newer minor version: `driver_incorrect_version`.
    #[error("Driver compiled with incorrect version of erl_driver.h")]
    IncorrectVersion,
}

impl LoadError {
    /// The runtime's atom for this error (`{open_error, N}` has none: `None`).
    pub fn atom(&self) -> Option<&'static str> {
        match self {
            LoadError::Open { .. } => None,
            LoadError::NoDriverInit => Some("no_driver_init"),
            LoadError::DriverInitFailed => Some("driver_init_failed"),
            LoadError::BadDriverName => Some("bad_driver_name"),
            LoadError::IncorrectVersion => Some("driver_incorrect_version"),
        }
    }
}

impl From<SysError> for LoadError {
    fn from(e: SysError) -> Self {
        match e {
            SysError::Dynamic { code, message } => LoadError::Open { code, message },
            SysError::NoDriverInit => LoadError::NoDriverInit,
            SysError::BadPath => LoadError::Open {
                code: ddll_sys::intern_dynamic_error("path contains a NUL byte"),
                message: "path contains a NUL byte".into(),
            },
        }
    }
}

/// The opaque per-port value a driver's `start` returned (or handed over later: to
/// `erl_drv_init_ack`, or to `driver_create_port` for the port it creates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverData(pub usize);

impl DriverData {
    fn raw(self) -> ErlDrvData {
        self.0 as ErlDrvData
    }
}

/// Why `start` refused to open a port: the `ERL_DRV_ERROR_*` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// `ERL_DRV_ERROR_GENERAL`: open_port raises `einval`.
    General,
    /// `ERL_DRV_ERROR_ERRNO`: open_port raises the errno's atom (the errno at return).
    Errno(c_int),
    /// `ERL_DRV_ERROR_BADARG`: open_port raises `badarg`.
    BadArg,
}

/// What a driver's `start` returned, or handed to `erl_drv_init_ack`: the port's data, or the
/// error an `ERL_DRV_ERROR_*` value stands for. `ERL_DRV_ERROR_ERRNO` takes the thread's
/// `errno` now, so call this before anything else can change it.
pub fn start_result(data: ErlDrvData) -> Result<DriverData, StartError> {
    if data == ERL_DRV_ERROR_GENERAL {
        Err(StartError::General)
    } else if data == ERL_DRV_ERROR_ERRNO {
        Err(StartError::Errno(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    } else if data == ERL_DRV_ERROR_BADARG {
        Err(StartError::BadArg)
    } else {
        Ok(DriverData(data as usize))
    }
}

/// Which callbacks a driver entry sets (for `ddll check` and for dispatch decisions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callbacks {
    /// Names of the callbacks that are non-NULL, in entry order.
    pub set: Vec<&'static str>,
}

/// A driver with a checked, initialised entry. Dropping it calls nothing: call
/// [`Driver::finish`] first when unloading, as the runtime does.
///
/// Its library stays mapped while the `Driver` or any [`LibraryHold`] on it lives: threads
/// the driver created hold it until they are done (see `api/threads.rs`), so dropping the
/// `Driver` closes the library only once no thread can run its code any more;
/// [`Driver::watch`] tells when that has happened.
#[derive(Debug)]
pub struct Driver {
    entry: NonNull<ErlDrvEntry>,
    name: String,
    /// The file the library was opened from (`None` for an entry added with
    /// `add_driver_entry`).
    file: Option<PathBuf>,
    // Declared last: the library must outlive every use of `entry`. `None` for an added
    // entry that lives in no driver library (static data of the host).
    code: Option<LibraryHold>,
}

/// One mapped driver library, shared by its [`Driver`] and by the threads it created.
#[derive(Debug)]
struct Mapped {
    /// Taken (and so closed) in `drop`, before `closed` is signalled.
    library: Option<DriverLibrary>,
    /// The mapping's base address: threads find their library by it.
    base: Option<usize>,
    closed: Arc<ClosedSignal>,
}

/// Set once a library has really been closed. (parking_lot's condition variable makes no
/// system call when nobody waits, which is the common case: a close costs no wake-up.)
#[derive(Debug, Default)]
struct ClosedSignal {
    closed: parking_lot::Mutex<bool>,
    changed: parking_lot::Condvar,
}

/// Driver libraries currently mapped, by base address (weak: the registry keeps nothing alive).
static MAPPED: Mutex<Vec<(usize, Weak<Mapped>)>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if let Some(base) = self.base {
            // Unregistered before the close, so no new mapping at this base can be confused
            // with this one.
            lock(&MAPPED).retain(|(b, weak)| *b != base || weak.strong_count() > 0);
        }
        drop(self.library.take());
        *self.closed.closed.lock() = true;
        self.closed.changed.notify_all();
    }
}

/// Keeps a driver library mapped (its code runnable) while it lives.
#[derive(Debug, Clone)]
pub struct LibraryHold(Arc<Mapped>);

impl LibraryHold {
    fn new(library: DriverLibrary, entry: NonNull<ErlDrvEntry>) -> LibraryHold {
        let base = ddll_sys::library_base_of(entry.as_ptr() as usize);
        let mapped = Arc::new(Mapped {
            library: Some(library),
            base,
            closed: Arc::default(),
        });
        if let Some(base) = base {
            let mut registry = lock(&MAPPED);
            registry.retain(|(_, weak)| weak.strong_count() > 0);
            registry.push((base, Arc::downgrade(&mapped)));
        }
        LibraryHold(mapped)
    }

    /// A hold on the driver library whose mapping contains `address` (e.g. a thread's entry
    /// function), if that library is one of the drivers loaded here.
    pub fn of_address(address: usize) -> Option<LibraryHold> {
        let base = ddll_sys::library_base_of(address)?;
        lock(&MAPPED)
            .iter()
            .rev()
            .filter(|(b, _)| *b == base)
            .find_map(|(_, weak)| weak.upgrade())
            .map(LibraryHold)
    }
}

/// How many driver libraries are mapped now (held by a [`Driver`] or a thread of its): zero
/// once every driver is unloaded and every thread they created is done, if nothing leaked.
pub fn mapped_libraries() -> usize {
    lock(&MAPPED)
        .iter()
        .filter(|(_, weak)| weak.strong_count() > 0)
        .count()
}

/// Tells when an unloaded driver's library has really been closed (every [`Driver`] and
/// [`LibraryHold`] on it dropped).
#[derive(Debug, Clone)]
pub struct LibraryWatch(Arc<ClosedSignal>);

impl LibraryWatch {
    /// Whether the library is closed.
    pub fn is_closed(&self) -> bool {
        *self.0.closed.lock()
    }

    /// Waits up to `timeout` for the library to close; true once it is.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let mut closed = self.0.closed.lock();
        let deadline = std::time::Instant::now() + timeout;
        while !*closed {
            if self.0.changed.wait_until(&mut closed, deadline).timed_out() {
                break;
            }
        }
        *closed
    }
}

// SAFETY: the entry is only read after loading (its callbacks are thread-safe by the driver
// API's contract; callers serialise them per port/driver as the runtime does), and the library
// handle is process-global.
unsafe impl Send for Driver {}
// SAFETY: as above: shared access only reads the entry.
unsafe impl Sync for Driver {}

/// What the driver's entry says about itself before the name/init checks (for `ddll check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    /// `extended_marker` as found.
    pub marker: u32,
    /// `major_version`.
    pub major: i32,
    /// `minor_version`.
    pub minor: i32,
    /// `driver_name` (lossy UTF-8), if non-NULL.
    pub name: Option<String>,
    /// `driver_flags`.
    pub flags: i32,
    /// The callbacks set.
    pub callbacks: Callbacks,
}

impl Driver {
    /// Loads `<dir>/<name>.so` and initialises the driver named `name`.
    pub fn load(dir: &Path, name: &str) -> Result<Driver, LoadError> {
        let library = DriverLibrary::open(&dir.join(name))?;
        Self::from_library(library, name)
    }

    /// Initialises the driver in an already opened library, checking it is named `name`.
    pub fn from_library(library: DriverLibrary, name: &str) -> Result<Driver, LoadError> {
        let entry = Self::entry_of(&library)?;
        // SAFETY: `entry` was returned by the library's driver_init and the library is open.
        let facts = unsafe { facts(entry) };
        if !version_supported(&facts) {
            return Err(LoadError::IncorrectVersion);
        }
        if facts.name.as_deref() != Some(name) {
            return Err(LoadError::BadDriverName);
        }
        let file = library.file().to_owned();
        // Registered before init runs, so threads init starts are attributed to the library.
        let code = LibraryHold::new(library, entry);
        // SAFETY: a checked entry of an open library.
        if !unsafe { run_init(entry) } {
            return Err(LoadError::DriverInitFailed);
        }
        Ok(Driver {
            entry,
            name: name.to_owned(),
            file: Some(file),
            code: Some(code),
        })
    }

    /// A driver for an entry that a driver added with `add_driver_entry` (a linked-in driver,
    /// as erl_ddll sees it): checks the entry, runs its `init` as the runtime does, and holds
    /// the driver library the entry lives in (if it is one loaded here) for as long as this
    /// `Driver` lives.
    ///
    /// # Safety
    /// `entry` points to an `ErlDrvEntry` (and its name and callbacks) that stays valid while
    /// the library holding it is mapped, or for the life of the process if no driver library
    /// holds it.
    pub unsafe fn from_entry(entry: NonNull<ErlDrvEntry>) -> Result<Driver, LoadError> {
        let code = LibraryHold::of_address(entry.as_ptr() as usize);
        // SAFETY: a valid entry (contract).
        let facts = unsafe { facts(entry) };
        if !version_supported(&facts) {
            return Err(LoadError::IncorrectVersion);
        }
        let Some(name) = facts.name else {
            return Err(LoadError::BadDriverName);
        };
        // SAFETY: a valid, checked entry (contract).
        if !unsafe { run_init(entry) } {
            return Err(LoadError::DriverInitFailed);
        }
        Ok(Driver {
            entry,
            name,
            file: None,
            code,
        })
    }

    /// The entry's address (how `remove_driver_entry` names a driver).
    pub fn entry_address(&self) -> usize {
        self.entry.as_ptr() as usize
    }

    /// Watches for the library's real close, which happens once this `Driver` and every
    /// thread holding the library are gone. `None` for entries without a library.
    pub fn watch(&self) -> Option<LibraryWatch> {
        self.code
            .as_ref()
            .map(|code| LibraryWatch(code.0.closed.clone()))
    }

    /// Reads the entry facts of a library without initialising the driver (`ddll check`).
    pub fn inspect(library: &DriverLibrary) -> Result<EntryFacts, LoadError> {
        let entry = Self::entry_of(library)?;
        // SAFETY: an entry returned by the open library's driver_init.
        Ok(unsafe { facts(entry) })
    }

    fn entry_of(library: &DriverLibrary) -> Result<NonNull<ErlDrvEntry>, LoadError> {
        let init = library.driver_init()?;
        // SAFETY: calling driver_init is what loading a driver means; it takes no arguments.
        let entry = unsafe { init() };
        NonNull::new(entry.cast::<ErlDrvEntry>()).ok_or(LoadError::DriverInitFailed)
    }

    #[inline]
    fn entry(&self) -> &ErlDrvEntry {
        // SAFETY: the entry stays valid while the library is open, i.e. as long as `self`.
        unsafe { self.entry.as_ref() }
    }

    /// The driver's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the driver was loaded from (`None` for an entry added with
    /// `add_driver_entry`).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// `driver_flags`.
    pub fn flags(&self) -> c_int {
        self.entry().driver_flags
    }

    /// Whether the driver has an `outputv` callback.
    #[inline]
    pub fn has_outputv(&self) -> bool {
        self.entry().outputv.is_some()
    }

    /// Whether the driver has a `flush` callback.
    pub fn has_flush(&self) -> bool {
        self.entry().flush.is_some()
    }

    /// Whether the driver has a `timeout` callback.
    pub fn has_timeout(&self) -> bool {
        self.entry().timeout.is_some()
    }

    /// Whether the driver has a `ready_async` callback.
    pub fn has_ready_async(&self) -> bool {
        self.entry().ready_async.is_some()
    }

    /// `start(port, command)`. `port` is the host's handle token for the port (what the
    /// driver receives as `ErlDrvPort`; it is opaque and never dereferenced). Without a
    /// `start` the port opens with NULL data, as in BEAM.
    pub fn start(&self, port: u64, command: &str) -> Result<DriverData, StartError> {
        let port = port as usize as ErlDrvPort;
        let Some(start) = self.entry().start else {
            // BEAM opens the port without calling anything; its data is NULL.
            return Ok(DriverData(0));
        };
        let command = CString::new(command).map_err(|_| StartError::BadArg)?;
        let raw = command.into_raw();
        // SAFETY: the driver's start with its port handle and a NUL-terminated command that
        // stays valid during the call (freed right after, as in the runtime).
        let data = unsafe { start(port, raw) };
        // Before the command is freed: `free` may change errno.
        let result = start_result(data);
        // SAFETY: `raw` came from CString::into_raw above and is reclaimed once.
        drop(unsafe { CString::from_raw(raw) });
        result
    }

    /// `stop(data)`.
    pub fn stop(&self, data: DriverData) {
        if let Some(stop) = self.entry().stop {
            // SAFETY: the port's own data, once, when the port closes.
            unsafe { stop(data.raw()) }
        }
    }

    /// `output(data, buf, len)`; returns false when the driver has no `output`.
    #[inline]
    pub fn output(&self, data: DriverData, bytes: &[u8]) -> bool {
        let Some(output) = self.entry().output else {
            return false;
        };
        // SAFETY: a buffer valid for `len` bytes during the call; drivers only read it.
        unsafe {
            output(
                data.raw(),
                bytes.as_ptr().cast_mut().cast::<c_char>(),
                bytes.len(),
            )
        };
        true
    }

    /// `outputv(data, ev)`: `ev` is an empty first entry (left free for a header, as in the
    /// runtime) followed by `binary` cut into consecutive segments of the given `lengths`
    /// (which add up to at most `binary.len()`), each with `binary` as its `binv` entry.
    /// Returns false when there is no `outputv`.
    pub fn outputv(&self, data: DriverData, binary: &BinaryRef, lengths: &[usize]) -> bool {
        let Some(outputv) = self.entry().outputv else {
            return false;
        };
        let base = binary.data_ptr().cast::<c_char>();
        let mut iov = Vec::with_capacity(lengths.len() + 1);
        let mut binv = Vec::with_capacity(lengths.len() + 1);
        iov.push(SysIOVec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        binv.push(std::ptr::null_mut::<ErlDrvBinary>());
        let mut offset = 0;
        for &len in lengths {
            let end = offset + len;
            assert!(end <= binary.len(), "segments lie inside the binary");
            iov.push(SysIOVec {
                // SAFETY: `offset <= end <= binary.len()`: in bounds (or one past the end).
                iov_base: unsafe { base.add(offset) },
                iov_len: len,
            });
            binv.push(binary.as_ptr());
            offset = end;
        }
        let mut ev = ErlIOVec {
            vsize: c_int::try_from(iov.len()).expect("fewer than 2^31 segments"),
            size: offset,
            iov: iov.as_mut_ptr(),
            binv: binv.as_mut_ptr(),
        };
        // SAFETY: `ev` and the arrays it points to live until the call returns; the binary is
        // held by the caller; drivers take their own references to keep data.
        unsafe { outputv(data.raw(), &mut ev) };
        true
    }

    /// `control(data, command, buf, len, &rbuf, rlen)`, with BEAM's reply contract.
    /// `Ok(None)` when the driver has no `control`; `Err(NegativeReply)` for a negative
    /// length (a buffer the driver put in `*rbuf` is then left to it: BEAM frees nothing).
    ///
    /// `binary_result` is asked after the call returns, because the driver may change its
    /// port's control flags inside the call, and the runtime reads them afterwards.
    pub fn control(
        &self,
        data: DriverData,
        command: c_uint,
        input: &[u8],
        binary_result: impl FnOnce() -> bool,
    ) -> Result<Option<ControlReply>, NegativeReply> {
        let Some(control) = self.entry().control else {
            return Ok(None);
        };
        let mut local = [0u8; CONTROL_BUFFER];
        let mut rbuf: *mut c_char = local.as_mut_ptr().cast();
        // SAFETY: input valid for its length; rbuf points to CONTROL_BUFFER writable bytes
        // (rlen).
        let n = unsafe {
            control(
                data.raw(),
                command,
                input.as_ptr().cast_mut().cast(),
                input.len(),
                &mut rbuf,
                local.len(),
            )
        };
        if n < 0 {
            return Err(NegativeReply);
        }
        let n = n as usize;
        if rbuf.is_null() {
            // BEAM answers [] for a NULL reply in either mode, whatever the length.
            return Ok(Some(ControlReply::Nil));
        }
        let binary = binary_result();
        if rbuf == local.as_mut_ptr().cast() {
            // A length past the buffer reads beyond BEAM's own (undefined there): ddll gives
            // the bytes it has.
            let bytes = Bytes::copy_from_slice(&local[..n.min(CONTROL_BUFFER)]);
            return Ok(Some(if binary {
                ControlReply::Binary(bytes)
            } else {
                ControlReply::List(bytes)
            }));
        }
        if binary {
            // BEAM returns it whole (its orig_size), whatever length the callback returned.
            // SAFETY: with PORT_CONTROL_FLAG_BINARY a replaced rbuf is a driver binary whose
            // reference is handed over to the runtime (the control contract).
            let binary = unsafe { BinaryRef::from_raw(rbuf.cast::<ErlDrvBinary>()) };
            return Ok(Some(ControlReply::Binary(binary.to_bytes(..))));
        }
        // SAFETY: a replaced rbuf in list mode is driver_alloc'ed memory valid for `n` bytes
        // (the control contract); the runtime copies it and frees it once, as BEAM does.
        let reply = unsafe {
            let reply = Bytes::copy_from_slice(std::slice::from_raw_parts(rbuf.cast::<u8>(), n));
            libc::free(rbuf.cast::<c_void>());
            reply
        };
        Ok(Some(ControlReply::List(reply)))
    }

    /// `call(data, command, buf, len, &rbuf, rlen, &flags)`, with BEAM's reply contract: the
    /// reply (external term format) decoded by `decode`, or `None` for `badarg` — no `call`, a
    /// length of zero or less, no version byte first, or a reply `decode` refuses. A reply the
    /// driver put in its own buffer is freed only once decoded, and not with
    /// `DRIVER_CALL_KEEP_BUFFER` (the driver keeps it, e.g. `*rbuf = buf`); after a refused
    /// reply BEAM frees nothing, and neither does ddll.
    pub fn call<T>(
        &self,
        data: DriverData,
        command: c_uint,
        input: &[u8],
        decode: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let call = self.entry().call?;
        let mut local = [0u8; CALL_BUFFER];
        let mut rbuf: *mut c_char = local.as_mut_ptr().cast();
        let mut flags: c_uint = 0;
        // SAFETY: as for control; `flags` is a valid out-pointer.
        let n = unsafe {
            call(
                data.raw(),
                command,
                input.as_ptr().cast_mut().cast(),
                input.len(),
                &mut rbuf,
                local.len(),
                &mut flags,
            )
        };
        if n <= 0 || rbuf.is_null() {
            return None;
        }
        let n = n as usize;
        let ours = rbuf == local.as_mut_ptr().cast();
        let reply: &[u8] = if ours {
            // A length past the buffer: BEAM decodes from its buffer, reading only the term.
            &local[..n.min(CALL_BUFFER)]
        } else {
            // SAFETY: a replaced rbuf is valid for the `n` bytes the driver returned (the call
            // contract), and stays so until freed below.
            unsafe { std::slice::from_raw_parts(rbuf.cast::<u8>(), n) }
        };
        if reply.first() != Some(&ETF_VERSION) {
            return None;
        }
        let term = decode(reply)?;
        if !ours && flags & DRIVER_CALL_KEEP_BUFFER == 0 {
            // SAFETY: a replaced rbuf without DRIVER_CALL_KEEP_BUFFER is driver_alloc'ed
            // memory handed over to the runtime (the call contract), freed once.
            unsafe { libc::free(rbuf.cast::<c_void>()) };
        }
        Some(term)
    }

    /// `flush(data)`.
    pub fn flush(&self, data: DriverData) {
        if let Some(flush) = self.entry().flush {
            // SAFETY: the port's own data.
            unsafe { flush(data.raw()) }
        }
    }

    /// `timeout(data)`.
    pub fn timeout(&self, data: DriverData) {
        if let Some(timeout) = self.entry().timeout {
            // SAFETY: the port's own data.
            unsafe { timeout(data.raw()) }
        }
    }

    /// `ready_async(data, async_data)` for a finished async job of the port; the driver's
    /// `ready_async` takes the job over (it frees the data). Without a `ready_async` the job is
    /// given back, for the caller to drop (which calls `async_free`), as the runtime does.
    pub fn ready_async(&self, data: DriverData, job: AsyncJob) -> Result<(), AsyncJob> {
        let Some(ready_async) = self.entry().ready_async else {
            return Err(job);
        };
        let thread_data: ErlDrvThreadData = job.into_data().cast();
        // SAFETY: the port's own data and the async data of a job of this driver, handed over
        // once.
        unsafe { ready_async(data.raw(), thread_data) };
        Ok(())
    }

    /// `ready_input(data, event)` for a selected descriptor that is readable; false when the
    /// driver has no `ready_input`.
    pub fn ready_input(&self, data: DriverData, fd: c_int) -> bool {
        let Some(ready_input) = self.entry().ready_input else {
            return false;
        };
        // SAFETY: the port's own data and the descriptor the driver selected (an event is the
        // descriptor cast to a pointer, never dereferenced by the runtime).
        unsafe { ready_input(data.raw(), event_of(fd)) };
        true
    }

    /// `ready_output(data, event)` for a selected descriptor that is writable; false when the
    /// driver has no `ready_output`.
    pub fn ready_output(&self, data: DriverData, fd: c_int) -> bool {
        let Some(ready_output) = self.entry().ready_output else {
            return false;
        };
        // SAFETY: as for `ready_input`.
        unsafe { ready_output(data.raw(), event_of(fd)) };
        true
    }

    /// `stop_select(event, NULL)`: the runtime no longer uses a descriptor the driver turned
    /// `ERL_DRV_USE` off for, which it may now close. Nothing without a `stop_select`.
    pub fn stop_select(&self, fd: c_int) {
        if let Some(stop_select) = self.entry().stop_select {
            // SAFETY: the descriptor the driver released, once; `reserved` is NULL as in BEAM.
            unsafe { stop_select(event_of(fd), std::ptr::null_mut()) }
        }
    }

    /// Whether the driver has a `process_exit` callback (monitors need one).
    pub fn has_process_exit(&self) -> bool {
        self.entry().process_exit.is_some()
    }

    /// `process_exit(data, &monitor)` for the monitor the runtime names `monitor`, whose
    /// process died.
    pub fn process_exit(&self, data: DriverData, monitor: u64) {
        if let Some(process_exit) = self.entry().process_exit {
            let mut monitor = crate::types::ErlDrvMonitor::from_id(monitor);
            // SAFETY: the port's own data and a monitor living until the call returns.
            unsafe { process_exit(data.raw(), &mut monitor) }
        }
    }

    /// `finish()`: called once before the library is closed.
    pub fn finish(&self) {
        if let Some(finish) = self.entry().finish {
            // SAFETY: called once, before unloading, as the runtime does.
            unsafe { finish() }
        }
    }
}

/// Runs the entry's `init` (absent: success); false when it returns non-zero.
///
/// # Safety
/// `entry` is a valid, checked entry whose code is mapped.
unsafe fn run_init(entry: NonNull<ErlDrvEntry>) -> bool {
    // SAFETY: valid entry (contract).
    match unsafe { entry.as_ref() }.init {
        // SAFETY: calling the driver's init as the runtime does, once, after the checks.
        Some(init) => (unsafe { init() }) == 0,
        None => true,
    }
}

/// The oldest major version OTP 25 still loads (its `ERL_DRV_MIN_REQUIRED_MAJOR_VERSION_ON_LOAD`).
pub const MIN_MAJOR_VERSION: c_int = 2;

/// Whether the host loads a driver declaring these versions: the extended marker, a major
/// version from [`MIN_MAJOR_VERSION`] up to the host's, and for the host's own major version a
/// minor version no newer than the host's.
pub fn version_supported(facts: &EntryFacts) -> bool {
    facts.marker == ERL_DRV_EXTENDED_MARKER as u32
        && facts.major >= MIN_MAJOR_VERSION
        && (facts.major < ERL_DRV_EXTENDED_MAJOR_VERSION
            || (facts.major == ERL_DRV_EXTENDED_MAJOR_VERSION
                && facts.minor <= ERL_DRV_EXTENDED_MINOR_VERSION))
}

/// Reads the facts of an entry.
///
/// # Safety
/// `entry` points to a live `ErlDrvEntry` (from an open library's `driver_init`).
unsafe fn facts(entry: NonNull<ErlDrvEntry>) -> EntryFacts {
    // SAFETY: by contract.
    let e = unsafe { entry.as_ref() };
    let name = if e.driver_name.is_null() {
        None
    } else {
        // SAFETY: a non-NULL driver_name is a NUL-terminated string in the library.
        Some(
            unsafe { CStr::from_ptr(e.driver_name) }
                .to_string_lossy()
                .into_owned(),
        )
    };
    let mut set = Vec::new();
    macro_rules! callbacks {
        ($($field:ident),*) => { $(if e.$field.is_some() { set.push(stringify!($field)); })* };
    }
    callbacks!(
        init,
        start,
        stop,
        output,
        ready_input,
        ready_output,
        finish,
        control,
        timeout,
        outputv,
        ready_async,
        flush,
        call,
        process_exit,
        stop_select,
        emergency_close
    );
    EntryFacts {
        marker: e.extended_marker as u32,
        major: e.major_version,
        minor: e.minor_version,
        name,
        flags: e.driver_flags,
        callbacks: Callbacks { set },
    }
}

/// A file descriptor as the `ErlDrvEvent` a driver selected it with (the descriptor's value
/// cast to a pointer).
fn event_of(fd: c_int) -> crate::types::ErlDrvEvent {
    fd as isize as crate::types::ErlDrvEvent
}
