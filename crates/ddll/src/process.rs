//! Processes: an id, a mailbox with selective receive, and the exit-trapping flag.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use drv_term::{Pid, Term};
use parking_lot::{Condvar, Mutex};

/// A process of the runtime: something that owns ports, loads drivers and receives messages.
#[derive(Debug)]
pub struct Process {
    pid: Pid,
    name: Option<String>,
    mailbox: Mutex<VecDeque<Term>>,
    arrived: Condvar,
    alive: AtomicBool,
    trap_exit: AtomicBool,
}

impl Process {
    pub(crate) fn new(pid: Pid, name: Option<String>) -> Process {
        Process {
            pid,
            name,
            mailbox: Mutex::new(VecDeque::new()),
            arrived: Condvar::new(),
            alive: AtomicBool::new(true),
            trap_exit: AtomicBool::new(true),
        }
    }

    /// The process id.
    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// The name it was spawned with, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the process is alive.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub(crate) fn mark_dead(&self) -> bool {
        let was = self.alive.swap(false, Ordering::AcqRel);
        self.mailbox.lock().clear();
        was
    }

    /// Whether exit signals arrive as `{'EXIT', From, Reason}` messages (the default here).
    pub fn traps_exits(&self) -> bool {
        self.trap_exit.load(Ordering::Acquire)
    }

    /// Sets `process_flag(trap_exit, On)`.
    pub fn set_trap_exit(&self, on: bool) {
        self.trap_exit.store(on, Ordering::Release);
    }

    /// Appends a message (dropped if the process is dead, as in Erlang).
    pub(crate) fn deliver(&self, message: Term) {
        if !self.is_alive() {
            return;
        }
        self.mailbox.lock().push_back(message);
        self.arrived.notify_one();
    }

    /// The next message, waiting up to `timeout` (`None`: forever).
    pub fn receive(&self, timeout: Option<Duration>) -> Option<Term> {
        self.receive_matching(timeout, |_| true)
    }

    /// The first message for which `matches` holds, waiting up to `timeout`; other messages
    /// stay queued in order (Erlang's selective receive).
    pub fn receive_matching(
        &self,
        timeout: Option<Duration>,
        mut matches: impl FnMut(&Term) -> bool,
    ) -> Option<Term> {
        let mut mailbox = self.mailbox.lock();
        if let Some(i) = mailbox.iter().position(&mut matches) {
            return mailbox.remove(i);
        }
        // Only a receive that has to wait reads the clock.
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(i) = mailbox.iter().position(&mut matches) {
                return mailbox.remove(i);
            }
            match deadline {
                None => self.arrived.wait(&mut mailbox),
                Some(deadline) => {
                    if self.arrived.wait_until(&mut mailbox, deadline).timed_out()
                        && !mailbox.iter().any(&mut matches)
                    {
                        return None;
                    }
                }
            }
        }
    }

    /// How many messages are queued.
    pub fn message_count(&self) -> usize {
        self.mailbox.lock().len()
    }
}
