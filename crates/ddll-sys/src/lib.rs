//! `ddll-sys`: the operating-system half of dynamic driver loading.
//!
//! Opens a driver library the way the Erlang runtime does (`RTLD_NOW | RTLD_LOCAL` on Unix, so
//! a missing symbol fails at load and not at first call), finds its `driver_init`, and closes
//! it. Every failure carries the runtime's numeric code: the dynamic linker's messages are
//! interned in first-seen order and numbered from [`DYNAMIC_ERROR_OFFSET`] downwards (`-10`,
//! `-11`, ...), exactly as BEAM numbers them in `{open_error, N}`, and
//! [`dynamic_error_message`] turns a code back into its text for `format_error`.
//!
//! ```no_run
//! use std::path::Path;
//! let lib = ddll_sys::DriverLibrary::open(Path::new("/tmp/drivers/echo_drv")).expect("opens");
//! let init = lib.driver_init().expect("exports driver_init");
//! # let _ = init;
//! ```

use std::ffi::{c_void, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The first code handed to a dynamic-linker message; later messages get `-11`, `-12`, ...
pub const DYNAMIC_ERROR_OFFSET: i32 = -10;

/// What `driver_init` is: it takes nothing and returns the driver's `ErlDrvEntry *` (or NULL).
pub type DriverInitFn = unsafe extern "C" fn() -> *mut c_void;

/// Why an operation on a driver library failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysError {
    /// The dynamic linker refused; `code` is the runtime's `{open_error, Code}` number.
    #[error("{message}")]
    Dynamic { code: i32, message: String },
    /// The library has neither `driver_init` nor `_driver_init`.
    #[error("No driver init in dynamic library")]
    NoDriverInit,
    /// The path cannot be passed to the dynamic linker (it contains a NUL byte).
    #[error("path contains a NUL byte")]
    BadPath,
}

/// Dynamic-linker messages seen so far; index `i` has code `DYNAMIC_ERROR_OFFSET - i`.
static ERROR_TEXTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Interns `message` and returns its runtime code (stable for the life of the process).
pub fn intern_dynamic_error(message: &str) -> i32 {
    let mut texts = ERROR_TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    let index = match texts.iter().position(|t| t == message) {
        Some(i) => i,
        None => {
            texts.push(message.to_owned());
            texts.len() - 1
        }
    };
    DYNAMIC_ERROR_OFFSET - i32::try_from(index).expect("fewer than 2^31 distinct linker messages")
}

/// The text of a dynamic-linker code, as `erl_ddll:format_error({open_error, Code})` gives it.
pub fn dynamic_error_message(code: i32) -> &'static str {
    if code > DYNAMIC_ERROR_OFFSET {
        return "Unspecified error";
    }
    let index = (i64::from(DYNAMIC_ERROR_OFFSET) - i64::from(code)) as usize;
    let texts = ERROR_TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    match texts.get(index) {
        // Interned texts are never removed, so leaking one copy per lookup site is bounded by
        // the caller; return an owned static by leaking once per distinct message instead.
        Some(t) => leak_once(t),
        None => "Unknown dlload error",
    }
}

fn leak_once(text: &str) -> &'static str {
    static LEAKED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = leaked.iter().find(|s| **s == text) {
        return s;
    }
    let s: &'static str = Box::leak(text.to_owned().into_boxed_str());
    leaked.push(s);
    s
}

fn dynamic(message: &str) -> SysError {
    SysError::Dynamic {
        code: intern_dynamic_error(message),
        message: message.to_owned(),
    }
}

/// Strips a leading `"<file>: "` from a dlopen message, as the runtime does, so that the number
/// of distinct codes does not grow with every path tried.
fn strip_file_prefix<'a>(message: &'a str, file: &OsStr) -> &'a str {
    let file = file.as_bytes();
    if message.as_bytes().starts_with(file) {
        let rest = message[file.len()..].trim_start_matches([':', ' ']);
        if !rest.is_empty() {
            return rest;
        }
    }
    message
}

/// An open driver library. Dropping it closes the library.
#[derive(Debug)]
pub struct DriverLibrary {
    lib: libloading::os::unix::Library,
    file: PathBuf,
}

impl DriverLibrary {
    /// Opens `<path>.so` (the runtime appends the extension to `Dir/Name`).
    pub fn open(path_without_ext: &Path) -> Result<DriverLibrary, SysError> {
        let mut file = path_without_ext.as_os_str().to_owned();
        file.push(".so");
        Self::open_file(Path::new(&file))
    }

    /// Opens exactly `file`, local to this library (`RTLD_NOW | RTLD_LOCAL`).
    pub fn open_file(file: &Path) -> Result<DriverLibrary, SysError> {
        Self::open_with_flags(file, libc::RTLD_NOW | libc::RTLD_LOCAL)
    }

    /// Opens `file` with its symbols made global (`RTLD_NOW | RTLD_GLOBAL`), so that libraries
    /// opened later resolve their undefined symbols against it. For the API shim only.
    pub fn open_global(file: &Path) -> Result<DriverLibrary, SysError> {
        Self::open_with_flags(file, libc::RTLD_NOW | libc::RTLD_GLOBAL)
    }

