//! Driver entries added by drivers (`add_driver_entry` / `remove_driver_entry`): linked-in
//! drivers, as erl_ddll sees them.
//!
//! An added entry joins the runtime of the port whose callback adds it, as the newest driver
//! of its name: `erl_ddll` answers `linked_in_driver` for it and `open_port` opens ports on it.
//! Outside a port callback (in `init` or `finish`, where BEAM deadlocks on its driver-list
//! lock, or on a thread of the driver's) there is no runtime to join: ddll reports the call on
//! stderr and ignores it (`remove_driver_entry` answers 0).
//!
//! The entry lives in the library of the driver that added it. The added driver holds that
//! library mapped while it (or a port on it) lives, so its code stays callable even if the
//! adding driver is unloaded first (BEAM would call freed code); the adding driver's reload
//! then waits for the close (see `runtime.rs`), so a driver should remove its entries first.

use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::Arc;

use drv_abi::driver::Driver;
use drv_abi::types::ErlDrvEntry;

use crate::drivers::{LinkedEntry, LoadedDriver};
use crate::host::GlobalHost;
use crate::port;
use crate::runtime::Runtime;

/// The runtime of the port whose callback is running on this thread.
fn current_runtime(function: &str) -> Option<Runtime> {
    let runtime = port::with_current_port(Runtime::upgrade).flatten();
    if runtime.is_none() {
        eprintln!("ddll: {function} outside a port callback has no runtime to act on; ignored");
    }
    runtime
}

impl drv_abi::LinkedInHost for GlobalHost {
    unsafe fn add_driver_entry(&self, entry: NonNull<ErlDrvEntry>) {
        let Some(runtime) = current_runtime("add_driver_entry") else {
            return;
        };
        // SAFETY: forwarded contract. The entry's init runs here, outside the driver table's
        // lock, so it may use the API freely.
        let driver = match unsafe { Driver::from_entry(entry) } {
            Ok(driver) => driver,
            // The runtime ignores a failing added entry too: the driver cannot be told.
            Err(_) => return,
        };
        runtime.add_linked_in(entry.as_ptr() as usize, driver);
    }

    fn remove_driver_entry(&self, entry: NonNull<ErlDrvEntry>) -> c_int {
        match current_runtime("remove_driver_entry") {
            Some(runtime) => runtime.remove_linked_in(entry.as_ptr() as usize),
            None => 0,
        }
    }
}

impl Runtime {
    /// Registers an added entry as the newest linked-in driver of its name.
    fn add_linked_in(&self, entry: usize, driver: Driver) {
        self.with_drivers(|drivers| {
            drivers.core.add_linked_in(driver.name());
            drivers.linked.push(LinkedEntry {
                entry,
                driver: Arc::new(LoadedDriver::new(driver)),
            });
        });
    }

    /// `remove_driver_entry`: 1 removed (the newest registration of this entry), 0 unknown,
    /// -1 a dynamically loaded driver's entry.
    fn remove_linked_in(&self, entry: usize) -> c_int {
        self.with_drivers(|drivers| {
            if let Some(index) = drivers.linked.iter().rposition(|l| l.entry == entry) {
                let removed = drivers.linked.remove(index);
                let _ = drivers.core.remove_linked_in(removed.driver.driver.name());
                return 1;
            }
            let dynamic = drivers
                .loaded
                .values()
                .any(|d| d.driver.entry_address() == entry);
            if dynamic {
                -1
            } else {
                0
            }
        })
    }
}
