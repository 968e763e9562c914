//! Drivers adding driver entries of their own: `add_driver_entry`, `remove_driver_entry`.
//!
//! The host registers an added entry as a linked-in driver (no library handle): erl_ddll
//! answers `linked_in_driver` for its name, `erlang:open_port` opens ports on it.

use std::ffi::c_int;
use std::ptr::NonNull;

use super::guard;
use crate::types::ErlDrvEntry;

/// `void add_driver_entry(ErlDrvEntry *de)`.
///
/// # Safety
/// `de` is NULL or points to an `ErlDrvEntry` that stays valid while its library is mapped.
pub unsafe extern "C" fn add_driver_entry(de: *mut ErlDrvEntry) {
    guard("add_driver_entry", (), || {
        let (Some(entry), Some(host)) = (NonNull::new(de), crate::host::host()) else {
            return;
        };
        // SAFETY: forwarded contract.
        unsafe { host.add_driver_entry(entry) }
    })
}

/// `int remove_driver_entry(ErlDrvEntry *de)`: 1 removed, 0 not found, -1 a dynamically
/// loaded driver's entry.
///
/// # Safety
/// None: the entry is only compared by address.
pub unsafe extern "C" fn remove_driver_entry(de: *mut ErlDrvEntry) -> c_int {
    guard("remove_driver_entry", 0, || {
        match (NonNull::new(de), crate::host::host()) {
            (Some(entry), Some(host)) => host.remove_driver_entry(entry),
            _ => 0,
        }
    })
}
