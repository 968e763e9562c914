//! Ports: the global port table and the per-port state.
//!
//! A port's `ErlDrvPort` handle is a token, not a pointer: `(generation << 32) | (slot + 1)`.
//! Drivers may keep a handle after the port is gone; looking it up then simply fails, so a dead
//! handle gets the documented error instead of touching freed memory. The same number is the
//! port's identity in terms (`#Port<0.N>`).
//!
//! Finding a port, by purpose (each is on a measured path; use the one that fits):
//! - [`lookup`]: the table, by number; the answer every other way agrees with.
//! - [`lookup_recent`]: the table through a per-thread `Weak` of the last port looked up, for
//!   the runtime's port operations (`Runtime::port`), which talk to one port many times.
//! - [`with_locked`]: the command fast path: the port borrowed under the callback lock this
//!   thread remembered ([`remember_lock`]), no reference count taken.
//! - [`with_current_port`]: the port whose callback this thread runs (no handle: API calls
//!   that name no port, such as `driver_system_info`).
//! - [`with_port`]: a driver's API call naming a port: the current callback's port when it
//!   matches (no table access), else the table's; borrowed for the call.
//! - [`with_port_context`]: [`with_port`], also telling whether this thread holds the port's
//!   callback lock (the driver queue's access rule).
//! - [`owned`]: [`with_port`] as an owned reference, for work that outlives the call (async
//!   jobs, monitors, select, created ports, init acknowledgements).
//!
//! In the runtime, `Runtime::port` (a port id of this runtime, not closed) and
//! `Runtime::open_port_of` (also not closing with data queued) add Erlang's checks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_int;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use drv_abi::driver::DriverData;
use drv_abi::types::ErlDrvPort;
use drv_term::{Pid, Term};
use parking_lot::{Mutex, ReentrantMutex, RwLock};

use crate::drivers::LoadedDriver;
use crate::process::Process;
use crate::runtime::Inner;

/// The lock that serialises a port's callbacks: the port's own with
/// `ERL_DRV_FLAG_USE_PORT_LOCKING`, else its driver's (shared by all its ports). Reentrant, so
/// a callback may call API functions that run further callbacks of the same port (e.g.
/// `driver_failure` runs `stop`).
///
/// It also holds the open ports it serialises ([`LockedPorts`]): a thread holding the lock can
/// use them without a reference count of its own (see [`with_locked`]).
pub(crate) type CallbackLock = Arc<ReentrantMutex<LockedPorts>>;

/// A new callback lock, serialising no port yet.
pub(crate) fn new_callback_lock() -> CallbackLock {
    Arc::new(ReentrantMutex::new(LockedPorts::default()))
}

/// The open ports of a callback lock, by handle: each is added when it enters the port table
/// and removed when it leaves it, both under the lock. So a thread holding the lock that finds
/// a port here has it alive for as long as it holds the lock and borrows this map, with no
/// reference count taken: a port closed meanwhile (by a callback on this thread: other threads
/// wait for the lock) stays here until the borrow ends.
#[derive(Debug, Default)]
pub(crate) struct LockedPorts {
    open: RefCell<HashMap<u64, Arc<PortCell>, BuildHasherDefault<HandleHasher>>>,
    /// Ports that entered the table while `open` was borrowed (created by a callback of a
    /// command): added when the borrow ends.
    opened_while_borrowed: RefCell<Vec<Arc<PortCell>>>,
    /// `open` changed while borrowed: ports to add, or closed ports to drop.
    changed_while_borrowed: Cell<bool>,
}

impl LockedPorts {
    /// Adds `port` (open, in the table), later if the map is in use.
    fn add(&self, port: Arc<PortCell>) {
        match self.open.try_borrow_mut() {
            Ok(mut open) => {
                open.insert(port.handle, port);
            }
            Err(_) => {
                self.opened_while_borrowed.borrow_mut().push(port);
                self.changed_while_borrowed.set(true);
            }
        }
    }

