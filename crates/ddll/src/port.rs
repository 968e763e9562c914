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
use std::ffi::c_int;
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

/// The open ports of a callback lock, in slots: each is added when it enters the port table
/// and removed when it leaves it, both under the lock; a port knows its slot
/// ([`PortCell::lock_slot`]). So a thread holding the lock that finds a port here has it alive
/// for as long as it holds the lock and borrows these slots, with no reference count taken: a
/// port closed meanwhile (by a callback on this thread: other threads wait for the lock) stays
/// here until the borrow ends. (Slots rather than a map by handle: one word per port.)
#[derive(Debug, Default)]
pub(crate) struct LockedPorts {
    open: RefCell<Vec<Option<Arc<PortCell>>>>,
    /// Empty slots of `open`.
    free: RefCell<Vec<u32>>,
    /// Ports that entered the table while `open` was borrowed (created by a callback of a
    /// command): added when the borrow ends.
    opened_while_borrowed: RefCell<Vec<Arc<PortCell>>>,
    /// `open` changed while borrowed: ports to add, or closed ports to drop.
    changed_while_borrowed: Cell<bool>,
}

/// [`PortCell::lock_slot`] of a port not (yet) in its lock's slots.
const NO_LOCK_SLOT: u32 = u32::MAX;

impl LockedPorts {
    /// Adds `port` (open, in the table), later if the slots are in use.
    fn add(&self, port: Arc<PortCell>) {
        match self.open.try_borrow_mut() {
            Ok(mut open) => self.put(&mut open, port),
            Err(_) => {
                self.opened_while_borrowed.borrow_mut().push(port);
                self.changed_while_borrowed.set(true);
            }
        }
    }

    /// Puts `port` in a free slot (or a new one) and tells it which.
    fn put(&self, open: &mut Vec<Option<Arc<PortCell>>>, port: Arc<PortCell>) {
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                open.push(None);
                u32::try_from(open.len() - 1).expect("fewer than 2^32 ports per lock")
            }
        };
        port.lock_slot.store(slot, Ordering::Relaxed);
        open[slot as usize] = Some(port);
    }

    /// Removes `port` (out of the table), later if the slots are in use.
    fn remove(&self, port: &PortCell) {
        match self.open.try_borrow_mut() {
            Ok(mut open) => {
                let slot = port.lock_slot.swap(NO_LOCK_SLOT, Ordering::Relaxed);
                if let Some(entry) = open.get_mut(slot as usize) {
                    if entry.as_ref().is_some_and(|p| p.handle == port.handle) {
                        *entry = None;
                        self.free.borrow_mut().push(slot);
                    }
                }
            }
            Err(_) => self.changed_while_borrowed.set(true),
        }
    }

    /// The port `handle` if it is in `slot`.
    #[inline]
    fn get(open: &[Option<Arc<PortCell>>], slot: u32, handle: u64) -> Option<&Arc<PortCell>> {
        open.get(slot as usize)?
            .as_ref()
            .filter(|port| port.handle == handle)
    }

    /// Applies the changes made while the slots were borrowed, once they no longer are (not
    /// the runtime's settling: this is the lock's own bookkeeping).
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
            // A port closes (under this lock) before it leaves the table: closed ports have
            // left it or are leaving, and are of no use to a command.
            let mut free = self.free.borrow_mut();
            for (slot, entry) in open.iter_mut().enumerate() {
                if entry.as_ref().is_some_and(|port| port.is_closed()) {
                    if let Some(port) = entry.take() {
                        port.lock_slot.store(NO_LOCK_SLOT, Ordering::Relaxed);
                    }
                    free.push(slot as u32);
                }
            }
            drop(free);
            for port in self.opened_while_borrowed.take() {
                if !port.is_closed() {
                    self.put(&mut open, port);
                }
            }
        }
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
    /// This port's slot in its callback lock's ports ([`LockedPorts`]); changed under that
    /// lock.
    lock_slot: AtomicU32,
    /// The `binary` option, set once `start` has returned: BEAM sets a port's binary flag
    /// after its driver's `start`, so output from inside `start` is a list (yaws' setuid_drv
    /// answers from there).
    pub(crate) binary: AtomicBool,
    /// The `binary` option as `open_port` was given it (the flag above, before `start`
    /// returns; an isolated driver's host needs it to open its own port).
    pub(crate) binary_option: bool,
    pub(crate) eof: bool,
    /// The port's name (`port_info`'s `name`): the command it was opened with, or the name
    /// given to `driver_create_port` (shared with the driver's when it is the driver's name;
    /// an `Arc<String>` is one word, an `Arc<str>` two).
    pub(crate) name: Arc<String>,
    /// When the port entered its runtime, as a number that only grows (`erlang:ports()` lists
    /// ports in that order).
    pub(crate) opened: u64,
    /// The connected process (the port's owner), which gets its output.
    pub(crate) owner: Connected,
    /// `set_busy_port` and the busy message queue, and the senders waiting on them.
    pub(crate) busy: crate::busy::Busy,
    /// The driver's data for the port, once [`PortCell::data_set`] ([`PortCell::data`]).
    data: AtomicUsize,
    /// Set, under the callback lock, when the port closes; never cleared.
    pub(crate) closed: AtomicBool,
    /// Whether `data` holds the driver's data (a flag of its own rather than an `Option`, so
    /// that it shares a word with the other flags).
    data_set: AtomicBool,
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
    /// What only some ports use ([`PortExtras`]), allocated by the first use.
    extras: once_cell::race::OnceBox<PortExtras>,
    /// `port_info`'s `input` and `output` counts.
    pub(crate) bytes: ByteCounts,
    /// Whether the port selects descriptors (`driver_select`).
    pub(crate) select: crate::select::PortSelect,
}

