//! Functions that need no port: system info, atoms, errno names, dynamic loading for drivers,
//! environment, monitors comparison, time.

use std::ffi::{c_char, c_int, c_void, CStr};

use super::guard;
use crate::host::host;
use crate::types::{
    ErlDrvMonitor, ErlDrvNowData, ErlDrvSysInfo, ErlDrvTermData, ErlDrvTime, ErlDrvTimeUnit,
};

/// The ERTS version ddll reports (that of OTP 25, whose driver ABI it implements).
pub const ERTS_VERSION: &CStr = c"13.1.5";
/// The OTP release ddll reports.
pub const OTP_RELEASE: &CStr = c"25";
/// The NIF API version of OTP 25 (driver_system_info reports it).
const NIF_MAJOR_VERSION: c_int = 2;
/// See [`NIF_MAJOR_VERSION`].
const NIF_MINOR_VERSION: c_int = 16;

/// The size of `ErlDrvSysInfo` up to and including the `c_int` field `$field`
/// (`ERL_DRV_SYS_INFO_SIZE`): where each release of the struct ended.
macro_rules! sys_info_size {
    ($field:ident) => {
        std::mem::offset_of!(ErlDrvSysInfo, $field) + std::mem::size_of::<c_int>()
    };
}

/// `void driver_system_info(ErlDrvSysInfo *sip, size_t si_size)`: fills the fields that a
/// struct of `si_size` bytes has, by release as BEAM does: the first release's (driver and
/// ERTS versions, OTP release, thread and SMP support) always; the thread counts, the NIF
/// version and dirty-scheduler support only when the struct holds all of that release's
/// fields (a size ending inside a release leaves the release's fields untouched). A struct
/// smaller than the first release's is refused (BEAM stops the VM; ddll writes nothing).
///
/// # Safety
/// `sip` is valid for writing `si_size` bytes.
pub unsafe extern "C" fn driver_system_info(sip: *mut ErlDrvSysInfo, si_size: usize) {
    guard("driver_system_info", (), || {
        if sip.is_null() || si_size < sys_info_size!(smp_support) {
            return super::queue::misuse(
                "driver_system_info",
                "NULL or a struct smaller than the first release's; nothing filled",
            );
        }
        let facts = host().map(|h| h.facts());
        // SAFETY: `sip` is valid for `si_size` bytes (contract), and each field written below
        // lies inside the first `si_size` bytes (checked against its release's end).
        unsafe {
            (*sip).driver_major_version = crate::types::ERL_DRV_EXTENDED_MAJOR_VERSION;
            (*sip).driver_minor_version = crate::types::ERL_DRV_EXTENDED_MINOR_VERSION;
            (*sip).erts_version = ERTS_VERSION.as_ptr().cast_mut();
            (*sip).otp_release = OTP_RELEASE.as_ptr().cast_mut();
            (*sip).thread_support = 1;
            (*sip).smp_support = 1;
            if si_size >= sys_info_size!(scheduler_threads) {
                (*sip).async_threads = facts.map_or(0, |f| f.async_threads);
                (*sip).scheduler_threads = facts.map_or(1, |f| f.scheduler_threads);
            }
            if si_size >= sys_info_size!(nif_minor_version) {
                (*sip).nif_major_version = NIF_MAJOR_VERSION;
                (*sip).nif_minor_version = NIF_MINOR_VERSION;
            }
            if si_size >= sys_info_size!(dirty_scheduler_support) {
                (*sip).dirty_scheduler_support =
                    facts.map_or(1, |f| c_int::from(f.dirty_scheduler_support));
            }
        }
    })
}

