//! What the runtime provides for drivers that add driver entries of their own.

use std::ffi::c_int;
use std::ptr::NonNull;

use crate::types::ErlDrvEntry;

/// The part of [`Host`](crate::Host) behind `add_driver_entry` / `remove_driver_entry`.
///
/// An added entry becomes a driver without a library handle of its own: erl_ddll answers
/// `linked_in_driver` for it, as BEAM does for its static drivers. Entries are named by
/// address, as in the runtime.
pub trait LinkedInHost {
    /// `add_driver_entry(de)`: register `entry` (its `init` runs; if it fails, nothing is
    /// registered, and the driver is not told, as in the runtime).
    ///
    /// # Safety
    /// `entry` points to an `ErlDrvEntry` that stays valid while the library holding it is
    /// mapped (or for the life of the process).
    unsafe fn add_driver_entry(&self, entry: NonNull<ErlDrvEntry>);
    /// `remove_driver_entry(de)`: 1 when the added entry was removed, 0 when no driver has
    /// this entry, -1 when it is a dynamically loaded driver's (those are not removed).
    fn remove_driver_entry(&self, entry: NonNull<ErlDrvEntry>) -> c_int;
}
