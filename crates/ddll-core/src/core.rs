//! The state machine: drivers, handles, per-process entries, reference counting.

use std::collections::{HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use crate::types::{
    DdllError, Effect, HandleStatus, InfoItem, InfoValue, LoadError, LoadOptions, MonitorKind,
    MonitorRef, Notification, Outcome, Pending, Reply, Status, Tag, UnloadOptions, UpDown,
};

/// What the core needs from its host: the real loading and unloading of driver code.
///
/// Both are called synchronously from inside a core call. They must not call back into the core.
pub trait DriverHost {
    /// Really load the driver `name` from `full_path` (open the library, call its init, check
    /// version and name, add it to the host's driver table). Called by `try_load` for an unknown
    /// driver and by [`DdllCore::run_scheduled`] for a pending reload.
    fn load(&mut self, full_path: &str, name: &str) -> Result<(), LoadError>;
    /// Really unload `name` (call its `finish`, close the library). Called only by
    /// [`DdllCore::run_scheduled`], once the last reference is gone.
    fn unload(&mut self, name: &str);
}

/// The process-side state of an entry (`ERL_DE_PROC_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    Loaded,
    AwaitLoad,
    AwaitUnload,
    AwaitUnloadOnly,
}

/// One `DE_ProcEntry`.
#[derive(Clone, Debug)]
struct ProcEntry<P> {
    pid: P,
    awaiting: Awaiting,
    /// `ERL_DE_FL_DEREFERENCED`: this LOADED entry holds no reference (reload pending).
    dereferenced: bool,
    /// Monitor reference of awaiting entries.
    monitor: MonitorRef,
}

/// A reload granted but not yet carried out.
#[derive(Clone, Debug)]
struct PendingReload {
    full_path: String,
    name: String,
    kill_ports: bool,
}

/// One `DE_Handle`: a dynamically loaded driver.
#[derive(Clone, Debug)]
struct Handle<P> {
    /// Distinguishes successive handles of one name, so a stale scheduled check is ignored.
    generation: u64,
    status: HandleStatus,
    /// Entries, oldest first; the runtime's list head (newest) is the end.
    procs: Vec<ProcEntry<P>>,
    refc: u32,
    /// A "no more references" check is queued (the runtime's scheduled misc op).
    check_scheduled: bool,
    port_count: u32,
    /// Consistent option `kill_ports`.
    kill_ports: bool,
    full_path: String,
    reload: Option<PendingReload>,
}

/// A driver in the driver list; linked-in drivers have no handle.
#[derive(Clone, Debug)]
struct Driver<P> {
    name: Arc<str>,
    handle: Option<Handle<P>>,
}

/// The erl_ddll state machine. See the crate documentation for the protocol.
///
/// `P` is the host's process identifier.
#[derive(Clone, Debug)]
pub struct DdllCore<P> {
    /// The driver list, oldest first (the order `loaded_drivers/0` shows).
    drivers: Vec<Driver<P>>,
    /// Processes that used erl_ddll (`F_USING_DDLL`): only they are cleaned up at death.
    users: HashSet<P>,
    next_ref: u64,
    next_generation: u64,
    /// Queued "no more references" checks: driver name and handle generation.
    scheduled: VecDeque<(Arc<str>, u64)>,
}

impl<P> Default for DdllCore<P>
where
    P: Copy + Eq + Ord + Hash + Debug,
{
    fn default() -> Self {
        Self::new()
    }
}

/// `Path ++ "/" ++ Name` with trailing separators of `Path` removed, as the runtime builds it.
pub fn full_path(path: &str, name: &str) -> String {
    let dir = path.trim_end_matches(['/', '\\']);
    let mut full = String::with_capacity(dir.len() + 1 + name.len());
    full.push_str(dir);
    full.push('/');
    full.push_str(name);
    full
}

fn notification<P>(
    to: P,
    kind: UpDown,
    monitor: MonitorRef,
    driver: &Arc<str>,
    tag: Tag,
) -> Effect<P> {
    Effect::Notify(Notification {
        to,
        kind,
        monitor,
        driver: driver.clone(),
        tag,
        immediate: false,
    })
}

