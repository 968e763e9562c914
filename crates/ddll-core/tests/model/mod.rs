//! Reference model: a direct, unoptimised transcription of the runtime's erl_bif_ddll.c rules,
//! written separately from ddll-core. Linked lists are `Vec`s with the list head at index 0;
//! reference counting uses the runtime's "extra reference for the scheduled operation" trick;
//! the scheduled operations are a FIFO of handle ids.

use std::collections::{HashMap, HashSet, VecDeque};

use ddll_core::{DriverHost, LoadError, LoadOptions, MonitorKind, Pending, UnloadOptions};

use crate::common::{Ddll, Obs, TestHost};

const ST_OK: u32 = 0;
const ST_UNLOAD: u32 = 1;
const ST_FORCE_UNLOAD: u32 = 2;
const ST_RELOAD: u32 = 3;
const ST_FORCE_RELOAD: u32 = 4;
const ST_PERMANENT: u32 = 5;

const PROC_LOADED: u32 = 0;
const PROC_AWAIT_UNLOAD: u32 = 1;
const PROC_AWAIT_UNLOAD_ONLY: u32 = 2;
const PROC_AWAIT_LOAD: u32 = 4;

#[derive(Clone, Debug)]
struct ProcEntry {
    pid: u8,
    awaiting_status: u32,
    dereferenced: bool,
    r: u64,
}

#[derive(Clone, Debug)]
struct Handle {
    status: u32,
    procs: Vec<ProcEntry>,
    refc: i64,
    port_count: i64,
    kill_ports_flag: bool,
    full_path: Option<String>,
    reload_full_path: Option<String>,
    reload_driver_name: Option<String>,
    reload_kill_ports: bool,
}

#[derive(Clone, Debug)]
struct Drv {
    name: String,
    handle: Option<u64>,
}

#[derive(Default, Debug)]
pub struct Model {
    driver_list: Vec<Drv>,
    handles: HashMap<u64, Handle>,
    next_handle: u64,
    using_ddll: HashSet<u8>,
    next_ref: u64,
    misc_ops: VecDeque<u64>,
    out: Vec<String>,
}

fn err_term(e: LoadError) -> String {
    match e.to_code() {
        -1 => "no_driver_init".into(),
        -2 => "driver_init_failed".into(),
        -3 => "bad_driver_name".into(),
        -4 => "driver_name_to_long".into(),
        -5 => "driver_incorrect_version".into(),
        -6 => "no_ddll_available".into(),
        -7 => "unspecified_error".into(),
        -8 => "symbol_not_found".into(),
        0 => "no_error".into(),
        c => format!("{{open_error,{c}}}"),
    }
}

impl Model {
    fn make_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    fn lookup_driver(&self, name: &str) -> Option<usize> {
        self.driver_list.iter().position(|d| d.name == name)
    }

    fn h(&mut self, id: u64) -> &mut Handle {
        self.handles.get_mut(&id).expect("live handle")
    }

    fn reference_driver(&mut self, id: u64) {
        let h = self.h(id);
        h.refc += 1;
        if h.refc == 1 {
            h.refc += 1; // a reference for the scheduled operation
        }
    }

    fn dereference_driver(&mut self, id: u64) {
        let h = self.h(id);
        h.refc -= 1;
        if h.refc == 0 {
            self.misc_ops.push_back(id);
        }
    }

    fn notify_proc(&mut self, pid: u8, r: u64, name: &str, typ: &str, tag: &str) {
        self.out.push(format!("p{pid} {typ} #{r} {name} {tag}"));
    }

    fn notify_all(&mut self, id: u64, name: &str, awaiting: u32, typ: &str, tag: &str) {
        let mut i = 0;
        while i < self.h(id).procs.len() {
            if self.h(id).procs[i].awaiting_status == awaiting {
                let pe = self.h(id).procs.remove(i);
                self.notify_proc(pe.pid, pe.r, name, typ, tag);
            } else {
                i += 1;
            }
        }
    }

    fn find_proc_entry(&mut self, id: u64, pid: u8, status: u32) -> Option<usize> {
        self.h(id)
            .procs
            .iter()
            .position(|p| p.pid == pid && p.awaiting_status == status)
    }

    fn num_procs(&mut self, id: u64, status: u32) -> usize {
        self.h(id)
            .procs
            .iter()
            .filter(|p| p.awaiting_status == status)
            .count()
    }