/// `ErlDrvTermData driver_mk_atom(char *string)`: the same value for the same name, always.
///
/// As in the runtime, the name is Latin-1 (each byte one character, so UTF-8 text gives a
/// different atom) and is cut to the first 255 characters. 0 (no atom) for NULL or a full
/// atom table.
///
/// # Safety
/// `string` is a NUL-terminated string.
pub unsafe extern "C" fn driver_mk_atom(string: *mut c_char) -> ErlDrvTermData {
    guard("driver_mk_atom", 0, || {
        if string.is_null() {
            return 0;
        }
        // SAFETY: NUL-terminated by this function's contract.
        let name = unsafe { CStr::from_ptr(string) }.to_bytes();
        let name = &name[..name.len().min(drv_term::MAX_ATOM_CHARS)];
        drv_term::Atom::from_latin1(name).map_or(0, drv_term::Atom::to_term_data)
    })
}

/// `ErlDrvTermData driver_mk_term_nil(void)`.
///
/// # Safety
/// None.
pub unsafe extern "C" fn driver_mk_term_nil() -> ErlDrvTermData {
    drv_term::tags::ERL_DRV_NIL
}

/// `int null_func(void)`: does nothing, returns 0 (a placeholder callback for driver entries).
///
/// # Safety
/// None.
pub unsafe extern "C" fn null_func() -> c_int {
    0
}

/// `char *erl_errno_id(int error)`: the atom text of an errno value (`"eio"`), or `"unknown"`.
///
/// # Safety
/// None; the returned string is static.
pub unsafe extern "C" fn erl_errno_id(error: c_int) -> *mut c_char {
    errno_id(error).as_ptr().cast_mut()
}

/// The Erlang name of an errno value, as a static C string: BEAM 25's table (its names for
/// the Linux numbering, which differ from the C library's: 95 is `enotsup`; `ecanceled`,
/// `eownerdead` and `enotrecoverable` are unknown to it), `"unknown"` for any other value.
/// `scenarios/errno_ids.scen` shows BEAM's answers for 0 to 150.
pub fn errno_id(error: c_int) -> &'static CStr {
    /// BEAM's name of each errno from 0, as read from a real BEAM 25.
    const NAMES: [&CStr; 123] = [
        c"unknown",
        c"eperm",
        c"enoent",
        c"esrch",
        c"eintr",
        c"eio",
        c"enxio",
        c"e2big",
        c"enoexec",
        c"ebadf",
        c"echild",
        c"eagain",
        c"enomem",
        c"eacces",
        c"efault",
        c"enotblk",
        c"ebusy",
        c"eexist",
        c"exdev",
        c"enodev",
        c"enotdir",
        c"eisdir",
        c"einval",
        c"enfile",
        c"emfile",
        c"enotty",
        c"etxtbsy",
        c"efbig",
        c"enospc",
        c"espipe",
        c"erofs",
        c"emlink",
        c"epipe",
        c"edom",
        c"erange",
        c"edeadlk",
        c"enametoolong",
        c"enolck",
        c"enosys",
        c"enotempty",
        c"eloop",
        c"unknown",
        c"enomsg",
        c"eidrm",
        c"echrng",
        c"el2nsync",
        c"el3hlt",
        c"el3rst",
        c"elnrng",
        c"eunatch",
        c"enocsi",
        c"el2hlt",
        c"ebade",
        c"ebadr",
        c"exfull",
        c"enoano",
        c"ebadrqc",
        c"ebadslt",
        c"unknown",
        c"ebfont",
        c"enostr",
        c"enodata",
        c"etime",
        c"enosr",
        c"enonet",
        c"enopkg",
        c"eremote",
        c"enolink",
        c"eadv",
        c"esrmnt",
        c"ecomm",
        c"eproto",
        c"emultihop",
        c"edotdot",
        c"ebadmsg",
        c"eoverflow",
        c"enotuniq",
        c"ebadfd",
        c"eremchg",
        c"elibacc",
        c"elibbad",
        c"elibscn",
        c"elibmax",
        c"elibexec",
        c"eilseq",
        c"unknown",
        c"unknown",
        c"eusers",
        c"enotsock",
        c"edestaddrreq",
        c"emsgsize",
        c"eprototype",
        c"enoprotoopt",
        c"eprotonosupport",
        c"esocktnosupport",
        c"enotsup",
        c"epfnosupport",
        c"eafnosupport",
        c"eaddrinuse",
        c"eaddrnotavail",
        c"enetdown",
        c"enetunreach",
        c"enetreset",
        c"econnaborted",
        c"econnreset",
        c"enobufs",
        c"eisconn",
        c"enotconn",
        c"eshutdown",
        c"etoomanyrefs",
        c"etimedout",
        c"econnrefused",
        c"ehostdown",
        c"ehostunreach",
        c"ealready",
        c"einprogress",
        c"estale",
        c"euclean",
        c"enotnam",
        c"enavail",
        c"unknown",
        c"eremoteio",
        c"edquot",
    ];
    usize::try_from(error)
        .ok()
        .and_then(|index| NAMES.get(index))
        .copied()
        .unwrap_or(c"unknown")
}