/// The byte counts `port_info` reports, as BEAM keeps them: `input` counts what the driver sends
/// to Erlang by `driver_output` and its variants (headers included), `output` what
/// `port_command` hands the driver. Term output, `port_control` and `port_call` count in
/// neither. Allocated by the first count: a port that never had data has one word here.
#[derive(Debug, Default)]
pub(crate) struct ByteCounts {
    counts: once_cell::race::OnceBox<[AtomicU64; 2]>,
}

impl ByteCounts {
    const INPUT: usize = 0;
    const OUTPUT: usize = 1;

    /// Counts driver output; called under the port's callback lock, so there is one writer at a
    /// time and a plain load and store do (no read-modify-write on the output path).
    #[inline]
    pub(crate) fn add_input(&self, n: usize) {
        self.add(Self::INPUT, n);
    }

    /// Counts a command's bytes; under the port's callback lock, as `add_input`.
    #[inline]
    pub(crate) fn add_output(&self, n: usize) {
        self.add(Self::OUTPUT, n);
    }

    #[inline]
    fn add(&self, which: usize, n: usize) {
        let counter = &self.counts.get_or_init(Box::default)[which];
        let sum = counter.load(Ordering::Relaxed).wrapping_add(n as u64);
        counter.store(sum, Ordering::Relaxed);
    }

    /// `(input, output)`.
    pub(crate) fn get(&self) -> (u64, u64) {
        self.counts.get().map_or((0, 0), |counts| {
            (
                counts[Self::INPUT].load(Ordering::Relaxed),
                counts[Self::OUTPUT].load(Ordering::Relaxed),
            )
        })
    }
}

/// The rest of a port's state, read and written under its mutex. What a port seldom has
/// (monitors, an OS pid, a pending close reply or failure) is boxed on first use, so that an
/// idle port's state is small.
#[derive(Debug)]
pub(crate) struct PortState {
    pub(crate) control_binary: bool,
    /// The port has begun exiting (its exit signal is on the way; it is closing or about to
    /// terminate): a second exit does nothing.
    pub(crate) exiting: bool,
    /// `stop` is running or has run: the port is ending.
    pub(crate) terminating: bool,
    /// The processes linked to the port, in the order they were linked: the opener, and
    /// those of `port_connect`. They get the port's exit signal.
    pub(crate) links: Links,
    /// The port's process monitors (`driver_monitor_process`): number and process.
    pub(crate) monitors: RareVec<(u64, Pid)>,
    /// The rest, once any of it is set.
    rare: Option<Box<RarePortState>>,
}

/// The parts of [`PortState`] that most ports never set.
#[derive(Debug, Default)]
struct RarePortState {
    os_pid: Option<isize>,
    /// Who gets `{Port, closed}` when the port terminates (`Port ! {Pid, close}`).
    closed_reply: Option<Arc<Process>>,
    /// A `driver_failure*` from a driver thread while another thread held the callback lock.
    deferred_failure: Option<crate::failure::DeferredFailure>,
}