    /// Removes the port `handle` (out of the table), later if the map is in use.
    fn remove(&self, handle: u64) {
        match self.open.try_borrow_mut() {
            Ok(mut open) => {
                open.remove(&handle);
            }
            Err(_) => self.changed_while_borrowed.set(true),
        }
    }

    /// Applies the changes made while the map was borrowed, once it no longer is (not the
    /// runtime's settling: this is the lock's own bookkeeping).
    #[inline]
    fn apply_deferred(&self) {
        if self.changed_while_borrowed.get() {
            self.apply_changes();
        }
    }

    #[cold]
    fn apply_changes(&self) {
        if let Ok(mut open) = self.open.try_borrow_mut() {
            self.changed_while_borrowed.set(false);
            for port in self.opened_while_borrowed.take() {
                open.insert(port.handle, port);
            }
            // A port closes (under this lock) before it leaves the table: closed ports have
            // left it or are leaving, and are of no use to a command.
            open.retain(|_, port| !port.is_closed());
        }
    }
}

/// Hashes a port handle with one multiplication (Fibonacci hashing): handles are unique, and
/// their low bits (the slot) already spread.
#[derive(Debug, Default)]
pub(crate) struct HandleHasher(u64);

impl HandleHasher {
    const FACTOR: u64 = 0x9e37_79b9_7f4a_7c15;
}

impl Hasher for HandleHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(Self::FACTOR);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(Self::FACTOR);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One open (or closing) port.
///
/// What every command and every output touches lives outside the `state` mutex, so that an
/// echo round trip takes no lock but the callback lock and the owner's mailbox: the connected
/// process is read with one load ([`Connected`]), and `data`, `closed` and `caller` change only
/// under the port's callback lock (atomics so that they can be read without it).
#[derive(Debug)]
pub(crate) struct PortCell {
    pub(crate) handle: u64,
    pub(crate) runtime: Weak<Inner>,
    pub(crate) driver: Arc<LoadedDriver>,
    pub(crate) lock: CallbackLock,
    /// The `binary` option, set once `start` has returned: BEAM sets a port's binary flag
    /// after its driver's `start`, so output from inside `start` is a list (yaws' setuid_drv
    /// answers from there).
    pub(crate) binary: AtomicBool,
    /// The `binary` option as `open_port` was given it (the flag above, before `start`
    /// returns; an isolated driver's host needs it to open its own port).
    pub(crate) binary_option: bool,
    pub(crate) eof: bool,
    /// The port's name (`port_info`'s `name`): the command it was opened with, or the name
    /// given to `driver_create_port` (shared with the driver's when it is the driver's name).
    pub(crate) name: Arc<str>,
    /// When the port entered its runtime, as a number that only grows (`erlang:ports()` lists
    /// ports in that order).
    pub(crate) opened: u64,
    /// The connected process (the port's owner), which gets its output.
    pub(crate) owner: Connected,
    /// `set_busy_port` and the busy message queue, and the senders waiting on them.
    pub(crate) busy: crate::busy::Busy,
    /// The driver's data for the port.
    pub(crate) data: PortData,
    /// The acknowledgement its `open_port` waits for, for a driver with
    /// `ERL_DRV_FLAG_USE_INIT_ACK` (`None` for other drivers).
    pub(crate) init_ack: Option<Box<crate::init_ack::InitAck>>,
    /// Set, under the callback lock, when the port closes; never cleared.
    pub(crate) closed: AtomicBool,
    /// A driver thread's `driver_failure*` waits in `PortState::deferred_failure` (read
    /// without a lock after every callback; see `Runtime::defer_failure`).
    pub(crate) failure_deferred: AtomicBool,
    /// The local number of the process whose call runs the current callback
    /// (`driver_caller`); written under the callback lock.
    pub(crate) caller: AtomicU64,
    /// Reductions the current callback has charged with `erl_drv_consume_timeslice`
    /// (BEAM's `reds` of a port task); reset when a callback starts.
    pub(crate) reductions: AtomicU32,
    pub(crate) state: Mutex<PortState>,
    /// The driver queue and port data lock.
    pub(crate) queue: crate::queue::PortQueueState,
    /// The port's timer.
    pub(crate) timer: crate::timer::PortTimer,
    /// `port_info`'s `input` and `output` counts.
    pub(crate) bytes: ByteCounts,
    /// Whether the port selects descriptors (`driver_select`).
    pub(crate) select: crate::select::PortSelect,
}

