//! `driver_select`: file descriptors polled for ports, and the runtime's poll thread.
//!
//! Each runtime has one poll thread (started on the first `driver_select`) waiting on a
//! [`Poller`] (epoll on Linux) in one-shot mode. A descriptor selected by drivers is one
//! *registration* in the table: which port wants it readable (`ready_input`), which writable
//! (`ready_output`), under a key unique to the registration. When the poller reports it, the
//! poll thread runs the callbacks through the serialised callback path (the port's callback
//! lock, never for a closed port), checking *under that lock* that the port still selects the
//! descriptor under the same registration — a driver that deselected meanwhile (its calls run
//! under the same lock) gets no late event. Then it re-arms the descriptor with the interest in
//! force, so a descriptor that is still ready is reported again: level-triggered, as BEAM.
//!
//! As in BEAM, the last port to select a direction of a descriptor owns it ("stealing" it from
//! another port is reported on stderr); a port that closes with descriptors selected loses its
//! selections without `stop_select` (BEAM deselects them, without callback, when their next
//! event finds the port gone).
//!
//! Descriptors epoll refuses (`EPERM`: regular files, `/dev/null`, `/dev/zero`) are polled
//! with `poll()` instead, as BEAM's fallback does: they are *fallback* registrations, checked
//! by the poll thread on every round with a zero timeout (they are always ready, so while one
//! is selected the thread keeps delivering it: level-triggered like the rest), and the epoll
//! wait is kept short while any exists.
//!
//! Turning `ERL_DRV_USE` off deselects everything and calls the driver's `stop_select` at once
//! (BEAM does so too), unless the poll thread is delivering an event of that registration to
//! another thread's port (a driver with port-level locking, or a driver thread): the driver may
//! close the descriptor in `stop_select`, which must not happen under a running `ready_input`.
//! The call is then deferred to the end of that delivery, on the poll thread, outside the port
//! lock, and the driver is kept loaded until it has run ([`InFlightPort`]).

use std::collections::HashMap;
use std::ffi::c_int;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, ThreadId};

use drv_abi::types::{
    ErlDrvPort, ERL_DRV_READ, ERL_DRV_USE, ERL_DRV_USE_NO_CALLBACK, ERL_DRV_WRITE,
};
use parking_lot::Mutex;
use polling::{Event, Events, Poller};

use crate::host::GlobalHost;
use crate::in_flight::InFlightPort;
use crate::port::{self, PortCell};
use crate::runtime::{Runtime, Settle};

/// Per-port state for this capability (a field of every port).
#[derive(Debug, Default)]
pub(crate) struct PortSelect {
    /// The port has selected a descriptor at some time: closing it must look for selections.
    used: AtomicBool,
}

/// One polled descriptor.
#[derive(Debug)]
struct Registration {
    /// The poller key of this registration, unique for the runtime: an event read before a
    /// deselect (and a new registration of the same descriptor number) is recognised as stale.
    key: usize,
    /// The port that gets `ready_input`.
    input: Option<Arc<PortCell>>,
    /// The port that gets `ready_output`.
    output: Option<Arc<PortCell>>,
    /// Polled with `poll()`, not the poller (which refused it).
    fallback: bool,
}

impl Registration {
    fn interest(&self) -> Event {
        Event::new(self.key, self.input.is_some(), self.output.is_some())
    }

    fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none()
    }
}

/// A `stop_select` waiting for the poll thread to finish delivering an event of its descriptor.
#[derive(Debug)]
struct DeferredStop {
    fd: c_int,
    /// The port that turned `ERL_DRV_USE` off: its driver's `stop_select` runs, and the driver
    /// stays loaded until then.
    port: InFlightPort,
}

#[derive(Debug, Default)]
struct Table {
    registrations: HashMap<c_int, Registration>,
    by_key: HashMap<usize, c_int>,
    next_key: usize,
    /// The registration whose event the poll thread is delivering.
    delivering: Option<usize>,
    /// `stop_select` calls deferred to the end of the current delivery.
    deferred: Vec<DeferredStop>,
    shutdown: bool,
}

/// The poller and its table, shared with the poll thread.
struct Shared {
    poller: Poller,
    table: Mutex<Table>,
    /// The poll thread (it may call `stop_select` at once from inside its own callbacks).
    thread: OnceLock<ThreadId>,
}

impl Shared {
    /// Arms `fd` for the registration's interest (one-shot: re-armed after each delivery).
    /// Fallback registrations need no arming: the poll thread polls them every round.
    fn arm(&self, fd: c_int, registration: &Registration) {
        if registration.fallback {
            return;
        }
        // If the driver closed it anyway, the kernel already dropped it from the poller and
        // `modify` fails (ignored: the registration is simply never reported).
        // SAFETY: `fd` is a descriptor a driver selected and has not released (no
        // `stop_select` yet), or one the kernel has already dropped (see above).
        let source = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = self.poller.modify(source, registration.interest());
    }

