//! `erl_ddll:format_error/1` with the runtime's exact texts (OTP 25).

use crate::types::{DdllError, ERROR_TABLE};

/// The input of `format_error/1`: the error term, as the runtime sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorTerm<'a> {
    /// An atom such as `inconsistent` or `bad_driver_name`.
    Atom(&'a str),
    /// `{open_error, Code}` with a small integer code (a bignum is badarg, the caller's check).
    OpenError(i64),
}

/// The runtime's code at or below which an open error carries a `dlerror` text.
pub const DYNAMIC_ERROR_OFFSET: i32 = -10;

/// Text for an error atom returned by the erl_ddll interface (`None`: not such an atom).
pub(crate) fn atom_text(atom: &str) -> Option<&'static str> {
    Some(match atom {
        "inconsistent" => {
            "Driver name and/or driver options are inconsistent with currently loaded driver"
        }
        "linked_in_driver" => "Driver is statically linked and cannot be loaded/unloaded",
        "permanent" => "DDLL driver is permanent an cannot be unloaded/loaded",
        "not_loaded" => "DDLL driver is not loaded",
        "not_loaded_by_this_process" => "DDLL driver was not loaded by this process",
        "not_pending" => "DDLL load not pending for this driver name",
        "already_loaded" => "DDLL driver is already loaded successfully",
        "pending_reload" => "Driver reloading is already pending",
        "pending_process" => {
            "Driver is loaded by others when attempting option {reload, pending_driver}"
        }
        // Handled by the Erlang module itself, before the BIF.
        "load_cancelled" => "Loading was cancelled from other process",
        _ => {
            return ERROR_TABLE
                .iter()
                .find(|(_, a, _)| *a == atom)
                .map(|(_, _, t)| *t)
        }
    })
}

/// Text for a numeric code without a host-supplied system text: table codes get their fixed text,
/// codes at or below [`DYNAMIC_ERROR_OFFSET`] "Unknown dlload error", others "Unspecified error".
pub fn builtin_code_text(code: i32) -> &'static str {
    if let Some((_, _, text)) = ERROR_TABLE.iter().find(|(c, _, _)| *c == code) {
        text
    } else if code <= DYNAMIC_ERROR_OFFSET {
        "Unknown dlload error"
    } else {
        "Unspecified error"
    }
}

/// `erl_ddll:format_error(Term)`.
///
/// `system_text` supplies the text of a dynamic (`dlerror`) open error, code ≤
/// [`DYNAMIC_ERROR_OFFSET`]; returning `None` gives the runtime's fallback text. Unknown atoms
/// give [`DdllError::BadArg`]. The code of `{open_error, Code}` is truncated to 32 bits as in C.
pub fn format_error(
    term: ErrorTerm<'_>,
    system_text: &dyn Fn(i32) -> Option<String>,
) -> Result<String, DdllError> {
    match term {
        ErrorTerm::Atom(atom) => atom_text(atom).map(str::to_owned).ok_or(DdllError::BadArg),
        ErrorTerm::OpenError(wide) => {
            let code = wide as i32; // the runtime reads it into a C int
            if code <= DYNAMIC_ERROR_OFFSET {
                if let Some(text) = system_text(code) {
                    return Ok(text);
                }
            }
            Ok(builtin_code_text(code).to_owned())
        }
    }
}