/// The driver's data for a port: what `start` returned, replaced by what `erl_drv_init_ack`
/// hands over; for a port made by `driver_create_port`, what its creator gave. Unset until
/// then (no callback runs). Written and read under the port's callback lock (atomics only so
/// that the cell can be shared).
#[derive(Debug, Default)]
pub(crate) struct PortData {
    value: AtomicUsize,
    set: AtomicBool,
}

impl PortData {
    /// Data already set.
    pub(crate) fn new(data: DriverData) -> PortData {
        let port_data = PortData::default();
        port_data.set(data);
        port_data
    }

    /// The data, once set.
    #[inline]
    pub(crate) fn get(&self) -> Option<DriverData> {
        self.set
            .load(Ordering::Acquire)
            .then(|| DriverData(self.value.load(Ordering::Relaxed)))
    }

    /// Sets (or replaces) the data; under the port's callback lock.
    pub(crate) fn set(&self, data: DriverData) {
        self.value.store(data.0, Ordering::Relaxed);
        self.set.store(true, Ordering::Release);
    }
}

/// The byte counts `port_info` reports, as BEAM keeps them: `input` counts what the driver sends
/// to Erlang by `driver_output` and its variants (headers included), `output` what
/// `port_command` hands the driver. Term output, `port_control` and `port_call` count in
/// neither.
#[derive(Debug, Default)]
pub(crate) struct ByteCounts {
    input: AtomicU64,
    output: AtomicU64,
}

impl ByteCounts {
    /// Counts driver output; called under the port's callback lock, so there is one writer at a
    /// time and a plain load and store do (no read-modify-write on the output path).
    #[inline]
    pub(crate) fn add_input(&self, n: usize) {
        Self::add(&self.input, n);
    }

    /// Counts a command's bytes; under the port's callback lock, as `add_input`.
    #[inline]
    pub(crate) fn add_output(&self, n: usize) {
        Self::add(&self.output, n);
    }

    #[inline]
    fn add(counter: &AtomicU64, n: usize) {
        let sum = counter.load(Ordering::Relaxed).wrapping_add(n as u64);
        counter.store(sum, Ordering::Relaxed);
    }

    /// `(input, output)`.
    pub(crate) fn get(&self) -> (u64, u64) {
        (
            self.input.load(Ordering::Relaxed),
            self.output.load(Ordering::Relaxed),
        )
    }
}

/// The rest of a port's state, read and written under its mutex.
#[derive(Debug)]
pub(crate) struct PortState {
    pub(crate) control_binary: bool,
    /// The processes linked to the port, in the order they were linked: the opener, and
    /// those of `port_connect`. They get the port's exit signal.
    pub(crate) links: Links,
    pub(crate) os_pid: Option<isize>,
    /// The port's process monitors (`driver_monitor_process`): number and process.
    pub(crate) monitors: Vec<(u64, Pid)>,
    /// The port has begun exiting (its exit signal is on the way; it is closing or about to
    /// terminate): a second exit does nothing.
    pub(crate) exiting: bool,
    /// `stop` is running or has run: the port is ending.
    pub(crate) terminating: bool,
    /// Who gets `{Port, closed}` when the port terminates (`Port ! {Pid, close}`).
    pub(crate) closed_reply: Option<Arc<Process>>,
    /// A `driver_failure*` from a driver thread while another thread held the callback lock.
    pub(crate) deferred_failure: Option<crate::failure::DeferredFailure>,
}