    /// Removes `fd` from the poller.
    fn disarm(&self, fd: c_int) {
        // SAFETY: as in `arm`: the descriptor is still the driver's (not yet released).
        let source = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = self.poller.delete(source);
    }

    /// Forgets the registration of `fd` if nobody selects it any more, else re-arms it (unless
    /// the poll thread is delivering it: it re-arms it when done).
    fn update(&self, table: &mut Table, fd: c_int) {
        let Some(registration) = table.registrations.get(&fd) else {
            return;
        };
        if registration.is_empty() {
            let (key, fallback) = (registration.key, registration.fallback);
            table.registrations.remove(&fd);
            table.by_key.remove(&key);
            if !fallback {
                self.disarm(fd);
            }
        } else if table.delivering != Some(registration.key) {
            self.arm(fd, registration);
        }
    }
}

/// Runtime-wide state for `driver_select` (a field of every runtime): the poller, its table
/// and its thread, started on first use.
#[derive(Default)]
pub(crate) struct RuntimeSelect {
    shared: OnceLock<Arc<Shared>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RuntimeSelect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeSelect")
            .field(
                "registrations",
                &self
                    .shared
                    .get()
                    .map(|s| s.table.lock().registrations.len()),
            )
            .finish()
    }
}

impl RuntimeSelect {
    /// The poller, starting it and its thread on first use.
    fn shared(&self) -> Option<&Arc<Shared>> {
        if let Some(shared) = self.shared.get() {
            return Some(shared);
        }
        let mut thread = self.thread.lock();
        if let Some(shared) = self.shared.get() {
            return Some(shared);
        }
        let poller = match Poller::new() {
            Ok(poller) => poller,
            Err(e) => {
                eprintln!("ddll: cannot create the poller for driver_select: {e}");
                return None;
            }
        };
        let shared = Arc::new(Shared {
            poller,
            table: Mutex::default(),
            thread: OnceLock::new(),
        });
        let for_thread = shared.clone();
        match std::thread::Builder::new()
            .name("ddll-poll".into())
            .spawn(move || run(&for_thread))
        {
            Ok(handle) => {
                let _ = shared.thread.set(handle.thread().id());
                *thread = Some(handle);
                Some(self.shared.get_or_init(|| shared))
            }
            Err(e) => {
                eprintln!("ddll: cannot start the poll thread: {e}");
                None
            }
        }
    }

    /// `driver_select` for `port` (open, in this runtime).
    fn select(&self, port: &Arc<PortCell>, fd: c_int, mode: c_int, on: bool) -> c_int {
        let Some(shared) = self.shared() else {
            return -1;
        };
        let release = !on && mode & ERL_DRV_USE != 0;
        let stop = !on && mode & ERL_DRV_USE_NO_CALLBACK == ERL_DRV_USE;
        // Prepared before the table lock (taking the driver hold may use the driver table):
        // the hold of a `stop_select` that must wait for the poll thread.
        let mut hold = stop.then(|| InFlightPort::new(port.clone()));
        let stop_now = {
            let mut table = shared.table.lock();
            let mut mode = mode;
            if release {
                if !table.registrations.contains_key(&fd) {
                    // Never selected (or no longer): BEAM's fast track to stop_select.
                    drop(table);
                    if stop {
                        port.driver.driver.stop_select(fd);
                    }
                    return 0;
                }
                mode |= ERL_DRV_READ | ERL_DRV_WRITE;
            }
            if on && mode & (ERL_DRV_READ | ERL_DRV_WRITE) != 0 {
                port.select.used.store(true, Ordering::Release);
                if !table.registrations.contains_key(&fd) {
                    let key = table.next_key;
                    // usize::MAX is the poller's own key.
                    table.next_key = (key + 1) % (usize::MAX - 1);
                    // The kernel drops it when the driver closes it without deselecting.
                    // SAFETY: the driver hands over a descriptor to poll; the registration is
                    // deleted from the poller before the driver may close it (`stop_select`).
                    let added = unsafe { shared.poller.add(fd, Event::none(key)) };
                    let fallback = match added {
                        Ok(()) => false,
                        // Files and devices without poll support: BEAM polls them with poll().
                        Err(e) if e.raw_os_error() == Some(libc::EPERM) => true,
                        Err(e) => {
                            // BEAM 25 also answers 0 for a descriptor it cannot poll.
                            eprintln!("ddll: driver_select: cannot poll fd {fd}: {e}");
                            return 0;
                        }
                    };
                    let registration = Registration {
                        key,
                        input: None,
                        output: None,
                        fallback,
                    };
                    table.registrations.insert(fd, registration);
                    table.by_key.insert(key, fd);
                    if fallback {
                        // The poll thread may be waiting without a timeout: it must start
                        // polling this one.
                        let _ = shared.poller.notify();
                    }
                }
            }
            let Some(registration) = table.registrations.get_mut(&fd) else {
                // Deselecting what is not selected.
                return 0;
            };
            for (bit, slot, what) in [
                (ERL_DRV_READ, &mut registration.input, "input"),
                (ERL_DRV_WRITE, &mut registration.output, "output"),
            ] {
                if mode & bit == 0 {
                    continue;
                }
                if let Some(owner) = slot.as_ref().filter(|owner| !Arc::ptr_eq(owner, port)) {
                    eprintln!(
                        "ddll: driver_select(fd={fd}, {}) by {} driver {}: stealing control of \
                         the fd from {what} port {}",
                        if on { "on" } else { "off" },
                        port.driver.driver.name(),
                        port.term(),
                        owner.term()
                    );
                }
                *slot = on.then(|| port.clone());
            }
            let key = registration.key;
            shared.update(&mut table, fd);
            if !stop {
                false
            } else if table.delivering == Some(key)
                && shared.thread.get() != Some(&std::thread::current().id())
            {
                let port = hold.take().expect("prepared for a stop");
                table.deferred.push(DeferredStop { fd, port });
                false
            } else {
                true
            }
        };
        if stop_now {
            port.driver.driver.stop_select(fd);
        }
        // Not needed after all: the hold goes outside the table lock.
        drop(hold);
        0
    }