/// `void *driver_dl_open(char *path)`: opens a library for the driver's own use.
///
/// # Safety
/// `path` is a NUL-terminated string.
pub unsafe extern "C" fn driver_dl_open(path: *mut c_char) -> *mut c_void {
    guard("driver_dl_open", std::ptr::null_mut(), || {
        // SAFETY: dlopen with a NUL-terminated path (contract); NULL is allowed by dlopen.
        unsafe { libc::dlopen(path, libc::RTLD_NOW) }
    })
}

/// `void *driver_dl_sym(void *handle, char *name)`.
///
/// # Safety
/// `handle` came from `driver_dl_open`; `name` is NUL-terminated.
pub unsafe extern "C" fn driver_dl_sym(handle: *mut c_void, name: *mut c_char) -> *mut c_void {
    guard("driver_dl_sym", std::ptr::null_mut(), || {
        if handle.is_null() || name.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: a live handle and a NUL-terminated name (contract).
        unsafe { libc::dlsym(handle, name) }
    })
}

/// `int driver_dl_close(void *handle)`.
///
/// # Safety
/// `handle` came from `driver_dl_open` and is not used afterwards.
pub unsafe extern "C" fn driver_dl_close(handle: *mut c_void) -> c_int {
    guard("driver_dl_close", -1, || {
        if handle.is_null() {
            return -1;
        }
        // SAFETY: a live handle (contract), closed once.
        unsafe { libc::dlclose(handle) }
    })
}

/// `char *driver_dl_error(void)`: the last dynamic-linking error on this thread, or NULL.
///
/// # Safety
/// None beyond dlerror's: the string is valid until the next dl* call on this thread.
pub unsafe extern "C" fn driver_dl_error() -> *mut c_char {
    // SAFETY: dlerror takes no arguments.
    unsafe { libc::dlerror() }
}

/// Serialises the driver API's environment calls: `setenv` may reallocate the environment
/// while `getenv` reads it, so the runtime guards both with one lock (BEAM's env lock).
static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `int erl_drv_putenv(const char *key, char *value)`: 0 on success, non-zero on failure.
///
/// # Safety
/// `key` and `value` are NUL-terminated strings.
pub unsafe extern "C" fn erl_drv_putenv(key: *const c_char, value: *mut c_char) -> c_int {
    guard("erl_drv_putenv", -1, || {
        if key.is_null() || value.is_null() {
            return -1;
        }
        let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: NUL-terminated by contract (setenv copies them); ENV_LOCK is held.
        unsafe { libc::setenv(key, value, 1) }
    })
}