/// The processes linked to a port, in the order they were linked. The first is held inline
/// (the opener, linked when the port opens), the others in a vector allocated by a second
/// link: a port linked to its opener only allocates nothing here.
#[derive(Debug, Clone, Default)]
pub(crate) struct Links {
    /// The oldest link; `None` only when there is none (then `rest` is empty).
    first: Option<Arc<Process>>,
    /// The newer links, oldest first.
    rest: Vec<Arc<Process>>,
}

impl Links {
    fn one(process: Arc<Process>) -> Links {
        Links {
            first: Some(process),
            rest: Vec::new(),
        }
    }

    /// The linked processes, oldest link first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Process>> {
        self.first.iter().chain(&self.rest)
    }

    /// Links `process` (the newest link).
    pub(crate) fn push(&mut self, process: Arc<Process>) {
        if self.first.is_none() {
            self.first = Some(process);
        } else {
            self.rest.push(process);
        }
    }

    /// Keeps the links `keep` answers true for, in their order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Arc<Process>) -> bool) {
        if self.first.as_ref().is_some_and(|first| !keep(first)) {
            self.first = None;
        }
        self.rest.retain(|process| keep(process));
        if self.first.is_none() && !self.rest.is_empty() {
            self.first = Some(self.rest.remove(0));
        }
    }
}

impl<'a> IntoIterator for &'a Links {
    type Item = &'a Arc<Process>;
    type IntoIter = std::iter::Chain<std::option::Iter<'a, Arc<Process>>, std::slice::Iter<'a, Arc<Process>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.first.iter().chain(&self.rest)
    }
}

/// What a new port is made of, besides the handle the port table gives it.
pub(crate) struct NewPort {
    pub(crate) runtime: Weak<Inner>,
    pub(crate) driver: Arc<LoadedDriver>,
    pub(crate) lock: CallbackLock,
    pub(crate) owner: Arc<Process>,
    pub(crate) name: Arc<str>,
    pub(crate) binary: bool,
    pub(crate) eof: bool,
    pub(crate) data: PortData,
    pub(crate) init_ack: Option<Box<crate::init_ack::InitAck>>,
}

/// The order in which ports entered their runtimes ([`PortCell::opened`]).
static OPENED: AtomicU64 = AtomicU64::new(0);

impl PortCell {
    /// The open port `new` under `handle`.
    pub(crate) fn new(handle: u64, new: NewPort) -> PortCell {
        PortCell {
            handle,
            busy: crate::busy::Busy::new(new.driver.driver.flags()),
            runtime: new.runtime,
            driver: new.driver,
            lock: new.lock,
            binary: AtomicBool::new(false),
            binary_option: new.binary,
            eof: new.eof,
            name: new.name,
            opened: OPENED.fetch_add(1, Ordering::Relaxed),
            caller: AtomicU64::new(new.owner.pid().local_id().unwrap_or(0)),
            reductions: AtomicU32::new(0),
            owner: Connected::new(new.owner.clone()),
            data: new.data,
            init_ack: new.init_ack,
            closed: AtomicBool::new(false),
            failure_deferred: AtomicBool::new(false),
            state: Mutex::new(PortState {
                control_binary: false,
                links: Links::one(new.owner),
                os_pid: None,
                monitors: Vec::new(),
                exiting: false,
                terminating: false,
                closed_reply: None,
                deferred_failure: None,
            }),
            queue: Default::default(),
            timer: Default::default(),
            bytes: Default::default(),
            select: Default::default(),
        }
    }

    /// The port as a term.
    pub(crate) fn id(&self) -> drv_term::Port {
        drv_term::Port::local(self.handle)
    }

    pub(crate) fn term(&self) -> Term {
        Term::Port(self.id())
    }

    /// Whether the port has closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The caller of the current callback (`driver_caller`); `None` in the runtime's own
    /// callbacks (timeouts, async completions, select events...), which no process made.
    pub(crate) fn caller(&self) -> Option<Pid> {
        let id = self.caller.load(Ordering::Relaxed);
        (id != 0).then(|| Pid::local(id))
    }