impl PortState {
    fn new(opener: Arc<Process>) -> PortState {
        PortState {
            control_binary: false,
            exiting: false,
            terminating: false,
            links: Links::one(opener),
            monitors: RareVec::default(),
            rare: None,
        }
    }

    fn rare_mut(&mut self) -> &mut RarePortState {
        self.rare.get_or_insert_with(Box::default)
    }

    /// `port_info`'s `os_pid` (`erl_drv_set_os_pid`).
    pub(crate) fn os_pid(&self) -> Option<isize> {
        self.rare.as_ref().and_then(|rare| rare.os_pid)
    }

    pub(crate) fn set_os_pid(&mut self, pid: isize) {
        self.rare_mut().os_pid = Some(pid);
    }

    /// Who gets `{Port, closed}` when the port terminates.
    pub(crate) fn set_closed_reply(&mut self, to: Option<Arc<Process>>) {
        if to.is_some() || self.rare.is_some() {
            self.rare_mut().closed_reply = to;
        }
    }

    pub(crate) fn take_closed_reply(&mut self) -> Option<Arc<Process>> {
        self.rare.as_mut().and_then(|rare| rare.closed_reply.take())
    }

    /// Leaves a driver thread's failure for the holder of the callback lock.
    pub(crate) fn set_deferred_failure(&mut self, failure: crate::failure::DeferredFailure) {
        self.rare_mut().deferred_failure = Some(failure);
    }

    pub(crate) fn take_deferred_failure(&mut self) -> Option<crate::failure::DeferredFailure> {
        self.rare
            .as_mut()
            .and_then(|rare| rare.deferred_failure.take())
    }
}

/// A vector most ports leave empty: one pointer, allocated by the first element (a `Vec` is
/// three words even when empty).
#[derive(Debug, Clone)]
#[allow(clippy::box_collection)]
pub(crate) struct RareVec<T>(Option<Box<Vec<T>>>);

impl<T> Default for RareVec<T> {
    fn default() -> Self {
        RareVec(None)
    }
}

impl<T> RareVec<T> {
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.as_deref().map_or(&[][..], Vec::as_slice).iter()
    }

    pub(crate) fn push(&mut self, value: T) {
        self.0.get_or_insert_with(Box::default).push(value);
    }

    /// Removes and returns the element at `at` (which must be in bounds).
    pub(crate) fn remove(&mut self, at: usize) -> T {
        let values = self.0.as_mut().expect("an element to remove");
        let removed = values.remove(at);
        if values.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        if let Some(values) = &mut self.0 {
            values.retain(keep);
            if values.is_empty() {
                self.0 = None;
            }
        }
    }
}

/// The processes linked to a port, in the order they were linked. The first is held inline
/// (the opener, linked when the port opens), the others in a vector allocated by a second
/// link: a port linked to its opener only allocates nothing here.
#[derive(Debug, Clone, Default)]
pub(crate) struct Links {
    /// The oldest link; `None` only when there is none (then `rest` is empty).
    first: Option<Arc<Process>>,
    /// The newer links, oldest first.
    rest: RareVec<Arc<Process>>,
}

impl Links {
    fn one(process: Arc<Process>) -> Links {
        Links {
            first: Some(process),
            rest: RareVec::default(),
        }
    }

    /// The linked processes, oldest link first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Process>> {
        self.into_iter()
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
        if self.first.is_none() && self.rest.iter().next().is_some() {
            self.first = Some(self.rest.remove(0));
        }
    }
}

impl<'a> IntoIterator for &'a Links {
    type Item = &'a Arc<Process>;
    type IntoIter =
        std::iter::Chain<std::option::Iter<'a, Arc<Process>>, std::slice::Iter<'a, Arc<Process>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.first.iter().chain(self.rest.iter())
    }
}

/// What a new port is made of, besides the handle the port table gives it.
pub(crate) struct NewPort {
    pub(crate) runtime: Weak<Inner>,
    pub(crate) driver: Arc<LoadedDriver>,
    pub(crate) lock: CallbackLock,
    pub(crate) owner: Arc<Process>,
    pub(crate) name: Arc<String>,
    pub(crate) binary: bool,
    pub(crate) eof: bool,
    /// The driver's data, if the port has it already (see [`PortCell::data`]).
    pub(crate) data: Option<DriverData>,
    pub(crate) init_ack: Option<crate::init_ack::InitAck>,
}

