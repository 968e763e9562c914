//! Signals from processes to a port: `Port ! Message` (`erlang:send/2,3`) and
//! `erlang:port_connect/2`.

use std::sync::Arc;

use drv_term::{Pid, Term};

use crate::error::Exception;
use crate::options::CommandOptions;
use crate::port::PortCell;
use crate::process::Process;
use crate::runtime::{atom, Runtime};

impl Runtime {
    /// `Port ! Message` from `sender`, as BEAM takes it: `{Connected, {command, Data}}` is a
    /// command (waiting while the port is busy), `{Connected, close}` closes the port and
    /// answers `{Port, closed}` to the connected process, `{Connected, {connect, Pid}}` connects
    /// `Pid` (the old connected process gets `{Port, connected}`; links do not change). Any
    /// sender may send these, naming the connected process. Anything else — another pid, bad
    /// data, another shape — sends the connected process the exit signal `badsig` and the port
    /// lives on. A message to a closed port is dropped.
    pub fn port_message(
        &self,
        sender: &Pid,
        id: &drv_term::Port,
        message: &Term,
    ) -> Result<(), Exception> {
        self.port_send(sender, id, message, false).map(|_| ())
    }

    /// `erlang:send(Port, Message, Options)`: as [`Runtime::port_message`]; with `nosuspend`,
    /// a command to a busy port is dropped and `false` returned (`erlang:send/3` answers
    /// `nosuspend`).
    pub fn port_send(
        &self,
        sender: &Pid,
        id: &drv_term::Port,
        message: &Term,
        nosuspend: bool,
    ) -> Result<bool, Exception> {
        let _ = sender;
        let _settle = self.settle_at_end();
        let Ok(port) = self.port(id) else {
            // Sending to a dead port is silently dropped, as in Erlang.
            return Ok(true);
        };
        if port.queue.is_closing() {
            // So is sending to a port closing with data queued.
            return Ok(true);
        }
        let connected = *port.owner.pid();
        let Term::Tuple(items) = message else {
            self.bad_signal(&port);
            return Ok(true);
        };
        match items.as_slice() {
            [Term::Pid(from), Term::Tuple(cmd)]
                if *from == connected && cmd.len() == 2 && cmd[0] == atom("command") =>
            {
                let options = CommandOptions::new().nosuspend(nosuspend);
                // BEAM also logs "Bad value on output port" for data that is not iodata.
                let sent = self.command_term(from, id, &cmd[1], options, |port| {
                    self.bad_signal(port);
                    Ok(())
                });
                // A port that closed meanwhile drops the message.
                Ok(sent.unwrap_or(true))
            }
            [Term::Pid(from), close] if *from == connected && *close == atom("close") => {
                // `{Port, closed}` comes when the port terminates, after any flushing.
                self.exit_port(&port, atom("normal"), true, self.process(from));
                Ok(true)
            }
            [Term::Pid(from), Term::Tuple(connect)]
                if *from == connected
                    && matches!(connect.as_slice(), [tag, Term::Pid(_)] if *tag == atom("connect")) =>
            {
                if let [_, Term::Pid(new)] = connect.as_slice() {
                    let old = port.owner.get().clone();
                    self.connect(&port, new);
                    old.deliver(Term::Tuple(vec![port.term(), atom("connected")]));
                }
                Ok(true)
            }
            _ => {
                self.bad_signal(&port);
                Ok(true)
            }
        }
    }

    /// A message the port cannot take: the connected process gets the exit signal `badsig`
    /// (a message if it traps exits, else it exits), and the port lives on, as in BEAM.
    fn bad_signal(&self, port: &Arc<PortCell>) {
        let connected = port.owner.get().clone();
        self.exit_signal(&connected, port.term(), atom("badsig"));
    }

    /// Makes `pid` the port's connected process (its output and `driver_connected` go there).
    /// A pid of no live process is connected all the same, as in BEAM: output to it is lost.
    pub(crate) fn connect(&self, port: &Arc<PortCell>, pid: &Pid) {
        let process = self.process(pid).unwrap_or_else(|| {
            let stranger = Arc::new(Process::new(*pid, None));
            stranger.mark_dead();
            stranger
        });
        // Under the callback lock, as BEAM connects in a port task: no callback sees it change.
        let _serial = port.lock.lock();
        port.owner.set(process);
        crate::isolate::port_connected(port, pid, false);
    }

    /// `erlang:port_connect(Port, Pid)`: `Pid` becomes the connected process and is linked
    /// to the port; the old one stays linked and gets no message. `badarg` for a closed port
    /// or a pid that is not a live process of this runtime.
    pub fn port_connect(&self, id: &drv_term::Port, pid: &Pid) -> Result<(), Exception> {
        let port = self.open_port_of(id)?;
        let process = self
            .process(pid)
            .filter(|p| p.is_alive())
            .ok_or_else(Exception::badarg)?;
        {
            let mut state = port.state.lock();
            if !state.links.iter().any(|l| l.pid() == pid) {
                state.links.push(process.clone());
            }
        }
        let _serial = port.lock.lock();
        port.owner.set(process);
        crate::isolate::port_connected(&port, pid, true);
        Ok(())
    }
}