    /// `erl_drv_consume_timeslice`: BEAM charges `percent` hundredths of a slice's 4000
    /// reductions (rounded up to 40 per percent) and, once they reach the slice, holds them
    /// there and answers 1 (the callback should return and let others run).
    pub(crate) fn consume_timeslice(&self, percent: c_int) -> c_int {
        const SLICE: u32 = 4000;
        let charge = percent.clamp(1, 100).unsigned_abs() * SLICE.div_ceil(100);
        let used = self
            .reductions
            .load(Ordering::Relaxed)
            .saturating_add(charge);
        let exhausted = used >= SLICE;
        self.reductions.store(used.min(SLICE), Ordering::Relaxed);
        c_int::from(exhausted)
    }

    /// Records the caller of the callback about to run; `None` (and non-local pids) as 0, no
    /// process: BEAM clears a port's caller after each call, so `driver_caller` in a port task
    /// of its own (a timeout) gives `[]`, not the process that called last.
    pub(crate) fn set_caller(&self, caller: Option<&Pid>) {
        self.caller.store(
            caller.and_then(Pid::local_id).unwrap_or(0),
            Ordering::Relaxed,
        );
    }
}

/// A port's connected process: read on every output with one load, changed (rarely: `{Pid,
/// {connect, New}}`, `port_connect`) by swapping a pointer. Every process ever connected stays
/// referenced until the port is dropped, so a reader's reference never dangles.
///
/// The first connected process (the opener) is held inline and the list of later ones is
/// allocated on the first reconnection: a port that keeps its opener (most do) allocates
/// nothing here.
#[derive(Debug)]
pub(crate) struct Connected {
    /// The process connected when the port opened.
    first: Arc<Process>,
    /// The connected process when it is not `first`: points into a box of `later`; null while
    /// `first` is connected.
    current: std::sync::atomic::AtomicPtr<Arc<Process>>,
    /// Every process connected after `first` (the current one last), boxed so that their
    /// addresses stay when the vector grows: `current` points into a box.
    #[allow(clippy::vec_box)]
    later: once_cell::race::OnceBox<Mutex<Vec<Box<Arc<Process>>>>>,
}

impl Connected {
    fn new(first: Arc<Process>) -> Connected {
        Connected {
            first,
            current: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            later: once_cell::race::OnceBox::new(),
        }
    }

    /// The connected process.
    #[inline]
    pub(crate) fn get(&self) -> &Arc<Process> {
        let current = self.current.load(Ordering::Acquire);
        if current.is_null() {
            return &self.first;
        }
        // SAFETY: a non-null `current` points into a box of `later`, which only grows and
        // lives as long as `self`.
        unsafe { &*current }
    }

    /// Connects `process` instead.
    pub(crate) fn set(&self, process: Arc<Process>) {
        let mut later = self.later.get_or_init(Box::default).lock();
        let mut boxed = Box::new(process);
        self.current
            .store(&mut *boxed as *mut Arc<Process>, Ordering::Release);
        later.push(boxed);
    }
}

impl std::ops::Deref for Connected {
    type Target = Arc<Process>;
    fn deref(&self) -> &Arc<Process> {
        self.get()
    }
}

struct Slot {
    generation: u32,
    port: Option<Arc<PortCell>>,
}

/// All ports of all runtimes in this process (drivers address them by handle only).
struct PortTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