    fn is_last_user(&mut self, id: u64, pid: u8) -> bool {
        let mut found = false;
        for p in &self.h(id).procs {
            if p.pid == pid && p.awaiting_status == PROC_LOADED {
                if !found {
                    found = true;
                } else {
                    return false;
                }
            } else if p.awaiting_status == PROC_LOADED {
                return false;
            }
        }
        found
    }

    fn add_entry(&mut self, id: u64, pid: u8, status: u32, deref: bool, r: u64) {
        self.h(id).procs.insert(
            0,
            ProcEntry {
                pid,
                awaiting_status: status,
                dereferenced: deref,
                r,
            },
        );
    }

    fn add_monitor(&mut self, id: u64, pid: u8, status: u32) -> u64 {
        let r = self.make_ref();
        self.add_entry(id, pid, status, false, r);
        r
    }

    fn kill_ports(&mut self, name: &str) {
        self.out.push(format!("kill {name}"));
    }

    fn take_out(&mut self, reply: String) -> Obs {
        Obs {
            reply,
            effects: std::mem::take(&mut self.out),
        }
    }

    fn try_load_body(
        &mut self,
        host: &mut TestHost,
        pid: u8,
        path_in: &str,
        name: &str,
        o: LoadOptions,
    ) -> Result<(String, bool, u64), String> {
        let flags = o.kill_ports;
        let mut monitor = match o.monitor {
            None => 0,
            Some(Pending::PendingDriver) => 1,
            Some(Pending::Pending) => 2,
        };
        let reload = match o.reload {
            None => 0,
            Some(Pending::PendingDriver) => 1,
            Some(Pending::Pending) => 2,
        };
        let mut path: String = path_in.to_owned();
        while path.ends_with('/') || path.ends_with('\\') {
            path.pop();
        }
        path.push('/');
        path.push_str(name);
        let mut kill_ports = false;
        let ok_term;
        let dh;
        if let Some(di) = self.lookup_driver(name) {
            let Some(id) = self.driver_list[di].handle else {
                return Err("linked_in_driver".into());
            };
            dh = id;
            let status = self.h(id).status;
            if status == ST_OK {
                let is_last = self.is_last_user(id, pid);
                if reload == 1 && !is_last {
                    return Err("pending_process".into());
                }
                if reload != 0 {
                    if self.h(id).kill_ports_flag != flags {
                        return Err("inconsistent".into());
                    }
                    let Some(old) = self.find_proc_entry(id, pid, PROC_LOADED) else {
                        return Err("not_loaded_by_this_process".into());
                    };
                    self.h(id).procs.remove(old);
                    self.dereference_driver(id);
                    // dereference_all_processes
                    let n = self.h(id).procs.len();
                    for i in 0..n {
                        if self.h(id).procs[i].awaiting_status == PROC_LOADED {
                            self.dereference_driver(id);
                            self.h(id).procs[i].dereferenced = true;
                        }
                    }
                    // set_driver_reloading
                    self.add_entry(id, pid, PROC_LOADED, true, 0);
                    let h = self.h(id);
                    h.status = ST_RELOAD;
                    h.reload_full_path = Some(path.clone());
                    h.reload_driver_name = Some(name.to_owned());
                    h.reload_kill_ports = flags;
                    if h.kill_ports_flag {
                        kill_ports = true;
                    }
                    ok_term = if reload == 1 {
                        "pending_driver"
                    } else {
                        "pending_process"
                    };
                } else {
                    if self.h(id).full_path.as_deref() != Some(path.as_str())
                        || self.h(id).kill_ports_flag != flags
                    {
                        return Err("inconsistent".into());
                    }
                    self.add_entry(id, pid, PROC_LOADED, false, 0);
                    self.reference_driver(id);
                    monitor = 0;
                    ok_term = "already_loaded";
                }
            } else if status == ST_UNLOAD || status == ST_FORCE_UNLOAD {
                if reload != 0 {
                    return Err("not_loaded_by_this_process".into());
                }
                if self.h(id).full_path.as_deref() != Some(path.as_str())
                    || self.h(id).kill_ports_flag != flags
                {
                    return Err("inconsistent".into());
                }
                self.h(id).status = ST_OK;
                let dname = self.driver_list[di].name.clone();
                self.notify_all(id, &dname, PROC_AWAIT_UNLOAD, "UP", "unload_cancelled");
                self.add_entry(id, pid, PROC_LOADED, false, 0);
                self.reference_driver(id);
                monitor = 0;
                ok_term = "already_loaded";
            } else if status == ST_RELOAD || status == ST_FORCE_RELOAD {
                if reload != 0 {
                    return Err("pending_reload".into());
                }
                if self.h(id).reload_full_path.as_deref() != Some(path.as_str())
                    || self.h(id).reload_kill_ports != flags
                {
                    return Err("inconsistent".into());
                }
                self.add_entry(id, pid, PROC_LOADED, true, 0);
                monitor += 1;
                ok_term = "pending_driver";
            } else {
                return Err("permanent".into());
            }
        } else {
            if reload != 0 {
                return Err("not_loaded".into());
            }
            if let Err(e) = host.load(&path, name) {
                return Err(err_term(e));
            }
            self.next_handle += 1;
            let id = self.next_handle;
            self.handles.insert(
                id,
                Handle {
                    status: ST_OK,
                    procs: Vec::new(),
                    refc: 0,
                    port_count: 0,
                    kill_ports_flag: flags,
                    full_path: Some(path.clone()),
                    reload_full_path: None,
                    reload_driver_name: None,
                    reload_kill_ports: false,
                },
            );
            self.driver_list.insert(
                0,
                Drv {
                    name: name.to_owned(),
                    handle: Some(id),
                },
            );
            dh = id;
            self.add_entry(id, pid, PROC_LOADED, false, 0);
            self.h(id).refc = 1; // first_ddll_reference
            monitor = 0;
            ok_term = "loaded";
        }
        if kill_ports {
            self.reference_driver(dh);
            self.h(dh).status = ST_FORCE_RELOAD;
            self.kill_ports(name);
            self.dereference_driver(dh);
        }
        self.reference_driver(dh);
        self.dereference_driver(dh);
        self.using_ddll.insert(pid);
        Ok((ok_term.to_owned(), monitor != 0, dh))
    }