/// The parts of a port that only some ports use, allocated together when the first is needed
/// (at open for the acknowledgement, else by the first timer): one word in an idle port.
#[derive(Debug, Default)]
pub(crate) struct PortExtras {
    /// The port's timer.
    pub(crate) timer: crate::timer::PortTimer,
    /// The acknowledgement its `open_port` waits for, for a driver with
    /// `ERL_DRV_FLAG_USE_INIT_ACK` (`None` for other drivers).
    pub(crate) init_ack: Option<crate::init_ack::InitAck>,
}

/// The order in which ports entered their runtimes ([`PortCell::opened`]).
static OPENED: AtomicU64 = AtomicU64::new(0);

impl PortCell {
    /// The open port `new` under `handle`.
    pub(crate) fn new(handle: u64, new: NewPort) -> PortCell {
        PortCell {
            handle,
            busy: Default::default(),
            runtime: new.runtime,
            driver: new.driver,
            lock: new.lock,
            lock_slot: AtomicU32::new(NO_LOCK_SLOT),
            binary: AtomicBool::new(false),
            binary_option: new.binary,
            eof: new.eof,
            name: new.name,
            opened: OPENED.fetch_add(1, Ordering::Relaxed),
            caller: AtomicU64::new(new.owner.pid().local_id().unwrap_or(0)),
            reductions: AtomicU32::new(0),
            owner: Connected::new(new.owner.clone()),
            data: AtomicUsize::new(new.data.map_or(0, |d| d.0)),
            data_set: AtomicBool::new(new.data.is_some()),
            extras: match new.init_ack {
                Some(init_ack) => once_cell::race::OnceBox::with_value(Box::new(PortExtras {
                    timer: Default::default(),
                    init_ack: Some(init_ack),
                })),
                None => once_cell::race::OnceBox::new(),
            },
            closed: AtomicBool::new(false),
            failure_deferred: AtomicBool::new(false),
            state: Mutex::new(PortState::new(new.owner)),
            queue: Default::default(),
            bytes: Default::default(),
            select: Default::default(),
        }
    }

    /// The driver's data for the port: what `start` returned, replaced by what
    /// `erl_drv_init_ack` hands over; for a port made by `driver_create_port`, what its
    /// creator gave. Unset until then (no callback runs). Written and read under the port's
    /// callback lock (atomics only so that the cell can be shared).
    #[inline]
    pub(crate) fn data(&self) -> Option<DriverData> {
        self.data_set
            .load(Ordering::Acquire)
            .then(|| DriverData(self.data.load(Ordering::Relaxed)))
    }

    /// Sets (or replaces) the driver's data; under the port's callback lock.
    pub(crate) fn set_data(&self, data: DriverData) {
        self.data.store(data.0, Ordering::Relaxed);
        self.data_set.store(true, Ordering::Release);
    }

    /// The port's extras, allocated if they were not yet.
    pub(crate) fn extras(&self) -> &PortExtras {
        self.extras.get_or_init(Box::default)
    }

    /// The port's extras, if it has them.
    pub(crate) fn extras_if_any(&self) -> Option<&PortExtras> {
        self.extras.get()
    }