static PORTS: RwLock<PortTable> = RwLock::new(PortTable {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Reserves a handle and stores the port built for it.
pub(crate) fn insert(build: impl FnOnce(u64) -> PortCell) -> Arc<PortCell> {
    let mut table = PORTS.write();
    let index = match table.free.pop() {
        Some(i) => i,
        None => {
            table.slots.push(Slot {
                generation: 0,
                port: None,
            });
            u32::try_from(table.slots.len() - 1).expect("fewer than 2^32 port slots")
        }
    };
    let slot = &mut table.slots[index as usize];
    slot.generation = slot.generation.wrapping_add(1);
    let handle = (u64::from(slot.generation) << 32) | (u64::from(index) + 1);
    let port = Arc::new(build(handle));
    slot.port = Some(port.clone());
    drop(table);
    // Not under the table's lock: a callback holding the callback lock may look a port up.
    port.lock.lock().add(port.clone());
    port
}

/// Forgets a port; its handle never resolves again.
pub(crate) fn remove(handle: u64) {
    let removed = {
        let mut table = PORTS.write();
        let Some(index) = slot_index(handle) else {
            return;
        };
        let generation = (handle >> 32) as u32;
        let Some(slot) = table.slots.get_mut(index) else {
            return;
        };
        if slot.generation != generation {
            return;
        }
        let removed = slot.port.take();
        if removed.is_some() {
            table.free.push(index as u32);
        }
        removed
    };
    if let Some(port) = removed {
        port.lock.lock().remove(handle);
    }
}

fn slot_index(handle: u64) -> Option<usize> {
    let low = (handle & 0xffff_ffff) as usize;
    low.checked_sub(1)
}

thread_local! {
    /// The port this thread looked up last, by handle: a thread usually talks to the same
    /// port many times, and upgrading this costs half of a table lookup (no lock). A `Weak`
    /// keeps no port (nor its driver) alive.
    static LAST_LOOKUP: RefCell<Option<(u64, Weak<PortCell>)>> = const { RefCell::new(None) };
}

/// The port behind a handle if it has not been dropped: as [`lookup`], but it may also find a
/// port just removed from the table (it is closed, and every caller checks that).
pub(crate) fn lookup_recent(handle: u64) -> Option<Arc<PortCell>> {
    // `try_with`: during thread teardown the cache may be gone; the table still answers.
    let cached = LAST_LOOKUP
        .try_with(|last| match &*last.borrow() {
            Some((h, port)) if *h == handle => port.upgrade(),
            _ => None,
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let port = lookup(handle)?;
    let _ = LAST_LOOKUP.try_with(|last| *last.borrow_mut() = Some((handle, Arc::downgrade(&port))));
    Some(port)
}

/// The port behind a handle, if it is still in the table.
pub(crate) fn lookup(handle: u64) -> Option<Arc<PortCell>> {
    let index = slot_index(handle)?;
    let generation = (handle >> 32) as u32;
    let table = PORTS.read();
    let slot = table.slots.get(index)?;
    if slot.generation != generation {
        return None;
    }
    slot.port.clone()
}

thread_local! {
    /// The callback lock of the port this thread last ran a command on, by handle (a thread
    /// usually talks to the same port many times). It keeps no port alive: ports leave the
    /// lock's map when they close.
    static COMMAND_LOCK: RefCell<Option<(u64, CallbackLock)>> = const { RefCell::new(None) };
}

/// Runs `f` with the callback lock of the port `handle` held and the port borrowed from it (no
/// reference count taken: see [`LockedPorts`]), if this thread has remembered that port's lock
/// ([`remember_lock`]), the lock is free and the port is still in it; else `None` without
/// calling `f` (the caller then looks the port up in the table). The port may have closed: `f`
/// checks.
#[inline]
pub(crate) fn with_locked<R>(handle: u64, f: impl FnOnce(&Arc<PortCell>) -> R) -> Option<R> {
    COMMAND_LOCK
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let (cached, lock) = cache.as_ref()?;
            if *cached != handle {
                return None;
            }
            // A contended lock goes the slow way, where the waiting command is counted as
            // queued for the port (its busy message queue).
            let locked = lock.try_lock()?;
            let result = {
                let open = locked.open.try_borrow().ok()?;
                f(open.get(&handle)?)
            };
            locked.apply_deferred();
            Some(result)
        })
        .ok()
        .flatten()
}

/// Remembers `port`'s callback lock for this thread's next [`with_locked`].
pub(crate) fn remember_lock(port: &PortCell) {
    let _ = COMMAND_LOCK.try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            *cache = Some((port.handle, port.lock.clone()));
        }
    });
}

