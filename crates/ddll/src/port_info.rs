//! `erlang:port_info/1,2`: what a port says about itself.

use drv_abi::types::ERL_DRV_FLAG_USE_PORT_LOCKING;
use drv_term::Term;

use crate::error::Exception;
use crate::runtime::{atom, Runtime};

impl Runtime {
    /// `erlang:port_info(Port, Item)`: `{Item, Value}`, or `undefined` for a closed port.
    pub fn port_info_item(&self, id: &drv_term::Port, item: &Term) -> Result<Term, Exception> {
        let known = [
            "name",
            "links",
            "id",
            "connected",
            "input",
            "output",
            "os_pid",
        ];
        if !matches!(item, Term::Atom(a) if known.contains(&a.as_str()) || ["registered_name", "memory", "queue_size", "locking", "monitors", "monitored_by", "parallelism"].contains(&a.as_str()))
        {
            return Err(Exception::badarg());
        }
        let Term::List(items) = self.port_info(id) else {
            return Ok(atom("undefined"));
        };
        Ok(items
            .into_iter()
            .find(|t| matches!(t, Term::Tuple(pair) if pair[0] == *item))
            .unwrap_or_else(|| match item {
                Term::Atom(a) if a.as_str() == "registered_name" => Term::List(vec![]),
                Term::Atom(a) if a.as_str() == "queue_size" => {
                    let size = self.port(id).map_or(0, |port| {
                        crate::isolate::port_counts(&port)
                            .map_or_else(|| crate::queue::size(&port), |(_, _, queue)| queue)
                            as i64
                    });
                    Term::Tuple(vec![item.clone(), Term::Int(size)])
                }
                Term::Atom(a) if a.as_str() == "monitors" => {
                    // The driver's process monitors (`driver_monitor_process`), as
                    // `{process, Pid}`. BEAM lists them in its monitor tree's order; ddll in the
                    // order they were made (the same for up to two).
                    // An isolated driver's monitors are in its host.
                    let monitors = self.port(id).map_or(vec![], |port| {
                        crate::isolate::port_monitors(&port)
                            .unwrap_or_else(|| {
                                port.state
                                    .lock()
                                    .monitors
                                    .iter()
                                    .map(|(_, pid)| *pid)
                                    .collect()
                            })
                            .into_iter()
                            .map(|pid| Term::Tuple(vec![atom("process"), Term::Pid(pid)]))
                            .collect()
                    });
                    Term::Tuple(vec![item.clone(), Term::List(monitors)])
                }
                Term::Atom(a) if a.as_str() == "locking" => Term::Tuple(vec![
                    item.clone(),
                    atom(if port_locking(self, id) {
                        "port_level"
                    } else {
                        "driver_level"
                    }),
                ]),
                _ => Term::Tuple(vec![item.clone(), Term::List(vec![])]),
            }))
    }

    /// `erlang:port_info(Port)`: `undefined` for a closed port, else BEAM's list of items.
    pub fn port_info(&self, id: &drv_term::Port) -> Term {
        let Ok(port) = self.port(id) else {
            return atom("undefined");
        };
        let owner = Term::Pid(*port.owner.pid());
        // A closing port has already dropped its links.
        let links = if port.queue.is_closing() {
            vec![]
        } else {
            port.state
                .lock()
                .links
                .iter()
                .map(|l| Term::Pid(*l.pid()))
                .collect()
        };
        let os_pid = port
            .state
            .lock()
            .os_pid()
            .map_or(atom("undefined"), |p| Term::Int(p as i64));
        // An isolated driver's port counts in its host.
        let (input, output) = crate::isolate::port_counts(&port)
            .map_or_else(|| port.bytes.get(), |(input, output, _)| (input, output));
        Term::List(vec![
            Term::Tuple(vec![atom("name"), crate::erl_ddll::string_term(&port.name)]),
            Term::Tuple(vec![atom("links"), Term::List(links)]),
            Term::Tuple(vec![
                atom("id"),
                Term::Int((port.handle & 0xffff_ffff) as i64),
            ]),
            Term::Tuple(vec![atom("connected"), owner]),
            Term::Tuple(vec![atom("input"), Term::from(input)]),
            Term::Tuple(vec![atom("output"), Term::from(output)]),
            Term::Tuple(vec![atom("os_pid"), os_pid]),
        ])
    }
}

fn port_locking(rt: &Runtime, id: &drv_term::Port) -> bool {
    rt.port(id)
        .map(|p| p.driver.driver.flags() & ERL_DRV_FLAG_USE_PORT_LOCKING != 0)
        .unwrap_or(false)
}