    fn no_more_references(&mut self, host: &mut TestHost, id: u64) {
        if !self.handles.contains_key(&id) {
            return;
        }
        let mut x = self.h(id).refc;
        if x > 0 {
            self.h(id).refc -= 1;
            x = self.h(id).refc;
        }
        if x != 0 {
            return;
        }
        assert_ne!(
            self.h(id).status,
            ST_OK,
            "model: unload of a healthy driver"
        );
        // do_unload_driver_entry
        let di = self
            .driver_list
            .iter()
            .position(|d| d.handle == Some(id))
            .expect("listed");
        let drv = self.driver_list.remove(di);
        host.unload(&drv.name);
        let mut i = 0;
        while i < self.h(id).procs.len() {
            let st = self.h(id).procs[i].awaiting_status;
            if st == PROC_AWAIT_UNLOAD || st == PROC_AWAIT_UNLOAD_ONLY {
                let pe = self.h(id).procs.remove(i);
                self.notify_proc(pe.pid, pe.r, &drv.name, "DOWN", "unloaded");
            } else {
                i += 1;
            }
        }
        let status = self.h(id).status;
        if status == ST_UNLOAD || status == ST_FORCE_UNLOAD {
            self.handles.remove(&id);
            return;
        }
        // reload_driver_entry
        let h = self.h(id);
        let path = h.reload_full_path.take().expect("reload path");
        let name = h.reload_driver_name.take().expect("reload name");
        let flags = h.reload_kill_ports;
        h.full_path = None;
        let res = host.load(&path, &name);
        if res.is_ok() {
            let h = self.h(id);
            h.full_path = Some(path);
            h.status = ST_OK;
            h.kill_ports_flag = flags;
            self.driver_list.insert(
                0,
                Drv {
                    name: name.clone(),
                    handle: Some(id),
                },
            );
        }
        // restore_process_references
        for p in self.h(id).procs.iter_mut() {
            if p.awaiting_status == PROC_LOADED {
                p.dereferenced = false;
            }
        }
        let loaded = self.num_procs(id, PROC_LOADED) as i64;
        self.h(id).refc += loaded;
        let mut i = 0;
        while i < self.h(id).procs.len() {
            if self.h(id).procs[i].awaiting_status == PROC_AWAIT_LOAD {
                let pe = self.h(id).procs.remove(i);
                match res {
                    Ok(()) => self.notify_proc(pe.pid, pe.r, &drv.name, "UP", "loaded"),
                    Err(e) => {
                        let tag = format!("{{load_failure,{}}}", err_term(e));
                        self.notify_proc(pe.pid, pe.r, &drv.name, "DOWN", &tag)
                    }
                }
            } else if res.is_err() {
                self.h(id).procs.remove(i);
            } else {
                i += 1;
            }
        }
        if res.is_err() {
            self.handles.remove(&id);
        }
    }