    fn open_with_flags(file: &Path, flags: i32) -> Result<DriverLibrary, SysError> {
        if file.as_os_str().as_bytes().contains(&0) {
            return Err(SysError::BadPath);
        }
        // SAFETY: opening a library runs its ELF constructors. Loading foreign code is the whole
        // purpose of this crate; callers choose which files to open.
        let opened = unsafe { libloading::os::unix::Library::open(Some(file), flags) };
        match opened {
            Ok(lib) => Ok(DriverLibrary {
                lib,
                file: file.to_owned(),
            }),
            Err(e) => Err(dynamic(strip_file_prefix(
                &dl_message(&e),
                file.as_os_str(),
            ))),
        }
    }

    /// The file this library was opened from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Finds the driver's init function under `driver_init` or `_driver_init`.
    ///
    /// As in the runtime, each failed lookup interns its linker message (so it takes a code
    /// number) even though the error reported is [`SysError::NoDriverInit`].
    pub fn driver_init(&self) -> Result<DriverInitFn, SysError> {
        for name in ["driver_init", "_driver_init"] {
            match self.symbol_address(name) {
                Ok(address) => {
                    // By the driver ABI, `driver_init` takes no arguments and returns a pointer.
                    // SAFETY: so the non-null address (see `symbol_address`) has that type.
                    let init: DriverInitFn = unsafe { std::mem::transmute(address) };
                    return Ok(init);
                }
                Err(SysError::Dynamic { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(SysError::NoDriverInit)
    }

    /// The address of symbol `name`, or the linker's error (interned as a code).
    pub fn symbol_address(&self, name: &str) -> Result<*mut c_void, SysError> {
        let cname = CString::new(name).map_err(|_| SysError::BadPath)?;
        // SAFETY: we only take the symbol's address as a raw pointer; what it points to is not
        // touched here, and the pointer is not used past the library's life by this crate.
        let sym = unsafe {
            self.lib
                .get::<*mut c_void>(cname.as_bytes_with_nul())
                .map(|s| *s)
        };
        match sym {
            Ok(p) if !p.is_null() => Ok(p),
            Ok(_) => Err(dynamic(&format!(
                "{}: undefined symbol: {name}",
                self.file.display()
            ))),
            Err(e) => Err(dynamic(&dl_message(&e))),
        }
    }

    /// Closes the library, reporting the linker's complaint if it has one.
    pub fn close(self) -> Result<(), SysError> {
        self.lib.close().map_err(|e| dynamic(&dl_message(&e)))
    }
}

/// The base address of the loaded object holding `address` (code or data), as `dladdr`
/// reports it; `None` when no loaded object contains it. The address is only compared with
/// the linker's tables, never dereferenced.
pub fn library_base_of(address: usize) -> Option<usize> {
    if address == 0 {
        return None;
    }
    // SAFETY: an all-zero Dl_info (null pointers, zero) is a valid value for dladdr to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only looks `address` up in the linker's tables; it never dereferences it.
    let found = unsafe { libc::dladdr(address as *const c_void, &mut info) };
    (found != 0 && !info.dli_fbase.is_null()).then_some(info.dli_fbase as usize)
}

/// The dynamic linker's own text out of a libloading error (libloading displays `dlerror()`'s
/// message unchanged for the dl* variants).
fn dl_message(e: &libloading::Error) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_stripped_open_error() {
        let err = DriverLibrary::open(Path::new("/nonexistent/dir/foo")).expect_err("no file");
        let SysError::Dynamic { code, message } = err else {
            panic!("expected a dynamic error, got {err:?}");
        };
        assert_eq!(
            message,
            "cannot open shared object file: No such file or directory"
        );
        assert!(code <= DYNAMIC_ERROR_OFFSET);
        assert_eq!(dynamic_error_message(code), message);
        // The same message always gets the same code.
        let again = DriverLibrary::open(Path::new("/elsewhere/bar")).expect_err("no file");
        assert!(matches!(again, SysError::Dynamic { code: c, .. } if c == code));
    }

    #[test]
    fn non_library_file_is_an_open_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notlib.so");
        std::fs::write(&path, b"hello").expect("write");
        let err = DriverLibrary::open(&dir.path().join("notlib")).expect_err("not a library");
        assert!(
            matches!(&err, SysError::Dynamic { message, .. } if message == "file too short"),
            "{err:?}"
        );
    }

    #[test]
    fn library_base_is_found_for_code_and_not_for_nothing() {
        let strlen = libc::strlen as *const () as usize;
        let base = library_base_of(strlen).expect("libc is a loaded object");
        assert!(base <= strlen);
        assert_eq!(library_base_of(0), None);
    }

    #[test]
    fn codes_out_of_range_have_the_runtime_texts() {
        assert_eq!(dynamic_error_message(-5), "Unspecified error");
        assert_eq!(dynamic_error_message(-100_000), "Unknown dlload error");
    }

    #[test]
    fn nul_in_path_is_rejected_without_calling_the_linker() {
        assert_eq!(
            DriverLibrary::open_file(Path::new("a\0b")).expect_err("nul"),
            SysError::BadPath
        );
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