thread_local! {
    /// The port whose callback this thread is running (innermost), for the API fast path.
    static CURRENT: Cell<*const PortCell> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with `port` marked as this thread's current port. The caller holds `port.lock`
/// (the queue relies on it: the current port's callback lock is held by this thread).
///
/// A queue grant remembered for the API's fast path (`drv_abi::remember_granted_queue`) lives
/// only within the innermost such scope: it is forgotten when a scope starts and when it ends.
/// So do the locks of ports created in the scope ([`hold_until_callback_returns`]).
pub(crate) fn with_current<R>(port: &Arc<PortCell>, f: impl FnOnce() -> R) -> R {
    debug_assert!(port.lock.is_owned_by_current_thread());
    struct Restore {
        previous: *const PortCell,
        /// How many created ports this thread held when the scope started.
        held: usize,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            drv_abi::forget_granted_queue();
            CURRENT.with(|c| c.set(self.previous));
            if HELD_COUNT.with(Cell::get) > self.held {
                release_held(self.held);
            }
        }
    }
    drv_abi::forget_granted_queue();
    let _restore = Restore {
        previous: CURRENT.with(|c| c.replace(Arc::as_ptr(port))),
        held: HELD_COUNT.with(Cell::get),
    };
    // In an isolated driver's host, the outermost callback on this thread is timed.
    let _watched = if _restore.previous.is_null() {
        crate::isolate::watchdog::enter()
    } else {
        None
    };
    f()
}

/// A callback lock held through its own reference (so that it can be kept past the scope that
/// took it).
pub(crate) type OwnedCallbackLock =
    lock_api::ArcReentrantMutexGuard<parking_lot::RawMutex, parking_lot::RawThreadId, LockedPorts>;

/// A created port's callback lock, held by the thread whose callback created it.
struct HeldPort {
    port: Arc<PortCell>,
    _lock: OwnedCallbackLock,
}

thread_local! {
    /// Ports created on this thread by `driver_create_port` with a callback lock of their own
    /// (port-level locking), whose lock this thread holds until the callback that created
    /// them returns: BEAM hands the new port over locked, so its creator may use it (its
    /// queue too) until then.
    static HELD_CREATED: RefCell<Vec<HeldPort>> = const { RefCell::new(Vec::new()) };
    /// `HELD_CREATED`'s length, read on every callback's way out without borrowing it.
    static HELD_COUNT: Cell<usize> = const { Cell::new(0) };
}

/// Keeps `port`'s callback lock (`lock`, taken by this thread) held until the innermost
/// callback scope ([`with_current`]) on this thread ends.
pub(crate) fn hold_until_callback_returns(port: Arc<PortCell>, lock: OwnedCallbackLock) {
    HELD_CREATED.with(|held| held.borrow_mut().push(HeldPort { port, _lock: lock }));
    HELD_COUNT.with(|count| count.set(count.get() + 1));
}

/// Lets go of the created ports held beyond the first `keep`, newest first.
#[cold]
fn release_held(keep: usize) {
    loop {
        let Some(held) = HELD_CREATED.with(|held| {
            let mut held = held.borrow_mut();
            if held.len() > keep {
                held.pop()
            } else {
                None
            }
        }) else {
            return;
        };
        HELD_COUNT.with(|count| count.set(count.get() - 1));
        // As BEAM does after its creator's callback: a created port closing with its queue
        // now empty ends (the lock is still held here).
        crate::runtime::Runtime::after_callback(&held.port);
        drop(held);
    }
}

/// Whether `port` is the port whose callback this thread is running (the innermost).
pub(crate) fn is_current(port: &PortCell) -> bool {
    std::ptr::eq(CURRENT.with(Cell::get), port)
}

/// Whether this thread is inside a driver callback (of any port).
pub(crate) fn in_callback() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

/// Calls `f` with the port whose callback this thread is running (the innermost), if any.
pub(crate) fn with_current_port<R>(f: impl FnOnce(&PortCell) -> R) -> Option<R> {
    let current = CURRENT.with(Cell::get);
    if current.is_null() {
        return None;
    }
    // SAFETY: CURRENT is set only by `with_current`, which holds an Arc to the port for the
    // whole time the pointer is installed on this thread.
    Some(f(unsafe { &*current }))
}