    fn handle_at(&self, di: usize) -> Option<u64> {
        self.driver_list[di].handle
    }

    fn handle_of(&self, drv: &str) -> Option<u64> {
        self.driver_list[self.lookup_driver(drv)?].handle
    }

    fn proc_info(&self, id: u64, filter: u32) -> String {
        let mut pei: Vec<(u8, u32)> = Vec::new();
        for pe in &self.handles[&id].procs {
            let mut stat = pe.awaiting_status;
            if stat == PROC_AWAIT_UNLOAD_ONLY {
                stat = PROC_AWAIT_UNLOAD;
            }
            if stat != filter {
                continue;
            }
            match pei.iter_mut().find(|(p, _)| *p == pe.pid) {
                Some(e) => e.1 += 1,
                None => pei.push((pe.pid, 1)),
            }
        }
        let mut res: Vec<String> = Vec::new();
        for (p, n) in pei {
            res.insert(0, format!("{{p{p},{n}}}"));
        }
        format!("[{}]", res.join(","))
    }

    fn info_item(&self, drv: &str, item: &str) -> Result<String, String> {
        let di = self.lookup_driver(drv).ok_or("badarg")?;
        let handle = self.driver_list[di].handle;
        let filter = match item {
            "processes" => PROC_LOADED,
            "driver_options" => {
                return Ok(match handle {
                    None => "linked_in_driver".into(),
                    Some(id) if self.handles[&id].kill_ports_flag => "[kill_ports]".into(),
                    Some(_) => "[]".into(),
                })
            }
            "port_count" => {
                return Ok(match handle {
                    None => "linked_in_driver".into(),
                    Some(id) if self.handles[&id].status == ST_PERMANENT => "permanent".into(),
                    Some(id) => self.handles[&id].port_count.to_string(),
                })
            }
            "linked_in_driver" => return Ok(handle.is_none().to_string()),
            "permanent" => {
                return Ok(handle
                    .is_some_and(|id| self.handles[&id].status == ST_PERMANENT)
                    .to_string())
            }
            "awaiting_load" => PROC_AWAIT_LOAD,
            "awaiting_unload" => PROC_AWAIT_UNLOAD,
            _ => return Err("badarg".into()),
        };
        Ok(match handle {
            None => "linked_in_driver".into(),
            Some(id) if self.handles[&id].status == ST_PERMANENT => "permanent".into(),
            Some(id) => self.proc_info(id, filter),
        })
    }
}

impl Ddll for Model {
    fn try_load(
        &mut self,
        host: &mut TestHost,
        pid: u8,
        dir: &str,
        drv: &str,
        o: LoadOptions,
    ) -> Obs {
        match self.try_load_body(host, pid, dir, drv, o) {
            Ok((ok_term, true, dh)) => {
                let r = self.add_monitor(dh, pid, PROC_AWAIT_LOAD);
                self.take_out(format!("{{ok,{ok_term},#{r}}}"))
            }
            Ok((ok_term, false, _)) => self.take_out(format!("{{ok,{ok_term}}}")),
            Err(e) => self.take_out(format!("{{error,{e}}}")),
        }
    }

