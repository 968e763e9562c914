//! Shared test harness: operations, a scripted host, and observations comparable across
//! implementations (ddll-core and the reference model).
#![allow(dead_code)]

use std::collections::HashMap;

use ddll_core::{
    DdllCore, DriverHost, Effect, InfoItem, InfoValue, LoadError, LoadOptions, MonitorKind,
    MonitorRef, Outcome, Pending, Reply, UnloadOptions,
};

/// Directories: loading from `BAD_DIR` fails with `bad_driver_name`, from `GONE_DIR` with
/// `{open_error, -10}`.
pub const DIR_A: &str = "/lib/a";
pub const DIR_B: &str = "/lib/b/";
pub const BAD_DIR: &str = "/bad";
pub const GONE_DIR: &str = "/gone";

/// One operation of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Load {
        pid: u8,
        drv: &'static str,
        dir: &'static str,
        kill: bool,
        monitor: Option<Pending>,
        reload: Option<Pending>,
    },
    Unload {
        pid: u8,
        drv: &'static str,
        kill: bool,
        monitor: Option<Pending>,
    },
    Monitor {
        pid: u8,
        drv: &'static str,
        kind: MonitorKind,
    },
    /// Demonitor the `nth` reference handed out so far (modulo their number).
    Demonitor {
        pid: u8,
        nth: usize,
    },
    PortOpen(&'static str),
    PortClose(&'static str),
    Reference(&'static str),
    Dereference(&'static str),
    Die(u8),
    Lock(&'static str),
    /// Run the scheduled "no more references" work.
    Run,
}

/// A host that "loads" everything except from the failing directories, and logs its calls.
#[derive(Default, Debug)]
pub struct TestHost {
    pub log: Vec<String>,
}

impl DriverHost for TestHost {
    fn load(&mut self, full_path: &str, name: &str) -> Result<(), LoadError> {
        self.log.push(format!("load {full_path} {name}"));
        if full_path.starts_with(BAD_DIR) {
            Err(LoadError::BadDriverName)
        } else if full_path.starts_with(GONE_DIR) {
            Err(LoadError::OpenError(-10))
        } else {
            Ok(())
        }
    }
    fn unload(&mut self, name: &str) {
        self.log.push(format!("unload {name}"));
    }
}

/// An effect, as a string: `p1 DOWN #3 da unloaded` or `kill da`.
pub type ObsEffect = String;

/// What one operation showed: the reply (as Erlang text) and effects in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obs {
    pub reply: String,
    pub effects: Vec<ObsEffect>,
}

/// The interface both implementations offer to the harness.
pub trait Ddll {
    fn try_load(
        &mut self,
        host: &mut TestHost,
        pid: u8,
        dir: &str,
        drv: &str,
        o: LoadOptions,
    ) -> Obs;
    fn try_unload(&mut self, pid: u8, drv: &str, o: UnloadOptions) -> Obs;
    fn monitor(&mut self, pid: u8, drv: &str, kind: MonitorKind) -> Obs;
    fn demonitor(&mut self, pid: u8, r: u64);
    /// Open a port if allowed; false when refused (no driver, or ports being killed).
    fn port_open(&mut self, drv: &str) -> bool;
    fn port_close(&mut self, drv: &str);
    fn reference(&mut self, drv: &str);
    fn dereference(&mut self, drv: &str);
    fn die(&mut self, pid: u8) -> Obs;
    fn lock(&mut self, drv: &str) -> Obs;
    fn run(&mut self, host: &mut TestHost) -> Obs;
    /// `erl_ddll:info(Drv)` rendered, or "badarg".
    fn info(&self, drv: &str) -> String;
    fn loaded_drivers(&self) -> Vec<String>;
    /// Whether `drv` is a dynamic (not linked-in) driver.
    fn is_dynamic(&self, drv: &str) -> bool;
}

pub fn pending_atom(p: Pending) -> &'static str {
    p.atom()
}

/// Render `{ok, Status}` / `{ok, Status, #N}` / `{error, E}`.
pub fn render_reply(r: &Result<Reply, ddll_core::DdllError>) -> String {
    match r {
        Ok(Reply {
            status,
            monitor: None,
        }) => format!("{{ok,{}}}", status.atom()),
        Ok(Reply {
            status,
            monitor: Some(MonitorRef(n)),
        }) => format!("{{ok,{},#{n}}}", status.atom()),
        Err(e) => format!("{{error,{}}}", render_error(*e)),
    }
}

pub fn render_error(e: ddll_core::DdllError) -> String {
    match (e.atom(), e) {
        (Some(a), _) => a.to_owned(),
        (None, ddll_core::DdllError::Load(l)) => format!("{{open_error,{}}}", l.to_code()),
        (None, other) => format!("{other:?}"),
    }
}

pub fn render_tag(t: ddll_core::Tag) -> String {
    match t {
        ddll_core::Tag::LoadFailure(e) => {
            format!(
                "{{load_failure,{}}}",
                render_error(ddll_core::DdllError::Load(e))
            )
        }
        other => other.atom().to_owned(),
    }
}

pub fn render_effects(effects: &[Effect<u8>]) -> Vec<ObsEffect> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Notify(n) => format!(
                "p{} {} #{} {} {}",
                n.to,
                n.kind.atom(),
                n.monitor.0,
                n.driver,
                render_tag(n.tag)
            ),
            Effect::KillPorts { driver } => format!("kill {driver}"),
        })
        .collect()
}