/// `int erl_drv_getenv(const char *key, char *value, size_t *value_size)`: 0 and the value
/// copied with its NUL (`*value_size` set to its length) when it fits in `*value_size - 1`
/// bytes; 1 when it does not, -1 when the variable is not set.
///
/// As BEAM (whose documentation promises the size needed instead): on failure
/// `*value_size` is left one less than it was (BEAM reserves the NUL's byte up front and
/// writes the reduced size back), wrapping to `SIZE_MAX` for 0; a size of 0 never fits.
///
/// # Safety
/// `key` is NUL-terminated; `value` has room for `*value_size` bytes.
pub unsafe extern "C" fn erl_drv_getenv(
    key: *const c_char,
    value: *mut c_char,
    value_size: *mut usize,
) -> c_int {
    guard("erl_drv_getenv", -1, || {
        if key.is_null() || value_size.is_null() {
            return -1;
        }
        // SAFETY: `value_size` is valid for reading and writing (contract).
        let room = unsafe { *value_size };
        let failed = |rc: c_int| {
            // SAFETY: as above.
            unsafe { *value_size = room.wrapping_sub(1) };
            rc
        };
        let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: NUL-terminated by contract; ENV_LOCK is held until the result is copied.
        let found = unsafe { libc::getenv(key) };
        if found.is_null() {
            return failed(-1);
        }
        // SAFETY: getenv returned a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(found) }.to_bytes_with_nul();
        if room == 0 || bytes.len() > room || value.is_null() {
            return failed(1);
        }
        // SAFETY: `value` has room for `room >= bytes.len()` bytes (contract).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), value.cast::<u8>(), bytes.len());
            *value_size = bytes.len() - 1;
        }
        0
    })
}

/// `int driver_compare_monitors(const ErlDrvMonitor *a, const ErlDrvMonitor *b)`: a total
/// order on monitor values (0 when equal).
///
/// # Safety
/// Both point to monitors filled by `driver_monitor_process` (or copies of them).
pub unsafe extern "C" fn driver_compare_monitors(
    a: *const ErlDrvMonitor,
    b: *const ErlDrvMonitor,
) -> c_int {
    guard("driver_compare_monitors", -1, || {
        if a.is_null() || b.is_null() {
            return -1;
        }
        // SAFETY: both valid monitors (contract): plain old data of the same size.
        let (a, b) = unsafe { (&*a, &*b) };
        match a.data.cmp(&b.data) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        }
    })
}

/// `ErlDrvTime erl_drv_monotonic_time(ErlDrvTimeUnit unit)`.
///
/// # Safety
/// None.
pub unsafe extern "C" fn erl_drv_monotonic_time(unit: ErlDrvTimeUnit) -> ErlDrvTime {
    guard(
        "erl_drv_monotonic_time",
        crate::types::ERL_DRV_TIME_ERROR,
        || crate::time::monotonic_time(unit),
    )
}

/// `ErlDrvTime erl_drv_time_offset(ErlDrvTimeUnit unit)`.
///
/// # Safety
/// None.
pub unsafe extern "C" fn erl_drv_time_offset(unit: ErlDrvTimeUnit) -> ErlDrvTime {
    guard(
        "erl_drv_time_offset",
        crate::types::ERL_DRV_TIME_ERROR,
        || crate::time::time_offset(unit),
    )
}

/// `ErlDrvTime erl_drv_convert_time_unit(ErlDrvTime val, ErlDrvTimeUnit from,
/// ErlDrvTimeUnit to)`.
///
/// # Safety
/// None.
pub unsafe extern "C" fn erl_drv_convert_time_unit(
    val: ErlDrvTime,
    from: ErlDrvTimeUnit,
    to: ErlDrvTimeUnit,
) -> ErlDrvTime {
    guard(
        "erl_drv_convert_time_unit",
        crate::types::ERL_DRV_TIME_ERROR,
        || crate::time::convert_time_unit(val, from, to),
    )
}

/// `int driver_get_now(ErlDrvNowData *now)`: the seed-era timestamp, strictly increasing.
///
/// # Safety
/// `now` is valid for writing.
pub unsafe extern "C" fn driver_get_now(now: *mut ErlDrvNowData) -> c_int {
    guard("driver_get_now", -1, || {
        if now.is_null() {
            return -1;
        }
        let (megasecs, secs, microsecs) = crate::time::now();
        // SAFETY: valid for writing (contract).
        unsafe {
            *now = ErlDrvNowData {
                megasecs,
                secs,
                microsecs,
            };
        }
        0
    })
}