    fn try_unload(&mut self, pid: u8, name: &str, o: UnloadOptions) -> Obs {
        let mut kill_ports = i32::from(o.kill_ports);
        let mut monitor = match o.monitor {
            None => 0,
            Some(Pending::PendingDriver) => 1,
            Some(Pending::Pending) => 2,
        };
        let Some(di) = self.lookup_driver(name) else {
            return self.take_out("{error,not_loaded}".into());
        };
        let Some(dh) = self.driver_list[di].handle else {
            return self.take_out("{error,linked_in_driver}".into());
        };
        if self.h(dh).status == ST_PERMANENT {
            return self.take_out("{error,permanent}".into());
        }
        if self.h(dh).kill_ports_flag {
            kill_ports = 1;
        }
        match self.find_proc_entry(dh, pid, PROC_LOADED) {
            None => {
                if self.num_procs(dh, PROC_LOADED) > 0 {
                    return self.take_out("{error,not_loaded_by_this_process}".into());
                }
            }
            Some(i) => {
                let pe = self.h(dh).procs.remove(i);
                if !pe.dereferenced {
                    self.dereference_driver(dh);
                }
            }
        }
        let ok_term;
        if self.num_procs(dh, PROC_LOADED) > 0 {
            ok_term = "pending_process";
            monitor -= 1;
        } else {
            let st = self.h(dh).status;
            if st == ST_RELOAD || st == ST_FORCE_RELOAD {
                let dname = self.driver_list[di].name.clone();
                self.notify_all(dh, &dname, PROC_AWAIT_LOAD, "DOWN", "load_cancelled");
                let h = self.h(dh);
                h.reload_full_path = None;
                h.reload_driver_name = None;
                h.reload_kill_ports = false;
            }
            if self.h(dh).port_count > 0 {
                kill_ports += 1;
            }
            self.h(dh).status = ST_UNLOAD;
            ok_term = "pending_driver";
        }
        if kill_ports > 1 {
            self.reference_driver(dh);
            self.h(dh).status = ST_FORCE_UNLOAD;
            self.kill_ports(name);
            self.dereference_driver(dh);
        }
        self.reference_driver(dh);
        self.dereference_driver(dh);
        self.using_ddll.insert(pid);
        if monitor > 0 {
            let r = self.add_monitor(dh, pid, PROC_AWAIT_UNLOAD);
            self.take_out(format!("{{ok,{ok_term},#{r}}}"))
        } else {
            self.take_out(format!("{{ok,{ok_term}}}"))
        }
    }

    fn monitor(&mut self, pid: u8, name: &str, kind: MonitorKind) -> Obs {
        let immediate = match self.lookup_driver(name) {
            None => Some(("DOWN", "unloaded")),
            Some(di) => match self.handle_at(di) {
                None => Some(("UP", "permanent")),
                Some(id) if self.h(id).status == ST_PERMANENT => Some(("UP", "permanent")),
                Some(id) => {
                    let st = self.h(id).status;
                    match kind {
                        MonitorKind::Loaded => match st {
                            ST_OK => Some(("UP", "loaded")),
                            ST_UNLOAD | ST_FORCE_UNLOAD => Some(("DOWN", "load_cancelled")),
                            _ => {
                                self.using_ddll.insert(pid);
                                let r = self.add_monitor(id, pid, PROC_AWAIT_LOAD);
                                return self.take_out(format!("#{r}"));
                            }
                        },
                        MonitorKind::Unloaded | MonitorKind::UnloadedOnly => {
                            let flag = if kind == MonitorKind::Unloaded {
                                PROC_AWAIT_UNLOAD
                            } else {
                                PROC_AWAIT_UNLOAD_ONLY
                            };
                            self.using_ddll.insert(pid);
                            let r = self.add_monitor(id, pid, flag);
                            return self.take_out(format!("#{r}"));
                        }
                    }
                }
            },
        };
        let (typ, tag) = immediate.expect("immediate answer");
        let r = self.make_ref();
        self.notify_proc(pid, r, name, typ, tag);
        self.take_out(format!("#{r}"))
    }

    fn demonitor(&mut self, pid: u8, r: u64) {
        if !self.using_ddll.contains(&pid) {
            return;
        }
        for di in 0..self.driver_list.len() {
            let Some(id) = self.driver_list[di].handle else {
                continue;
            };
            if self.h(id).status == ST_PERMANENT {
                continue;
            }
            let procs = &mut self.h(id).procs;
            if let Some(i) = procs.iter().position(|p| {
                p.pid == pid
                    && matches!(
                        p.awaiting_status,
                        PROC_AWAIT_LOAD | PROC_AWAIT_UNLOAD | PROC_AWAIT_UNLOAD_ONLY
                    )
                    && p.r == r
            }) {
                procs.remove(i);
                return;
            }
        }
    }

    fn port_open(&mut self, drv: &str) -> bool {
        let Some(id) = self.handle_of(drv) else {
            return false;
        };
        let st = self.h(id).status;
        if st == ST_FORCE_UNLOAD || st == ST_FORCE_RELOAD {
            return false;
        }
        self.h(id).port_count += 1;
        self.reference_driver(id);
        true
    }