/// The number of a driver's port handle: the port's identity ([`PortCell::handle`]), the key
/// of every lookup.
#[inline(always)]
pub(crate) fn number(handle: ErlDrvPort) -> u64 {
    handle as usize as u64
}

/// Calls `f` with the port numbered `handle` ([`number`] of a driver's handle, or a port id's
/// local number): the current callback's port without touching the table when it matches,
/// else the table's entry.
#[inline]
pub(crate) fn with_port<R>(handle: u64, f: impl FnOnce(&PortCell) -> R) -> Option<R> {
    let current = CURRENT.with(Cell::get);
    if !current.is_null() {
        // SAFETY: CURRENT is set only by `with_current`, which holds an Arc to the port for
        // the whole time the pointer is installed on this thread.
        let port = unsafe { &*current };
        if port.handle == handle {
            return Some(f(port));
        }
    }
    lookup(handle).map(|port| f(&port))
}

/// The port behind `handle` as an owned reference, for work that outlives the call (an async
/// job): the current callback's port without touching the table when it matches.
pub(crate) fn owned(handle: ErlDrvPort) -> Option<Arc<PortCell>> {
    let handle = number(handle);
    let current = CURRENT.with(Cell::get);
    if !current.is_null() {
        // SAFETY: CURRENT is set only by `with_current`, which holds an Arc to the port for
        // the whole time the pointer is installed on this thread.
        let port = unsafe { &*current };
        if port.handle == handle {
            // SAFETY: `current` is `Arc::as_ptr` of an Arc kept alive by `with_current`; one
            // more strong count makes the Arc built below own a reference of its own.
            unsafe { Arc::increment_strong_count(current) };
            // SAFETY: as above; the strong count just taken is the one this Arc releases.
            return Some(unsafe { Arc::from_raw(current) });
        }
    }
    lookup(handle)
}

/// Like [`with_port`], also telling `f` whether this thread holds the port's callback lock
/// (runs one of its callbacks, or one of a port sharing its driver-level lock).
#[inline(always)]
pub(crate) fn with_port_context<R>(
    handle: ErlDrvPort,
    f: impl FnOnce(&PortCell, bool) -> R,
) -> Option<R> {
    let handle = number(handle);
    let current = CURRENT.with(Cell::get);
    if !current.is_null() {
        // SAFETY: as in `with_port`: the Arc held by `with_current` keeps the port alive.
        let port = unsafe { &*current };
        if port.handle == handle {
            // `with_current` is only entered with the port's callback lock held.
            return Some(f(port, true));
        }
    }
    lookup_cold(handle).map(|port| f(&port, port.lock.is_owned_by_current_thread()))
}

/// [`lookup`] kept out of line, so that the fast path of its callers stays small.
#[cold]
#[inline(never)]
fn lookup_cold(handle: u64) -> Option<Arc<PortCell>> {
    lookup(handle)
}

#[cfg(test)]
mod tmp_sizes {
    #[test]
    fn print_sizes() {
        use std::mem::size_of;
        eprintln!("PortCell {}", size_of::<super::PortCell>());
        eprintln!("PortState {}", size_of::<parking_lot::Mutex<super::PortState>>());
        eprintln!("Busy {}", size_of::<crate::busy::Busy>());
        eprintln!("queue {}", size_of::<crate::queue::PortQueueState>());
        eprintln!("Connected {}", size_of::<super::Connected>());
        eprintln!("timer {}", size_of::<crate::timer::PortTimer>());
        eprintln!("data {}", size_of::<super::PortData>());
        eprintln!("bytes {}", size_of::<super::ByteCounts>());
        eprintln!("select {}", size_of::<crate::select::PortSelect>());
        eprintln!("initack opt {}", size_of::<Option<Box<crate::init_ack::InitAck>>>());
        eprintln!("deferred {}", size_of::<Option<crate::failure::DeferredFailure>>());
        eprintln!("lock {}", size_of::<super::CallbackLock>());
    }
}
