//! The drivers a runtime has loaded, and the host half of `ddll-core` (`Loader`): really
//! opening and closing libraries when erl_ddll's state machine says so.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ddll_core::{DdllCore, DriverHost};
use drv_abi::driver::{Driver, LibraryWatch};
use drv_abi::types::ERL_DRV_FLAG_USE_PORT_LOCKING;
use parking_lot::Mutex;

use crate::port::{self, CallbackLock};
use crate::runtime::Runtime;

/// A driver the runtime has loaded.
#[derive(Debug)]
pub(crate) struct LoadedDriver {
    pub(crate) driver: Driver,
    /// The driver-level callback lock (used unless the driver asks for port locking).
    pub(crate) lock: CallbackLock,
    /// Pending timers and async jobs of its ports, which keep it loaded.
    pub(crate) in_flight: crate::in_flight::InFlight,
    /// The driver's name, shared by the ports opened by it alone (no arguments): their name.
    name: Arc<String>,
}

impl LoadedDriver {
    pub(crate) fn new(driver: Driver) -> LoadedDriver {
        LoadedDriver {
            name: Arc::new(driver.name().to_owned()),
            driver,
            lock: port::new_callback_lock(),
            in_flight: Default::default(),
        }
    }

    /// The name of a port opened with `command` (BEAM names a port by its whole command):
    /// the driver's own name, shared, when the command is just that.
    pub(crate) fn port_name(&self, command: &str) -> Arc<String> {
        if command == self.name.as_str() {
            self.name.clone()
        } else {
            Arc::new(command.to_owned())
        }
    }

    pub(crate) fn port_lock(&self) -> CallbackLock {
        if self.driver.flags() & ERL_DRV_FLAG_USE_PORT_LOCKING != 0 {
            port::new_callback_lock()
        } else {
            self.lock.clone()
        }
    }
}

/// The erl_ddll state and the drivers it has really loaded.
#[derive(Debug, Default)]
pub(crate) struct Drivers {
    pub(crate) core: DdllCore<u64>,
    /// Dynamically loaded drivers, by name.
    pub(crate) loaded: HashMap<String, Arc<LoadedDriver>>,
    /// Libraries of unloaded drivers that threads the driver created still hold mapped, by
    /// driver name: loading that name again waits for the close (see [`Loader::load`]).
    pub(crate) closing: Vec<(String, LibraryWatch)>,
    /// Entries added with `add_driver_entry`, oldest first (linked-in drivers).
    pub(crate) linked: Vec<LinkedEntry>,
}

/// A driver entry added with `add_driver_entry`.
#[derive(Debug)]
pub(crate) struct LinkedEntry {
    /// The entry's address: how `remove_driver_entry` names it.
    pub(crate) entry: usize,
    pub(crate) driver: Arc<LoadedDriver>,
}

impl Drivers {
    /// The driver `open_port` means by `name`: the newest driver of that name.
    pub(crate) fn named(&self, name: &str) -> Option<Arc<LoadedDriver>> {
        if self.core.status(name).is_some() {
            return self.loaded.get(name).cloned();
        }
        self.linked
            .iter()
            .rev()
            .find(|l| l.driver.driver.name() == name)
            .map(|l| l.driver.clone())
    }

    /// Whether a driver due to be unloaded is still held by a port cell: a thread that closed
    /// the port from inside its own callback may still be running the driver's code.
    pub(crate) fn unload_blocked(&self) -> bool {
        self.loaded.iter().any(|(name, driver)| {
            self.core.refcount(name) == Some(0) && Arc::strong_count(driver) > 1
        })
    }
}

/// The driver tables' lock. Its guard notes, when released, whether erl_ddll work is queued,
/// so that `settle` after an operation that queued nothing costs no lock.
#[derive(Debug, Default)]
pub(crate) struct DriversLock {
    mutex: Mutex<Drivers>,
    scheduled: AtomicBool,
}

impl DriversLock {
    pub(crate) fn lock(&self) -> DriversGuard<'_> {
        DriversGuard {
            guard: self.mutex.lock(),
            scheduled: &self.scheduled,
        }
    }

    /// Whether work may be queued: exact for the thread that last released the lock.
    pub(crate) fn maybe_scheduled(&self) -> bool {
        self.scheduled.load(Ordering::Acquire)
    }
}

pub(crate) struct DriversGuard<'a> {
    guard: parking_lot::MutexGuard<'a, Drivers>,
    scheduled: &'a AtomicBool,
}