fn obs<T>(
    o: Outcome<T, u8>,
    reply: impl FnOnce(&Result<T, ddll_core::DdllError>) -> String,
) -> Obs {
    Obs {
        reply: reply(&o.result),
        effects: render_effects(&o.effects),
    }
}

pub fn render_info_value(v: &InfoValue<u8>) -> String {
    match v {
        InfoValue::Processes(list) => {
            let items: Vec<String> = list.iter().map(|(p, n)| format!("{{p{p},{n}}}")).collect();
            format!("[{}]", items.join(","))
        }
        InfoValue::DriverOptions { kill_ports: true } => "[kill_ports]".into(),
        InfoValue::DriverOptions { kill_ports: false } => "[]".into(),
        InfoValue::PortCount(n) => n.to_string(),
        InfoValue::Bool(b) => b.to_string(),
        InfoValue::LinkedInDriver => "linked_in_driver".into(),
        InfoValue::Permanent => "permanent".into(),
    }
}

/// ddll-core under test.
#[derive(Default, Debug)]
pub struct Impl {
    pub core: DdllCore<u8>,
}

impl Ddll for Impl {
    fn try_load(
        &mut self,
        host: &mut TestHost,
        pid: u8,
        dir: &str,
        drv: &str,
        o: LoadOptions,
    ) -> Obs {
        obs(self.core.try_load(host, pid, dir, drv, o), render_reply)
    }
    fn try_unload(&mut self, pid: u8, drv: &str, o: UnloadOptions) -> Obs {
        obs(self.core.try_unload(pid, drv, o), render_reply)
    }
    fn monitor(&mut self, pid: u8, drv: &str, kind: MonitorKind) -> Obs {
        obs(self.core.monitor(pid, drv, kind), |r| match r {
            Ok(MonitorRef(n)) => format!("#{n}"),
            Err(e) => render_error(*e),
        })
    }
    fn demonitor(&mut self, pid: u8, r: u64) {
        self.core.demonitor(pid, MonitorRef(r));
    }
    fn port_open(&mut self, drv: &str) -> bool {
        self.core.port_opened(drv).is_ok()
    }
    fn port_close(&mut self, drv: &str) {
        self.core
            .port_closed(drv)
            .expect("harness closes only open ports");
    }
    fn reference(&mut self, drv: &str) {
        self.core
            .reference(drv)
            .expect("harness references existing drivers");
    }
    fn dereference(&mut self, drv: &str) {
        self.core
            .dereference(drv)
            .expect("harness dereferences only what it referenced");
    }
    fn die(&mut self, pid: u8) -> Obs {
        obs(self.core.process_died(pid), |_| "ok".into())
    }
    fn lock(&mut self, drv: &str) -> Obs {
        obs(self.core.lock_driver(drv), |r| match r {
            Ok(()) => "ok".into(),
            Err(e) => render_error(*e),
        })
    }
    fn run(&mut self, host: &mut TestHost) -> Obs {
        Obs {
            reply: "ok".into(),
            effects: render_effects(&self.core.run_scheduled(host)),
        }
    }
    fn info(&self, drv: &str) -> String {
        match self.core.info_all(drv) {
            Ok(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|(item, v)| format!("{}={}", item.atom(), render_info_value(v)))
                    .collect();
                parts.join(" ")
            }
            Err(e) => render_error(e),
        }
    }
    fn loaded_drivers(&self) -> Vec<String> {
        self.core
            .loaded_drivers()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
    fn is_dynamic(&self, drv: &str) -> bool {
        matches!(
            self.core.info(drv, InfoItem::LinkedInDriver),
            Ok(InfoValue::Bool(false))
        )
    }
}