    /// The port is closing: it loses its selections, without `stop_select` (as in BEAM).
    pub(crate) fn port_closed(&self, port: &PortCell) {
        if !port.select.used.load(Ordering::Acquire) {
            return;
        }
        let Some(shared) = self.shared.get() else {
            return;
        };
        let mut released = Vec::new();
        let mut table = shared.table.lock();
        let mut touched = Vec::new();
        for (&fd, registration) in &mut table.registrations {
            for slot in [&mut registration.input, &mut registration.output] {
                if slot
                    .as_ref()
                    .is_some_and(|p| std::ptr::eq(Arc::as_ptr(p), port))
                {
                    released.extend(slot.take());
                    touched.push(fd);
                }
            }
        }
        for fd in touched {
            shared.update(&mut table, fd);
        }
        drop(table);
        // The table's references to the port go outside its lock.
        drop(released);
    }
}

impl Drop for RuntimeSelect {
    fn drop(&mut self) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let deferred = {
            let mut table = shared.table.lock();
            table.shutdown = true;
            for (&fd, registration) in &table.registrations {
                if !registration.fallback {
                    shared.disarm(fd);
                }
            }
            table.registrations.clear();
            table.by_key.clear();
            std::mem::take(&mut table.deferred)
        };
        let _ = shared.poller.notify();
        if let Some(thread) = self.thread.lock().take() {
            // The runtime may be dropped by the poll thread itself (it let go of the last
            // reference); it then ends on its own after this.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        for stop in deferred {
            stop.port.driver.driver.stop_select(stop.fd);
        }
    }
}

/// How long the poll thread waits on the poller while fallback registrations exist that were
/// not ready (they are re-polled after it).
const FALLBACK_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// The poll thread: wait for events, deliver each.
fn run(shared: &Shared) {
    let mut events = Events::new();
    let mut fallback_events = Vec::new();
    loop {
        events.clear();
        let fallbacks = poll_fallbacks(shared, &mut fallback_events);
        let timeout = if !fallback_events.is_empty() {
            Some(std::time::Duration::ZERO)
        } else if fallbacks {
            Some(FALLBACK_POLL_INTERVAL)
        } else {
            None
        };
        if let Err(e) = shared.poller.wait(&mut events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                eprintln!("ddll: poll thread: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        if shared.table.lock().shutdown {
            return;
        }
        for event in events.iter().chain(fallback_events.drain(..)) {
            deliver(shared, event);
        }
    }
}

/// Polls the fallback registrations (zero timeout) into `ready`; whether there are any.
fn poll_fallbacks(shared: &Shared, ready: &mut Vec<Event>) -> bool {
    let mut polled: Vec<(libc::pollfd, usize)> = {
        let table = shared.table.lock();
        table
            .registrations
            .iter()
            .filter(|(_, r)| r.fallback && !r.is_empty())
            .map(|(&fd, r)| {
                let mut events = 0;
                if r.input.is_some() {
                    events |= libc::POLLIN;
                }
                if r.output.is_some() {
                    events |= libc::POLLOUT;
                }
                let pollfd = libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                };
                (pollfd, r.key)
            })
            .collect()
    };
    if polled.is_empty() {
        return false;
    }
    // In order of registration, as the drivers selected them.
    polled.sort_by_key(|(_, key)| *key);
    let mut fds: Vec<libc::pollfd> = polled.iter().map(|(p, _)| *p).collect();
    // A descriptor the driver closed meanwhile is reported POLLNVAL (ignored below).
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call; poll()
    // only reads `fd`/`events` and writes `revents`.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    if n > 0 {
        for (pollfd, (_, key)) in fds.iter().zip(&polled) {
            // As BEAM's poll fallback: an error or hang-up wakes both directions asked for.
            let trouble = pollfd.revents & (libc::POLLERR | libc::POLLHUP) != 0;
            let readable = pollfd.revents & libc::POLLIN != 0 || trouble;
            let writable = pollfd.revents & libc::POLLOUT != 0 || trouble;
            if (readable || writable) && pollfd.revents & libc::POLLNVAL == 0 {
                ready.push(Event::new(*key, readable, writable));
            }
        }
    }
    true
}