impl<P> Handle<P>
where
    P: Copy + Eq + Ord + Hash + Debug,
{
    fn count(&self, awaiting: Awaiting) -> usize {
        self.procs.iter().filter(|e| e.awaiting == awaiting).count()
    }

    /// Position of the newest entry of `pid` with this state (the runtime searches from the head).
    fn find(&self, pid: P, awaiting: Awaiting) -> Option<usize> {
        self.procs
            .iter()
            .rposition(|e| e.pid == pid && e.awaiting == awaiting)
    }

    /// `pid` holds exactly one LOADED entry and nobody else holds one.
    fn is_last_user(&self, pid: P) -> bool {
        let mut mine = 0;
        for e in self.procs.iter().filter(|e| e.awaiting == Awaiting::Loaded) {
            if e.pid != pid {
                return false;
            }
            mine += 1;
        }
        mine == 1
    }

    fn add(&mut self, pid: P, awaiting: Awaiting, dereferenced: bool, monitor: MonitorRef) {
        self.procs.push(ProcEntry {
            pid,
            awaiting,
            dereferenced,
            monitor,
        });
    }

    fn reference(&mut self) {
        self.refc += 1;
    }

    /// Drop a reference; at zero queue one "no more references" check.
    fn dereference(&mut self, name: &Arc<str>, scheduled: &mut VecDeque<(Arc<str>, u64)>) {
        debug_assert!(self.refc > 0, "dereference of unreferenced driver {name}");
        self.refc = self.refc.saturating_sub(1);
        if self.refc == 0 && !self.check_scheduled {
            self.check_scheduled = true;
            scheduled.push_back((name.clone(), self.generation));
        }
    }

    /// Notify and remove every entry in state `awaiting`, head (newest) first.
    fn notify_all(
        &mut self,
        name: &Arc<str>,
        awaiting: Awaiting,
        kind: UpDown,
        tag: Tag,
        effects: &mut Vec<Effect<P>>,
    ) {
        for e in self.procs.iter().rev().filter(|e| e.awaiting == awaiting) {
            effects.push(notification(e.pid, kind, e.monitor, name, tag));
        }
        self.procs.retain(|e| e.awaiting != awaiting);
    }

    fn is_reloading(&self) -> bool {
        matches!(
            self.status,
            HandleStatus::Reload | HandleStatus::ForceReload
        )
    }

    /// Give up a pending reload: waiting loaders get `load_cancelled`.
    fn cancel_reload(&mut self, name: &Arc<str>, effects: &mut Vec<Effect<P>>) {
        if self.is_reloading() {
            self.notify_all(
                name,
                Awaiting::AwaitLoad,
                UpDown::Down,
                Tag::LoadCancelled,
                effects,
            );
            self.reload = None;
        }
    }

    /// `[{Pid, Count}]` for entries matching `filter`, in the runtime's order.
    fn proc_info(&self, filter: Awaiting) -> Vec<(P, u32)> {
        let mut info: Vec<(P, u32)> = Vec::new();
        for e in self.procs.iter().rev() {
            let awaiting = match e.awaiting {
                Awaiting::AwaitUnloadOnly => Awaiting::AwaitUnload,
                other => other,
            };
            if awaiting != filter {
                continue;
            }
            match info.iter_mut().find(|(pid, _)| *pid == e.pid) {
                Some((_, count)) => *count += 1,
                None => info.push((e.pid, 1)),
            }
        }
        // The runtime conses the collected entries, reversing them.
        info.reverse();
        info
    }
}