/// Drives one implementation, keeping the harness-side bookkeeping (open ports, in-flight
/// references, handed-out monitor refs) and applying `kill` effects by closing the ports.
#[derive(Default, Debug)]
pub struct Harness<D> {
    pub sys: D,
    pub host: TestHost,
    pub ports: HashMap<&'static str, u32>,
    pub refs: HashMap<&'static str, u32>,
    pub monitors: Vec<u64>,
}

impl<D: Ddll> Harness<D> {
    pub fn new(sys: D) -> Self {
        Harness {
            sys,
            host: TestHost::default(),
            ports: HashMap::new(),
            refs: HashMap::new(),
            monitors: Vec::new(),
        }
    }

    /// Apply `op`; the observation includes closing ports for `kill` effects.
    pub fn step(&mut self, op: &Op) -> Obs {
        let mut out = match op {
            Op::Load {
                pid,
                drv,
                dir,
                kill,
                monitor,
                reload,
            } => {
                let o = LoadOptions {
                    kill_ports: *kill,
                    monitor: *monitor,
                    reload: *reload,
                };
                self.sys.try_load(&mut self.host, *pid, dir, drv, o)
            }
            Op::Unload {
                pid,
                drv,
                kill,
                monitor,
            } => self.sys.try_unload(
                *pid,
                drv,
                UnloadOptions {
                    kill_ports: *kill,
                    monitor: *monitor,
                },
            ),
            Op::Monitor { pid, drv, kind } => self.sys.monitor(*pid, drv, *kind),
            Op::Demonitor { pid, nth } => {
                if let Some(r) =
                    (!self.monitors.is_empty()).then(|| self.monitors[nth % self.monitors.len()])
                {
                    self.sys.demonitor(*pid, r);
                }
                Obs {
                    reply: "true".into(),
                    effects: vec![],
                }
            }
            Op::PortOpen(drv) => {
                let opened = self.sys.is_dynamic(drv) && self.sys.port_open(drv);
                if opened {
                    *self.ports.entry(drv).or_default() += 1;
                }
                Obs {
                    reply: if opened { "port" } else { "badarg" }.into(),
                    effects: vec![],
                }
            }
            Op::PortClose(drv) => {
                let open = self.ports.entry(drv).or_default();
                let closed = *open > 0;
                if closed {
                    *open -= 1;
                    self.sys.port_close(drv);
                }
                Obs {
                    reply: closed.to_string(),
                    effects: vec![],
                }
            }
            Op::Reference(drv) => {
                let ok = self.sys.is_dynamic(drv);
                if ok {
                    self.sys.reference(drv);
                    *self.refs.entry(drv).or_default() += 1;
                }
                Obs {
                    reply: ok.to_string(),
                    effects: vec![],
                }
            }
            Op::Dereference(drv) => {
                let held = self.refs.entry(drv).or_default();
                let ok = *held > 0;
                if ok {
                    *held -= 1;
                    self.sys.dereference(drv);
                }
                Obs {
                    reply: ok.to_string(),
                    effects: vec![],
                }
            }
            Op::Die(pid) => self.sys.die(*pid),
            Op::Lock(drv) => self.sys.lock(drv),
            Op::Run => self.sys.run(&mut self.host),
        };
        // Remember monitor refs the reply handed out.
        if let Some(pos) = out.reply.find('#') {
            let digits: String = out.reply[pos + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            self.monitors.push(digits.parse().expect("ref number"));
        }
        let mut closed = Vec::new();
        for e in &out.effects {
            if let Some(drv) = e.strip_prefix("kill ") {
                let key = if drv == "da" { "da" } else { "db" };
                let n = self.ports.insert(key, 0).unwrap_or(0);
                for _ in 0..n {
                    self.sys.port_close(key);
                }
                closed.push(format!("closed {n} ports of {key}"));
            }
        }
        out.effects.extend(closed);
        out
    }

    /// Everything observable about the state: driver list and info of each test driver.
    pub fn state(&self) -> String {
        format!("{}\n  host: {:?}", self.core_state(), self.host.log)
    }

    /// The observable state without the host's log.
    pub fn core_state(&self) -> String {
        let mut s = format!("drivers={:?}", self.sys.loaded_drivers());
        for drv in ["da", "db"] {
            s.push_str(&format!("\n  {drv}: {}", self.sys.info(drv)));
        }
        s
    }
}