    fn port_close(&mut self, drv: &str) {
        let id = self.handle_of(drv).expect("port's driver");
        self.h(id).port_count -= 1;
        self.dereference_driver(id);
    }

    fn reference(&mut self, drv: &str) {
        let id = self.handle_of(drv).expect("driver");
        self.reference_driver(id);
    }

    fn dereference(&mut self, drv: &str) {
        let id = self.handle_of(drv).expect("driver");
        self.dereference_driver(id);
    }

    fn die(&mut self, pid: u8) -> Obs {
        if !self.using_ddll.remove(&pid) {
            return self.take_out("ok".into());
        }
        let mut di = 0;
        while di < self.driver_list.len() {
            let Some(id) = self.driver_list[di].handle else {
                di += 1;
                continue;
            };
            if self.h(id).status == ST_PERMANENT {
                di += 1;
                continue;
            }
            let kill_ports = self.h(id).kill_ports_flag;
            let mut left = 0;
            let mut i = 0;
            while i < self.h(id).procs.len() {
                let p = self.h(id).procs[i].clone();
                if p.pid == pid {
                    self.h(id).procs.remove(i);
                    if !p.dereferenced && p.awaiting_status == PROC_LOADED {
                        self.dereference_driver(id);
                    }
                } else {
                    if p.awaiting_status == PROC_LOADED {
                        left += 1;
                    }
                    i += 1;
                }
            }
            if left == 0 {
                let st = self.h(id).status;
                if st == ST_RELOAD || st == ST_FORCE_RELOAD {
                    let dname = self.driver_list[di].name.clone();
                    self.notify_all(id, &dname, PROC_AWAIT_LOAD, "DOWN", "load_cancelled");
                    let h = self.h(id);
                    h.reload_full_path = None;
                    h.reload_driver_name = None;
                    h.reload_kill_ports = false;
                }
                self.h(id).status = ST_UNLOAD;
            }
            if left == 0 && self.h(id).port_count > 0 && kill_ports {
                self.reference_driver(id);
                self.h(id).status = ST_FORCE_UNLOAD;
                let dname = self.driver_list[di].name.clone();
                self.kill_ports(&dname);
                self.dereference_driver(id);
            }
            di += 1;
        }
        self.take_out("ok".into())
    }

    fn lock(&mut self, drv: &str) -> Obs {
        let Some(di) = self.lookup_driver(drv) else {
            return self.take_out("not_loaded".into());
        };
        let Some(id) = self.driver_list[di].handle else {
            return self.take_out("linked_in_driver".into());
        };
        if self.h(id).status != ST_PERMANENT {
            let name = self.driver_list[di].name.clone();
            self.notify_all(id, &name, PROC_AWAIT_LOAD, "UP", "permanent");
            self.notify_all(id, &name, PROC_AWAIT_UNLOAD, "UP", "permanent");
            self.notify_all(id, &name, PROC_AWAIT_UNLOAD_ONLY, "UP", "permanent");
            self.h(id).procs.clear();
            self.reference_driver(id);
            self.h(id).status = ST_PERMANENT;
        }
        self.take_out("ok".into())
    }

    fn run(&mut self, host: &mut TestHost) -> Obs {
        while let Some(id) = self.misc_ops.pop_front() {
            self.no_more_references(host, id);
        }
        self.take_out("ok".into())
    }

    fn info(&self, drv: &str) -> String {
        let items = [
            "processes",
            "driver_options",
            "port_count",
            "linked_in_driver",
            "permanent",
            "awaiting_load",
            "awaiting_unload",
        ];
        let mut parts = Vec::new();
        for item in items {
            match self.info_item(drv, item) {
                Ok(v) => parts.push(format!("{item}={v}")),
                Err(e) => return e,
            }
        }
        parts.join(" ")
    }

    fn loaded_drivers(&self) -> Vec<String> {
        let mut res = Vec::new();
        for d in &self.driver_list {
            res.insert(0, d.name.clone());
        }
        res
    }

    fn is_dynamic(&self, drv: &str) -> bool {
        self.handle_of(drv).is_some()
    }
}

impl Model {
    /// Register a linked-in driver at the list head.
    pub fn add_linked_in(&mut self, name: &str) {
        self.driver_list.insert(
            0,
            Drv {
                name: name.to_owned(),
                handle: None,
            },
        );
    }
}