impl<P> DdllCore<P>
where
    P: Copy + Eq + Ord + Hash + Debug,
{
    /// An empty core: no drivers, no processes.
    pub fn new() -> Self {
        DdllCore {
            drivers: Vec::new(),
            users: HashSet::new(),
            next_ref: 1,
            next_generation: 1,
            scheduled: VecDeque::new(),
        }
    }

    /// The driver a name means: the newest one of that name (only linked-in drivers can share
    /// a name; the runtime searches its list from the newest).
    fn position(&self, name: &str) -> Option<usize> {
        self.drivers.iter().rposition(|d| &*d.name == name)
    }

    fn new_ref(&mut self) -> MonitorRef {
        let r = MonitorRef(self.next_ref);
        self.next_ref += 1;
        r
    }

    fn new_generation(&mut self) -> u64 {
        let g = self.next_generation;
        self.next_generation += 1;
        g
    }

    /// `erl_ddll:try_load(Path, Name, Options)` by process `pid`.
    ///
    /// Calls `host.load` when the driver is unknown. On success the reply is `{ok, Status}` or
    /// `{ok, Status, Ref}`; effects may hold `KillPorts` (a reload with `kill_ports`).
    pub fn try_load<H: DriverHost + ?Sized>(
        &mut self,
        host: &mut H,
        pid: P,
        path: &str,
        name: &str,
        opts: LoadOptions,
    ) -> Outcome<Reply, P> {
        let path = full_path(path, name);
        let mut effects = Vec::new();
        let result = self.try_load_inner(host, pid, path, name, opts, &mut effects);
        Outcome { result, effects }
    }

    fn try_load_inner<H: DriverHost + ?Sized>(
        &mut self,
        host: &mut H,
        pid: P,
        path: String,
        name: &str,
        opts: LoadOptions,
        effects: &mut Vec<Effect<P>>,
    ) -> Result<Reply, DdllError> {
        let mut monitor = opts.monitor.is_some();
        let index;
        let status;
        match self.position(name) {
            Some(i) => {
                index = i;
                let scheduled = &mut self.scheduled;
                let driver = &mut self.drivers[i];
                let dname = &driver.name;
                let Some(h) = driver.handle.as_mut() else {
                    return Err(DdllError::LinkedInDriver);
                };
                match h.status {
                    HandleStatus::Ok => {
                        if opts.reload == Some(Pending::PendingDriver) && !h.is_last_user(pid) {
                            return Err(DdllError::PendingProcess);
                        }
                        if let Some(reload) = opts.reload {
                            if h.kill_ports != opts.kill_ports {
                                return Err(DdllError::Inconsistent);
                            }
                            let Some(old) = h.find(pid, Awaiting::Loaded) else {
                                return Err(DdllError::NotLoadedByThisProcess);
                            };
                            h.procs.remove(old);
                            h.dereference(dname, scheduled);
                            // Reload granted: no process holds the driver any more.
                            for e in h.procs.iter_mut() {
                                if e.awaiting == Awaiting::Loaded {
                                    debug_assert!(!e.dereferenced);
                                    e.dereferenced = true;
                                    h.refc -= 1;
                                }
                            }
                            if h.refc == 0 && !h.check_scheduled {
                                h.check_scheduled = true;
                                scheduled.push_back((dname.clone(), h.generation));
                            }
                            h.add(pid, Awaiting::Loaded, true, MonitorRef(0));
                            h.status = HandleStatus::Reload;
                            h.reload = Some(PendingReload {
                                full_path: path,
                                name: name.to_owned(),
                                kill_ports: opts.kill_ports,
                            });
                            if h.kill_ports {
                                h.status = HandleStatus::ForceReload;
                                effects.push(Effect::KillPorts {
                                    driver: dname.clone(),
                                });
                            }
                            status = match reload {
                                Pending::PendingDriver => Status::PendingDriver,
                                Pending::Pending => Status::PendingProcess,
                            };
                        } else {
                            if h.full_path != path || h.kill_ports != opts.kill_ports {
                                return Err(DdllError::Inconsistent);
                            }
                            h.add(pid, Awaiting::Loaded, false, MonitorRef(0));
                            h.reference();
                            monitor = false;
                            status = Status::AlreadyLoaded;
                        }
                    }
                    HandleStatus::Unload | HandleStatus::ForceUnload => {
                        if opts.reload.is_some() {
                            return Err(DdllError::NotLoadedByThisProcess);
                        }
                        if h.full_path != path || h.kill_ports != opts.kill_ports {
                            return Err(DdllError::Inconsistent);
                        }
                        h.status = HandleStatus::Ok;
                        h.notify_all(
                            dname,
                            Awaiting::AwaitUnload,
                            UpDown::Up,
                            Tag::UnloadCancelled,
                            effects,
                        );
                        h.add(pid, Awaiting::Loaded, false, MonitorRef(0));
                        h.reference();
                        monitor = false;
                        status = Status::AlreadyLoaded;
                    }
                    HandleStatus::Reload | HandleStatus::ForceReload => {
                        if opts.reload.is_some() {
                            return Err(DdllError::PendingReload);
                        }
                        let pending = h.reload.as_ref().expect("a reloading driver has a reload");
                        if pending.full_path != path || pending.kill_ports != opts.kill_ports {
                            return Err(DdllError::Inconsistent);
                        }
                        // Referenced when the reload is done.
                        h.add(pid, Awaiting::Loaded, true, MonitorRef(0));
                        monitor = true;
                        status = Status::PendingDriver;
                    }
                    HandleStatus::Permanent => return Err(DdllError::Permanent),
                }
            }
            None => {
                if opts.reload.is_some() {
                    return Err(DdllError::NotLoaded);
                }
                host.load(&path, name)
                    .map_err(|e| DdllError::Load(e.normalized()))?;
                let generation = self.new_generation();
                let mut h = Handle {
                    generation,
                    status: HandleStatus::Ok,
                    procs: Vec::new(),
                    refc: 1,
                    check_scheduled: false,
                    port_count: 0,
                    kill_ports: opts.kill_ports,
                    full_path: path,
                    reload: None,
                };
                h.add(pid, Awaiting::Loaded, false, MonitorRef(0));
                self.drivers.push(Driver {
                    name: Arc::from(name),
                    handle: Some(h),
                });
                index = self.drivers.len() - 1;
                monitor = false;
                status = Status::Loaded;
            }
        }
        self.users.insert(pid);
        let monitor = if monitor {
            let r = self.new_ref();
            self.handle_mut(index)
                .add(pid, Awaiting::AwaitLoad, false, r);
            Some(r)
        } else {
            None
        };
        Ok(Reply { status, monitor })
    }

    fn handle_mut(&mut self, index: usize) -> &mut Handle<P> {
        self.drivers[index]
            .handle
            .as_mut()
            .expect("index refers to a dynamic driver")
    }

    /// `erl_ddll:try_unload(Name, Options)` by process `pid`.
    ///
    /// Never unloads at once: the reply is `pending_driver` or `pending_process`; the unload
    /// happens in [`DdllCore::run_scheduled`] once the last reference is gone.
    pub fn try_unload(&mut self, pid: P, name: &str, opts: UnloadOptions) -> Outcome<Reply, P> {
        let mut effects = Vec::new();
        let result = self.try_unload_inner(pid, name, opts, &mut effects);
        Outcome { result, effects }
    }

    fn try_unload_inner(
        &mut self,
        pid: P,
        name: &str,
        opts: UnloadOptions,
        effects: &mut Vec<Effect<P>>,
    ) -> Result<Reply, DdllError> {
        let index = self.position(name).ok_or(DdllError::NotLoaded)?;
        let scheduled = &mut self.scheduled;
        let driver = &mut self.drivers[index];
        let dname = &driver.name;
        let h = driver.handle.as_mut().ok_or(DdllError::LinkedInDriver)?;
        if h.status == HandleStatus::Permanent {
            return Err(DdllError::Permanent);
        }
        let kill_ports = opts.kill_ports || h.kill_ports;
        match h.find(pid, Awaiting::Loaded) {
            None => {
                if h.count(Awaiting::Loaded) > 0 {
                    return Err(DdllError::NotLoadedByThisProcess);
                }
            }
            Some(i) => {
                let entry = h.procs.remove(i);
                if !entry.dereferenced {
                    h.dereference(dname, scheduled);
                }
            }
        }
        let status = if h.count(Awaiting::Loaded) > 0 {
            Status::PendingProcess
        } else {
            h.cancel_reload(dname, effects);
            h.status = HandleStatus::Unload;
            if kill_ports && h.port_count > 0 {
                h.status = HandleStatus::ForceUnload;
                effects.push(Effect::KillPorts {
                    driver: dname.clone(),
                });
            }
            Status::PendingDriver
        };
        let monitor = match opts.monitor {
            None => false,
            Some(Pending::PendingDriver) => status != Status::PendingProcess,
            Some(Pending::Pending) => true,
        };
        self.users.insert(pid);
        let monitor = if monitor {
            let r = self.new_ref();
            self.handle_mut(index)
                .add(pid, Awaiting::AwaitUnload, false, r);
            Some(r)
        } else {
            None
        };
        Ok(Reply { status, monitor })
    }

    /// `erlang:monitor(driver, {Name, Kind})` by process `pid`.
    ///
    /// When the answer is known at once, the effects hold one `immediate` notification for the
    /// returned reference; otherwise the monitor waits in the driver's entry list.
    pub fn monitor(&mut self, pid: P, name: &str, kind: MonitorKind) -> Outcome<MonitorRef, P> {
        let r = self.new_ref();
        let immediate = match self.position(name) {
            None => Some((UpDown::Down, Tag::Unloaded)),
            Some(i) => match &self.drivers[i].handle {
                None => Some((UpDown::Up, Tag::Permanent)),
                Some(h) => match (h.status, kind) {
                    (HandleStatus::Permanent, _) => Some((UpDown::Up, Tag::Permanent)),
                    (HandleStatus::Ok, MonitorKind::Loaded) => Some((UpDown::Up, Tag::Loaded)),
                    (HandleStatus::Unload | HandleStatus::ForceUnload, MonitorKind::Loaded) => {
                        Some((UpDown::Down, Tag::LoadCancelled))
                    }
                    _ => None,
                },
            },
        };
        let effects = match immediate {
            Some((kind, tag)) => vec![Effect::Notify(Notification {
                to: pid,
                kind,
                monitor: r,
                driver: Arc::from(name),
                tag,
                immediate: true,
            })],
            None => {
                let awaiting = match kind {
                    MonitorKind::Loaded => Awaiting::AwaitLoad,
                    MonitorKind::Unloaded => Awaiting::AwaitUnload,
                    MonitorKind::UnloadedOnly => Awaiting::AwaitUnloadOnly,
                };
                let index = self.position(name).expect("looked up above");
                self.handle_mut(index).add(pid, awaiting, false, r);
                self.users.insert(pid);
                Vec::new()
            }
        };
        Outcome {
            result: Ok(r),
            effects,
        }
    }

    /// A fresh monitor reference that no entry uses: for a host that must hand out a
    /// reference without monitoring anything (e.g. to a process that has already exited).
    pub fn unused_monitor_ref(&mut self) -> MonitorRef {
        self.new_ref()
    }

    /// `erl_ddll:demonitor(Ref)` by process `pid`: forget a waiting monitor of that process.
    /// Unknown references are ignored (the runtime answers `true`/`ok` regardless).
    pub fn demonitor(&mut self, pid: P, monitor: MonitorRef) {
        if !self.users.contains(&pid) {
            return;
        }
        for driver in self.drivers.iter_mut().rev() {
            let Some(h) = driver.handle.as_mut() else {
                continue;
            };
            if h.status == HandleStatus::Permanent {
                continue;
            }
            if let Some(i) = h.procs.iter().rposition(|e| {
                e.pid == pid && e.awaiting != Awaiting::Loaded && e.monitor == monitor
            }) {
                h.procs.remove(i);
                return;
            }
        }
    }

    /// Process `pid` exited: drop its entries and monitors everywhere (drivers newest first).
    ///
    /// A driver nobody holds any more becomes pending unload; a pending reload is cancelled
    /// (`load_cancelled`); with `kill_ports` its ports are killed.
    pub fn process_died(&mut self, pid: P) -> Outcome<(), P> {
        let mut effects = Vec::new();
        if self.users.remove(&pid) {
            let scheduled = &mut self.scheduled;
            for driver in self.drivers.iter_mut().rev() {
                let dname = &driver.name;
                let Some(h) = driver.handle.as_mut() else {
                    continue;
                };
                if h.status == HandleStatus::Permanent {
                    continue;
                }
                let mut unreferenced = 0;
                h.procs.retain(|e| {
                    let mine = e.pid == pid;
                    if mine && e.awaiting == Awaiting::Loaded && !e.dereferenced {
                        unreferenced += 1;
                    }
                    !mine
                });
                for _ in 0..unreferenced {
                    h.dereference(dname, scheduled);
                }
                if h.count(Awaiting::Loaded) == 0 {
                    h.cancel_reload(dname, &mut effects);
                    h.status = HandleStatus::Unload;
                    if h.port_count > 0 && h.kill_ports {
                        h.status = HandleStatus::ForceUnload;
                        effects.push(Effect::KillPorts {
                            driver: dname.clone(),
                        });
                    }
                }
            }
        }
        Outcome {
            result: Ok(()),
            effects,
        }
    }

    /// Whether a new port may be opened on `name` now (`erts_ddll_driver_ok`): false while its
    /// ports are being killed. `None` when there is no such driver.
    pub fn driver_ok(&self, name: &str) -> Option<bool> {
        let driver = &self.drivers[self.position(name)?];
        Some(match &driver.handle {
            None => true,
            Some(h) => !matches!(
                h.status,
                HandleStatus::ForceUnload | HandleStatus::ForceReload
            ),
        })
    }

    /// A port of `name` opened: counts it and references the driver.
    ///
    /// Errors: `NotLoaded` (no such driver), `BadArg` (ports are being killed: the runtime
    /// refuses the open). Linked-in drivers are not counted.
    pub fn port_opened(&mut self, name: &str) -> Result<(), DdllError> {
        if !self.driver_ok(name).ok_or(DdllError::NotLoaded)? {
            return Err(DdllError::BadArg);
        }
        let index = self.position(name).expect("checked by driver_ok");
        if let Some(h) = self.drivers[index].handle.as_mut() {
            h.port_count += 1;
            h.reference();
        }
        Ok(())
    }

    /// A port of `name` closed: uncounts it and drops its reference (may queue the final check).
    pub fn port_closed(&mut self, name: &str) -> Result<(), DdllError> {
        let index = self.position(name).ok_or(DdllError::NotLoaded)?;
        let driver = &mut self.drivers[index];
        let Some(h) = driver.handle.as_mut() else {
            return Ok(());
        };
        if h.port_count == 0 || h.refc == 0 {
            return Err(DdllError::BadArg);
        }
        h.port_count -= 1;
        h.dereference(&driver.name, &mut self.scheduled);
        Ok(())
    }

    /// Reference `name` for in-flight work (async job, timer...): it will not be unloaded until
    /// the matching [`DdllCore::dereference`]. No-op for linked-in drivers.
    pub fn reference(&mut self, name: &str) -> Result<(), DdllError> {
        let index = self.position(name).ok_or(DdllError::NotLoaded)?;
        if let Some(h) = self.drivers[index].handle.as_mut() {
            h.reference();
        }
        Ok(())
    }

    /// Drop a reference taken with [`DdllCore::reference`] (may queue the final check).
    pub fn dereference(&mut self, name: &str) -> Result<(), DdllError> {
        let index = self.position(name).ok_or(DdllError::NotLoaded)?;
        let driver = &mut self.drivers[index];
        let Some(h) = driver.handle.as_mut() else {
            return Ok(());
        };
        if h.refc == 0 {
            return Err(DdllError::BadArg);
        }
        h.dereference(&driver.name, &mut self.scheduled);
        Ok(())
    }

    /// `driver_lock_driver`: make `name` permanent. Every waiting monitor gets
    /// `{'UP', Ref, driver, Name, permanent}` (awaiting load, then unload, then unload_only).
    pub fn lock_driver(&mut self, name: &str) -> Outcome<(), P> {
        let mut effects = Vec::new();
        let result = match self.position(name) {
            None => Err(DdllError::NotLoaded),
            Some(index) => {
                let driver = &mut self.drivers[index];
                match driver.handle.as_mut() {
                    None => Err(DdllError::LinkedInDriver),
                    Some(h) if h.status == HandleStatus::Permanent => Ok(()),
                    Some(h) => {
                        for awaiting in [
                            Awaiting::AwaitLoad,
                            Awaiting::AwaitUnload,
                            Awaiting::AwaitUnloadOnly,
                        ] {
                            h.notify_all(
                                &driver.name,
                                awaiting,
                                UpDown::Up,
                                Tag::Permanent,
                                &mut effects,
                            );
                        }
                        h.procs.clear();
                        h.reload = None;
                        h.reference();
                        h.status = HandleStatus::Permanent;
                        Ok(())
                    }
                }
            }
        };
        Outcome { result, effects }
    }

    /// Register a linked-in (static, or added with `add_driver_entry`) driver; it joins the
    /// end of the driver list. As in the runtime, a name may be registered again: the newest
    /// driver of a name is the one every call sees, until it is removed.
    pub fn add_linked_in(&mut self, name: &str) {
        self.drivers.push(Driver {
            name: Arc::from(name),
            handle: None,
        });
    }

    /// Remove the newest linked-in driver of this name (`NotLoaded` if there is none).
    pub fn remove_linked_in(&mut self, name: &str) -> Result<(), DdllError> {
        let index = self
            .drivers
            .iter()
            .rposition(|d| &*d.name == name && d.handle.is_none())
            .ok_or(DdllError::NotLoaded)?;
        self.drivers.remove(index);
        Ok(())
    }

    /// Whether "no more references" checks are queued for [`DdllCore::run_scheduled`].
    pub fn has_scheduled(&self) -> bool {
        !self.scheduled.is_empty()
    }

    /// Run the queued "no more references" checks (the runtime's scheduled misc ops).
    ///
    /// For each driver still unreferenced: `host.unload`, `'DOWN' ... unloaded` to the unload
    /// monitors, then for a pending reload `host.load` and `'UP' ... loaded` or
    /// `'DOWN' ... {load_failure, E}` to the load monitors. Call it after the effects and the
    /// reply of the call that queued the check have been delivered.
    pub fn run_scheduled<H: DriverHost + ?Sized>(&mut self, host: &mut H) -> Vec<Effect<P>> {
        let mut effects = Vec::new();
        while let Some((name, generation)) = self.scheduled.pop_front() {
            self.no_more_references(host, &name, generation, &mut effects);
        }
        effects
    }

    fn no_more_references<H: DriverHost + ?Sized>(
        &mut self,
        host: &mut H,
        name: &str,
        generation: u64,
        effects: &mut Vec<Effect<P>>,
    ) {
        let Some(index) = self.drivers.iter().position(|d| {
            &*d.name == name
                && d.handle
                    .as_ref()
                    .is_some_and(|h| h.generation == generation)
        }) else {
            return;
        };
        {
            let h = self.handle_mut(index);
            h.check_scheduled = false;
            // Referenced again since the check was queued, or (host misuse) healthy.
            if h.refc > 0 || matches!(h.status, HandleStatus::Ok | HandleStatus::Permanent) {
                return;
            }
        }
        let Driver { name, handle } = self.drivers.remove(index);
        let mut h = handle.expect("index refers to a dynamic driver");
        host.unload(&name);
        for e in h.procs.iter().rev() {
            if matches!(
                e.awaiting,
                Awaiting::AwaitUnload | Awaiting::AwaitUnloadOnly
            ) {
                effects.push(notification(
                    e.pid,
                    UpDown::Down,
                    e.monitor,
                    &name,
                    Tag::Unloaded,
                ));
            }
        }
        h.procs.retain(|e| {
            !matches!(
                e.awaiting,
                Awaiting::AwaitUnload | Awaiting::AwaitUnloadOnly
            )
        });
        let Some(reload) = h.reload.take() else {
            return; // plain unload: the handle is gone
        };
        let loaded = host
            .load(&reload.full_path, &reload.name)
            .map_err(LoadError::normalized);
        for e in h.procs.iter().rev() {
            if e.awaiting == Awaiting::AwaitLoad {
                let (kind, tag) = match loaded {
                    Ok(()) => (UpDown::Up, Tag::Loaded),
                    Err(err) => (UpDown::Down, Tag::LoadFailure(err)),
                };
                effects.push(notification(e.pid, kind, e.monitor, &name, tag));
            }
        }
        if loaded.is_err() {
            return; // the driver and every entry are gone
        }
        h.procs.retain(|e| e.awaiting != Awaiting::AwaitLoad);
        for e in h.procs.iter_mut() {
            if e.awaiting == Awaiting::Loaded {
                e.dereferenced = false;
                h.refc += 1;
            }
        }
        h.status = HandleStatus::Ok;
        h.kill_ports = reload.kill_ports;
        h.full_path = reload.full_path;
        h.generation = self.new_generation();
        // Re-added by the load: now the newest driver.
        self.drivers.push(Driver {
            name: Arc::from(reload.name.as_str()),
            handle: Some(h),
        });
    }

    /// `erl_ddll:info(Name, Item)`; `BadArg` when no driver has that name.
    pub fn info(&self, name: &str, item: InfoItem) -> Result<InfoValue<P>, DdllError> {
        let driver = &self.drivers[self.position(name).ok_or(DdllError::BadArg)?];
        let handle = driver.handle.as_ref();
        let filter = match item {
            InfoItem::Processes => Awaiting::Loaded,
            InfoItem::AwaitingLoad => Awaiting::AwaitLoad,
            InfoItem::AwaitingUnload => Awaiting::AwaitUnload,
            InfoItem::DriverOptions => {
                return Ok(handle.map_or(InfoValue::LinkedInDriver, |h| {
                    InfoValue::DriverOptions {
                        kill_ports: h.kill_ports,
                    }
                }));
            }
            InfoItem::PortCount => {
                return Ok(match handle {
                    None => InfoValue::LinkedInDriver,
                    Some(h) if h.status == HandleStatus::Permanent => InfoValue::Permanent,
                    Some(h) => InfoValue::PortCount(h.port_count),
                });
            }
            InfoItem::LinkedInDriver => return Ok(InfoValue::Bool(handle.is_none())),
            InfoItem::Permanent => {
                return Ok(InfoValue::Bool(
                    handle.is_some_and(|h| h.status == HandleStatus::Permanent),
                ));
            }
        };
        Ok(match handle {
            None => InfoValue::LinkedInDriver,
            Some(h) if h.status == HandleStatus::Permanent => InfoValue::Permanent,
            Some(h) => InfoValue::Processes(h.proc_info(filter)),
        })
    }

    /// `erl_ddll:info(Name)`: every item, in the order the Erlang module lists them.
    pub fn info_all(&self, name: &str) -> Result<Vec<(InfoItem, InfoValue<P>)>, DdllError> {
        InfoItem::ALL
            .into_iter()
            .map(|item| Ok((item, self.info(name, item)?)))
            .collect()
    }

    /// `erl_ddll:loaded_drivers()`: every driver name, linked-in ones included, oldest first.
    pub fn loaded_drivers(&self) -> Vec<&str> {
        self.drivers.iter().map(|d| &*d.name).collect()
    }

    /// The state of dynamic driver `name` (`None`: unknown or linked-in).
    pub fn status(&self, name: &str) -> Option<HandleStatus> {
        self.dynamic(name).map(|h| h.status)
    }

    /// The reference count of dynamic driver `name`: LOADED process entries not dereferenced,
    /// open ports, in-flight references, one for permanence.
    pub fn refcount(&self, name: &str) -> Option<u32> {
        self.dynamic(name).map(|h| h.refc)
    }

    /// The full path dynamic driver `name` was loaded from.
    pub fn full_path_of(&self, name: &str) -> Option<&str> {
        self.dynamic(name).map(|h| h.full_path.as_str())
    }

    /// The full path of a pending reload of `name`.
    pub fn reload_path_of(&self, name: &str) -> Option<&str> {
        self.dynamic(name)?
            .reload
            .as_ref()
            .map(|r| r.full_path.as_str())
    }

    fn dynamic(&self, name: &str) -> Option<&Handle<P>> {
        self.drivers[self.position(name)?].handle.as_ref()
    }
}