/// Runs the callbacks of one reported event, re-arms the descriptor, and runs the
/// `stop_select` calls deferred meanwhile.
fn deliver(shared: &Shared, event: Event) {
    let (fd, input, output) = {
        let mut table = shared.table.lock();
        let Some(&fd) = table.by_key.get(&event.key) else {
            // A registration deselected after the poller reported it.
            return;
        };
        let registration = &table.registrations[&fd];
        let input = registration.input.clone().filter(|_| event.readable);
        let output = registration.output.clone().filter(|_| event.writable);
        table.delivering = Some(event.key);
        (fd, input, output)
    };
    // The callbacks may close ports and so make erl_ddll work due: settled when this ends,
    // after the deferred `stop_select` calls, holding no port (the ports are all of one
    // runtime, the first one's guard serves).
    let mut settle = None;
    for (port, input) in [(input, true), (output, false)] {
        let Some(port) = port else {
            continue;
        };
        let settle = settle.get_or_insert_with(|| Settle::for_port(&port));
        ready(shared, &port, fd, event.key, input, settle);
    }
    let deferred = {
        let mut table = shared.table.lock();
        table.delivering = None;
        if let Some(registration) = table.registrations.get(&fd).filter(|r| r.key == event.key) {
            shared.arm(fd, registration);
        }
        std::mem::take(&mut table.deferred)
    };
    for stop in deferred {
        stop.port.driver.driver.stop_select(stop.fd);
        // The driver hold goes now (its release settles).
    }
}

/// Runs `ready_input` (or `ready_output`) of `port` for `fd` if the port still selects it
/// under registration `key`, serialised with its other callbacks.
fn ready(
    shared: &Shared,
    port: &Arc<PortCell>,
    fd: c_int,
    key: usize,
    input: bool,
    settle: &Settle<Runtime>,
) {
    let selects = || {
        let table = shared.table.lock();
        table.registrations.get(&fd).is_some_and(|r| {
            let slot = if input { &r.input } else { &r.output };
            r.key == key && slot.as_ref().is_some_and(|p| Arc::ptr_eq(p, port))
        })
    };
    Runtime::serialized(port, settle, |data| {
        if !selects() {
            return;
        }
        let driver = &port.driver.driver;
        let called = if input {
            driver.ready_input(data, fd)
        } else {
            driver.ready_output(data, fd)
        };
        if !called {
            // No callback for this direction. BEAM logs an error (in its words, below) and
            // reports the descriptor no more until the driver selects it again; the port lives
            // on and its owner sees nothing. So ddll deselects this direction.
            eprintln!(
                "ddll: {} driver '{}' does not implement the {}() callback! (fd {fd})",
                if input { "Input" } else { "Output" },
                driver.name(),
                if input { "ready_input" } else { "ready_output" },
            );
            let mut table = shared.table.lock();
            if let Some(r) = table.registrations.get_mut(&fd) {
                let slot = if input { &mut r.input } else { &mut r.output };
                drop(slot.take());
            }
            shared.update(&mut table, fd);
        }
    });
}

impl drv_abi::SelectHost for GlobalHost {
    fn select(&self, handle: ErlDrvPort, fd: c_int, mode: c_int, on: bool) -> c_int {
        let Some(port) = port::owned(handle) else {
            return -1;
        };
        if port.is_closed() {
            return -1;
        }
        let Some(runtime) = port.runtime.upgrade() else {
            return -1;
        };
        runtime.select.select(&port, fd, mode, on)
    }
}