    /// The acknowledgement the port's `open_port` waits for (a driver with
    /// `ERL_DRV_FLAG_USE_INIT_ACK`).
    pub(crate) fn init_ack(&self) -> Option<&crate::init_ack::InitAck> {
        self.extras.get()?.init_ack.as_ref()
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
/// The first connected process (the opener) is held inline and the rest is allocated on the
/// first reconnection: a port that keeps its opener (most do) allocates nothing here.
#[derive(Debug)]
pub(crate) struct Connected {
    /// The process connected when the port opened.
    first: Arc<Process>,
    /// The processes connected since, once there is one.
    later: once_cell::race::OnceBox<Reconnected>,
}

/// The processes a port was connected to after its first.
#[derive(Debug, Default)]
struct Reconnected {
    /// The connected process: points into a box of `all`; null while the first one is still
    /// connected (between the allocation and the first swap).
    current: std::sync::atomic::AtomicPtr<Arc<Process>>,
    /// Every process connected after the first (the current one last), boxed so that their
    /// addresses stay when the vector grows: `current` points into a box.
    #[allow(clippy::vec_box)]
    all: Mutex<Vec<Box<Arc<Process>>>>,
}

impl Connected {
    fn new(first: Arc<Process>) -> Connected {
        Connected {
            first,
            later: once_cell::race::OnceBox::new(),
        }
    }

    /// The connected process.
    #[inline]
    pub(crate) fn get(&self) -> &Arc<Process> {
        let Some(later) = self.later.get() else {
            return &self.first;
        };
        let current = later.current.load(Ordering::Acquire);
        if current.is_null() {
            return &self.first;
        }
        // SAFETY: a non-null `current` points into a box of `later.all`, which only grows and
        // lives as long as `self`.
        unsafe { &*current }
    }

    /// Connects `process` instead.
    pub(crate) fn set(&self, process: Arc<Process>) {
        let later = self.later.get_or_init(Box::default);
        let mut all = later.all.lock();
        let mut boxed = Box::new(process);
        later
            .current
            .store(&mut *boxed as *mut Arc<Process>, Ordering::Release);
        all.push(boxed);
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
        port.lock.lock().remove(&port);
    }
}

/// The ports of `runtime` in the table (open, or closing and not yet removed), in table
/// order. Collected before the caller looks at them: no port lock is taken under the table's.
pub(crate) fn of_runtime(runtime: &Arc<Inner>) -> Vec<Arc<PortCell>> {
    let table = PORTS.read();
    table
        .slots
        .iter()
        .filter_map(|slot| slot.port.as_ref())
        .filter(|port| std::ptr::eq(port.runtime.as_ptr(), Arc::as_ptr(runtime)))
        .cloned()
        .collect()
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
    /// Its slot in the lock's ports ([`PortCell::lock_slot`]) comes with it.
    static COMMAND_LOCK: RefCell<Option<(u64, u32, CallbackLock)>> = const { RefCell::new(None) };
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
            let (cached, slot, lock) = cache.as_ref()?;
            if *cached != handle {
                return None;
            }
            // A contended lock goes the slow way, where the waiting command is counted as
            // queued for the port (its busy message queue).
            let locked = lock.try_lock()?;
            let result = {
                let open = locked.open.try_borrow().ok()?;
                f(LockedPorts::get(&open, *slot, handle)?)
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
            let slot = port.lock_slot.load(Ordering::Relaxed);
            *cache = Some((port.handle, slot, port.lock.clone()));
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

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// What an idle port costs (issue #16: `cargo xtask backlog-bench 3 idle`) rests on these
    /// sizes: a cell of 184 bytes is a 208-byte allocation with its reference counts. A part
    /// that grows past its size here should be one every idle port needs; else it belongs
    /// behind one of the lazily allocated parts ([`PortExtras`], the state's rare part, ...).
    #[test]
    fn an_idle_port_stays_small() {
        let sizes = [
            ("PortCell", size_of::<PortCell>(), 184),
            ("Mutex<PortState>", size_of::<Mutex<PortState>>(), 48),
            ("Connected", size_of::<Connected>(), 16),
            ("Busy", size_of::<crate::busy::Busy>(), 8),
            (
                "PortQueueState",
                size_of::<crate::queue::PortQueueState>(),
                16,
            ),
            ("ByteCounts", size_of::<ByteCounts>(), 8),
        ];
        for (name, size, at_most) in sizes {
            assert!(
                size <= at_most,
                "{name} is {size} bytes, more than {at_most}"
            );
        }
    }

    /// The links of a port keep their order through unlinks and relinks.
    #[test]
    fn links_keep_their_order() {
        let rt = crate::Runtime::new().expect("runtime");
        let [a, b, c] = ["a", "b", "c"].map(|name| rt.spawn(Some(name)));
        let mut links = Links::one(a.clone());
        links.push(b.clone());
        links.push(c.clone());
        let order = |links: &Links| links.iter().map(|p| *p.pid()).collect::<Vec<_>>();
        assert_eq!(order(&links), [*a.pid(), *b.pid(), *c.pid()]);
        links.retain(|p| p.pid() != a.pid());
        assert_eq!(order(&links), [*b.pid(), *c.pid()]);
        links.push(a.clone());
        assert_eq!(order(&links), [*b.pid(), *c.pid(), *a.pid()]);
        links.retain(|_| false);
        assert_eq!(order(&links), []);
        links.push(c.clone());
        assert_eq!(order(&links), [*c.pid()]);
    }
}