impl std::ops::Deref for DriversGuard<'_> {
    type Target = Drivers;
    fn deref(&self) -> &Drivers {
        &self.guard
    }
}

impl std::ops::DerefMut for DriversGuard<'_> {
    fn deref_mut(&mut self) -> &mut Drivers {
        &mut self.guard
    }
}

impl Drop for DriversGuard<'_> {
    fn drop(&mut self) {
        self.scheduled
            .store(self.guard.core.has_scheduled(), Ordering::Release);
    }
}

impl Runtime {
    /// `driver_lock_driver`: the driver becomes permanent; monitors get `{'UP', ..., permanent}`.
    pub(crate) fn lock_driver(&self, name: &str) -> i32 {
        let outcome = self.with_core(|core, _| core.lock_driver(name));
        let rc = if outcome.result.is_ok() { 0 } else { -1 };
        self.apply(outcome.effects);
        rc
    }
}

/// How long a load waits for the library of a previous instance of the same driver to close
/// (threads of that driver still running its code after `finish`).
const PREVIOUS_LIBRARY_WAIT: Duration = Duration::from_secs(5);

/// The host half of `ddll-core`: really opening and closing libraries.
pub(crate) struct Loader<'a> {
    pub(crate) loaded: &'a mut HashMap<String, Arc<LoadedDriver>>,
    pub(crate) closing: &'a mut Vec<(String, LibraryWatch)>,
    /// Relative driver folders are taken from here (erl_ddll itself compares paths as given,
    /// as BEAM does).
    pub(crate) base_dir: &'a Path,
    /// Which drivers load isolated and how, and the runtime their links deliver to.
    pub(crate) isolate: crate::isolate::LoaderIsolation<'a>,
}

impl DriverHost for Loader<'_> {
    fn load(&mut self, full_path: &str, name: &str) -> Result<(), ddll_core::LoadError> {
        // A new instance must get new code: the dynamic linker would hand back the old
        // mapping while the old library is still open.
        self.closing.retain(|(_, watch)| !watch.is_closed());
        if let Some((_, watch)) = self.closing.iter().find(|(n, _)| n == name) {
            if !watch.wait_closed(PREVIOUS_LIBRARY_WAIT) {
                return Err(ddll_core::LoadError::OpenError(
                    ddll_sys::intern_dynamic_error(
                        "the driver's previous library is still in use by its threads",
                    ),
                ));
            }
        }
        // BEAM opens exactly `Path/Name.so` (a name with `/` in it reaches into a subfolder,
        // relative to Path) and then refuses a library whose driver is not called Name.
        let library = self.base_dir.join(full_path);
        let loaded = match self.isolate.for_driver(name) {
            // The host process loads the same file through its own erl_ddll.
            Some(isolation) => crate::isolate::load(&library, name, isolation, &self.isolate),
            None => ddll_sys::DriverLibrary::open(&library)
                .map_err(drv_abi::driver::LoadError::from)
                .and_then(|library| Driver::from_library(library, name))
                .map_err(load_error),
        };
        match loaded {
            Ok(driver) => {
                self.loaded
                    .insert(name.to_owned(), Arc::new(LoadedDriver::new(driver)));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn unload(&mut self, name: &str) {
        let Some(driver) = self.loaded.remove(name) else {
            return;
        };
        // erl_ddll's last reference is gone: no port is open, no queued work is left, and
        // `apply` waited for callbacks still unwinding. `finish` may join the driver's threads.
        crate::isolate::unloading(&driver.driver);
        driver.driver.finish();
        let watch = driver.driver.watch();
        // Closes the library now, unless threads of the driver still hold it.
        drop(driver);
        if let Some(watch) = watch.filter(|w| !w.is_closed()) {
            self.closing.push((name.to_owned(), watch));
        }
    }
}

fn load_error(e: drv_abi::driver::LoadError) -> ddll_core::LoadError {
    use drv_abi::driver::LoadError as L;
    match e {
        L::Open { code, .. } => ddll_core::LoadError::OpenError(code),
        L::NoDriverInit => ddll_core::LoadError::NoDriverInit,
        L::DriverInitFailed => ddll_core::LoadError::DriverInitFailed,
        L::BadDriverName => ddll_core::LoadError::BadDriverName,
        L::IncorrectVersion => ddll_core::LoadError::DriverIncorrectVersion,
    }
}
