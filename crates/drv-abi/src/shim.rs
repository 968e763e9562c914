//! Loading the API shim and binding its slots to this crate's implementations.
//!
//! The shim (`shim/ddll_shim.c`, built by `build.rs`) is embedded in the crate. [`install`]
//! writes it to an anonymous in-memory file (a temp file where memfd is unavailable), opens it
//! `RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE` so that drivers opened later resolve `driver_*`
//! against it, and fills every slot. It runs once per process; later calls return the first
//! outcome.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The compiled shim, embedded at build time.
static SHIM_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libddll_shim.so"));

/// Why the shim could not be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimError(pub String);

impl std::fmt::Display for ShimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot install the ddll API shim: {}", self.0)
    }
}

impl std::error::Error for ShimError {}

/// A report of an installed shim: how many functions it exports, all bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimInfo {
    /// Number of API functions exported to drivers.
    pub functions: usize,
}

static INSTALLED: OnceLock<Result<ShimInfo, ShimError>> = OnceLock::new();

/// Loads the shim and binds every exported function. Idempotent and thread-safe.
pub fn install() -> Result<ShimInfo, ShimError> {
    INSTALLED.get_or_init(install_once).clone()
}

fn install_once() -> Result<ShimInfo, ShimError> {
    let path = materialize()?;
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ShimError("shim path contains NUL".into()))?;
    // SAFETY: the shim has no constructors; dlopen with a valid NUL-terminated path.
    let handle = unsafe {
        libc::dlopen(
            cpath.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NODELETE,
        )
    };
    if handle.is_null() {
        return Err(ShimError(last_dl_error()));
    }
    let bind: unsafe extern "C" fn(*const c_char, *mut c_void) -> c_int =
        // SAFETY: `ddll_shim_bind` has exactly this C signature in shim/ddll_shim.c.
        unsafe { std::mem::transmute(symbol(handle, c"ddll_shim_bind")?) };
    let count: unsafe extern "C" fn() -> usize =
        // SAFETY: `ddll_shim_count` has exactly this C signature in shim/ddll_shim.c.
        unsafe { std::mem::transmute(symbol(handle, c"ddll_shim_count")?) };
    let name_of: unsafe extern "C" fn(usize) -> *const c_char =
        // SAFETY: `ddll_shim_name` has exactly this C signature in shim/ddll_shim.c.
        unsafe { std::mem::transmute(symbol(handle, c"ddll_shim_name")?) };
    let is_bound: unsafe extern "C" fn(usize) -> c_int =
        // SAFETY: `ddll_shim_is_bound` has exactly this C signature in shim/ddll_shim.c.
        unsafe { std::mem::transmute(symbol(handle, c"ddll_shim_is_bound")?) };

    for (name, function) in crate::api::implementations() {
        // The signature of `function` was checked at compile time (see `api::implementations`).
        // SAFETY: `name` is NUL-terminated and `function` is an `extern "C"` fn of the slot's type.
        let rc = unsafe { bind(name.as_ptr(), function) };
        if rc != 0 {
            return Err(ShimError(format!(
                "the shim has no slot for {}",
                name.to_string_lossy()
            )));
        }
    }
    // SAFETY: plain call of a C function without arguments.
    let functions = unsafe { count() };
    for i in 0..functions {
        // SAFETY: `i < count()`, for which the shim reports a bound flag.
        if unsafe { is_bound(i) } != 1 {
            // SAFETY: `i < count()`, so the shim returns one of its static names.
            let name = unsafe { CStr::from_ptr(name_of(i)) };
            return Err(ShimError(format!(
                "no implementation bound for {}",
                name.to_string_lossy()
            )));
        }
    }
    Ok(ShimInfo { functions })
}

/// Looks a symbol up in the shim.
fn symbol(handle: *mut c_void, name: &CStr) -> Result<*mut c_void, ShimError> {
    // SAFETY: `handle` is a live handle from dlopen (never closed: RTLD_NODELETE and we keep
    // it), and `name` is NUL-terminated.
    let sym = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if sym.is_null() {
        Err(ShimError(format!("shim lacks {}", name.to_string_lossy())))
    } else {
        Ok(sym)
    }
}

fn last_dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl* call on
    // this thread; we copy it at once.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-null, NUL-terminated (see above).
        unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Puts the shim image somewhere dlopen can read it: a memfd on Linux, else a temp file.
fn materialize() -> Result<PathBuf, ShimError> {
    #[cfg(target_os = "linux")]
    {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create with a static NUL-terminated name and no flags that would
        // close it on exec (we keep it open for the life of the process, dlopen reads it).
        let fd = unsafe { libc::memfd_create(c"ddll_shim".as_ptr(), 0) };
        if fd >= 0 {
            // SAFETY: `fd` is a fresh descriptor we own; the File is leaked below so it stays
            // open (the path /proc/self/fd/N must remain valid until dlopen returns).
            let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
            if file.write_all(SHIM_IMAGE).is_ok() {
                std::mem::forget(file);
                return Ok(PathBuf::from(format!("/proc/self/fd/{fd}")));
            }
        }
    }
    let path = std::env::temp_dir().join(format!("libddll_shim-{}.so", std::process::id()));
    std::fs::write(&path, SHIM_IMAGE)
        .map_err(|e| ShimError(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}
