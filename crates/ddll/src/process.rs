//! Processes: an id, a mailbox with selective receive, and the exit-trapping flag.
//!
//! The mailbox is split as BEAM splits it. Senders append to the *inbox* under a spin lock
//! held for a few instructions. A receiver whose first inbox message matches takes it there
//! (one lock, the usual case); otherwise it moves the inbox to its *private* queue and scans
//! that without holding up senders (selective receive over a long mailbox). Messages in the
//! private queue are all older than those in the inbox. A sender wakes receivers only when one
//! is parked.
//!
//! A message is a [`Message`]: a handle on a term the runtime made or on the one buffer a
//! driver's output built (`driver_output*`, `erl_drv_output_term` and friends: as BEAM links a
//! driver's heap fragment to the mailbox). Receiving hands the handle over as it is: reading
//! it goes through a borrowed view ([`Message::view`], a [`FlatRef`]) and an owned [`Term`] is
//! made only on demand ([`Message::into_term`]), so taking and dropping a large term costs no
//! tree.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use drv_term::{Atom, DataPiece, FlatLog, FlatRef, FlatTerm, LoggedSpec, Pid, Port, Term};

use crate::spin::SpinMutex;
use crate::sync::{AtomicBool, Mutex, Ordering, Thread};

/// A received message: a handle on the term, cheap to take and to drop. Read it through
/// [`Message::view`] (pattern helpers such as [`FlatRef::tuple`], [`FlatRef::binary`]); print it
/// (`Display`, Erlang syntax); make an owned [`Term`] of it when one is needed
/// ([`Message::into_term`]). Equal to a [`Term`] when the term is (`=:=`).
///
/// The variants are the two forms a term arrives in; the methods read both alike, so code
/// that receives need not match on them. (An enum rather than a struct around one: a wrapped
/// enum was copied through the stack on send and receive, stalling on the stores that had just
/// made it; measured 46 to 53 ns per `erl_drv_output_term`, 60 to 70 ns per term received.)
#[derive(Clone)]
pub enum Message {
    /// A term the runtime made (exit signals, replies, notifications).
    Term(Term),
    /// A term a driver sent, in the one-buffer form it was built in.
    Flat(FlatTerm),
}

impl Message {
    /// The term, for reading without copying it.
    #[inline]
    pub fn view(&self) -> FlatRef<'_> {
        match self {
            Message::Term(term) => FlatRef::of_term(term),
            Message::Flat(flat) => flat.root(),
        }
    }

    /// The term as an owned [`Term`] (a tree: built here for a driver's term).
    pub fn into_term(self) -> Term {
        match self {
            Message::Term(term) => term,
            Message::Flat(flat) => flat.into_term(),
        }
    }

    /// An owned [`Term`] copy of the term.
    pub fn to_term(&self) -> Term {
        match self {
            Message::Term(term) => term.clone(),
            Message::Flat(flat) => flat.to_term(),
        }
    }

    /// The one-buffer form of the term (for a host that copies messages into a heap of its
    /// own): the driver's buffer as it is, or one built from a runtime-made term.
    pub fn into_flat(self) -> FlatTerm {
        match self {
            Message::Term(term) => FlatTerm::from_term(&term),
            Message::Flat(flat) => flat,
        }
    }

    /// The external term format of the term (`term_to_binary`).
    pub fn encode(&self) -> Vec<u8> {
        drv_term::encode(self.view())
    }
}

impl From<Term> for Message {
    #[inline]
    fn from(term: Term) -> Message {
        Message::Term(term)
    }
}

impl From<FlatTerm> for Message {
    #[inline]
    fn from(flat: FlatTerm) -> Message {
        Message::Flat(flat)
    }
}

impl From<Message> for Term {
    fn from(message: Message) -> Term {
        message.into_term()
    }
}

#[cfg(feature = "eetf")]
impl TryFrom<&Message> for drv_term::eetf::Term {
    type Error = drv_term::EetfError;

    /// The message as an `eetf` term (feature `eetf`).
    fn try_from(message: &Message) -> Result<drv_term::eetf::Term, drv_term::EetfError> {
        drv_term::eetf::Term::try_from(message.view())
    }
}

impl PartialEq<Term> for Message {
    /// Exact equality (`=:=`).
    fn eq(&self, other: &Term) -> bool {
        match self {
            Message::Term(term) => term == other,
            Message::Flat(flat) => flat == other,
        }
    }
}

impl PartialEq<Message> for Term {
    fn eq(&self, other: &Message) -> bool {
        other == self
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        match other {
            Message::Term(term) => self == term,
            Message::Flat(flat) => *self == flat.to_term(),
        }
    }
}

impl fmt::Display for Message {
    /// The term as Erlang prints it (`~0p`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message({self})")
    }
}

/// A process of the runtime: something that owns ports, loads drivers and receives messages.
#[derive(Debug)]
pub struct Process {
    pid: Pid,
    name: Option<String>,
    inbox: SpinMutex<Inbox>,
    /// Messages moved out of the inbox by a receiver that found no match among them yet.
    /// Lock order: `private`, then `inbox`.
    private: Mutex<VecDeque<Message>>,
    alive: AtomicBool,
    /// Whether a backlog was queued (a full block of messages, [`MessageQueue::BLOCK`]) when
    /// the last message was, until a take empties the queue: a hint (read without the lock)
    /// that data output may go to a log.
    backlog: AtomicBool,
    /// Whether a deep backlog was queued ([`DEEP_BACKLOG`] messages), until a take empties the
    /// queue: a hint that drivers' terms may be built straight into a log (counted for term
    /// output: [`drv_abi::term_log_receiver_added`]). Changed under the inbox lock.
    deep_backlog: AtomicBool,
    trap_exit: AtomicBool,
    /// Called after each message is queued (see [`Runtime::spawn_with_arrival_hook`]).
    ///
    /// [`Runtime::spawn_with_arrival_hook`]: crate::Runtime::spawn_with_arrival_hook
    arrival_hook: Option<ArrivalHook>,
    /// Set for a mirror in an isolated driver's host (`isolate/child.rs`), to the number of
    /// the parent's process it stands for: its binary data output is recorded as the host's
    /// reply carries it, addressed to that process (see [`Process::record_output`]).
    records_outputs_for: Option<u64>,
}

/// Messages queued from which a mailbox holds a deep backlog: past the blocks after which
/// drivers' terms go to logs ([`MessageQueue::TERMS_LOGGED_AFTER`]).
const DEEP_BACKLOG: usize = MessageQueue::BLOCK * (MessageQueue::TERMS_LOGGED_AFTER + 1);

/// Wakes `parked` receivers.
#[cold]
#[inline(never)]
fn wake(parked: Vec<Thread>) {
    for receiver in parked {
        receiver.unpark();
    }
}

/// What a process's host runs on the sending thread when a message arrives.
pub(crate) struct ArrivalHook(pub(crate) Box<dyn Fn() + Send + Sync>);

impl fmt::Debug for ArrivalHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArrivalHook")
    }
}

/// What senders touch.
#[derive(Debug, Default)]
struct Inbox {
    messages: MessageQueue,
    /// Whether the private queue holds messages (older than these): then the first inbox
    /// message is not the oldest, and receivers go through the private queue. Changed with
    /// both locks held, so either lock is enough to read it.
    private_in_use: bool,
    /// Receivers parked until a message arrives.
    parked: Vec<Thread>,
    /// Data output recorded in place of its messages (see [`Process::record_output`]), each
    /// older than every message in `messages`.
    outputs: Vec<u8>,
}

impl Inbox {
    /// The receivers parked until a message arrives (for a sender to wake).
    #[inline]
    fn take_parked(&mut self) -> Vec<Thread> {
        if self.parked.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut self.parked)
        }
    }
}

/// Messages in arrival order, in blocks of up to [`MessageQueue::BLOCK`]: appending never
/// moves what is queued (a `VecDeque` doubles and copies, and touches fresh memory twice the
/// size of a backlog), and a short queue takes no more than a `VecDeque` would. The oldest
/// block is held inline, so that the usual take (a short queue) reads no block list. Behind a
/// full block, binary data output and drivers' terms are kept in [`FlatLog`]s (their bytes and
/// nothing else); a take that reaches a log takes its oldest message off it in place.
#[derive(Debug, Default)]
struct MessageQueue {
    /// The oldest messages; empty only when the queue is, or when the oldest are in the data
    /// log at the front of `later`.
    first: VecDeque<Message>,
    /// Full blocks and the newest one, none empty.
    later: VecDeque<Block>,
    /// Emptied blocks, for the next ones: a backlog that comes and goes allocates none (as a
    /// `VecDeque` keeps its buffer; a large block's allocation would also make malloc
    /// consolidate its small free chunks every time).
    spare: Vec<VecDeque<Message>>,
    len: usize,
}

/// Queued messages after the first block.
#[derive(Debug)]
enum Block {
    Messages(VecDeque<Message>),
    Log(FlatLog),
}

impl MessageQueue {
    /// Messages per block (40 KiB of them; 4 in unit tests, so that their short cases cross
    /// blocks and meet logs).
    const BLOCK: usize = if cfg!(test) { 4 } else { 1024 };

    /// Full blocks after which drivers' terms are copied into logs (16,384 messages queued).
    /// Port data goes to a log after one block: it is written there directly. A term is
    /// built first, so a log costs it a copy, and taking it a split of the log's shared
    /// buffer: a burst taken soon after is cheaper in blocks, where its buffers are the ones
    /// malloc recycled from the last burst (`cargo xtask term-bench`). A deep backlog is
    /// cheaper in logs: no fresh heap memory faulted in a page at a time, and no slot
    /// (`cargo xtask backlog-bench`'s `output_term`; figures in docs/status.md).
    const TERMS_LOGGED_AFTER: usize = if cfg!(test) { 2 } else { 16 };

    #[inline]
    fn push_back(&mut self, message: Message) {
        match self.later.back_mut() {
            None if self.first.len() < Self::BLOCK => self.first.push_back(message),
            Some(Block::Messages(last)) if last.len() < Self::BLOCK => last.push_back(message),
            _ => self.push_behind_block(message),
        }
        self.len += 1;
    }

    /// Appends `message` behind a full block or a log (a backlog). A driver's term that a
    /// log holds (see [`FlatLog::push`]) is copied into the log at the end, or into a new one
    /// behind a deep backlog ([`MessageQueue::TERMS_LOGGED_AFTER`]); any other message
    /// starts a block.
    #[cold]
    #[inline(never)]
    fn push_behind_block(&mut self, message: Message) {
        let Message::Flat(term) = &message else {
            return self.push_block(message);
        };
        if !FlatLog::holds(term) {
            return self.push_block(message);
        }
        let deep = self.later.len() >= Self::TERMS_LOGGED_AFTER;
        let room = match self.later.back_mut() {
            Some(Block::Log(log)) => {
                if log.push(term) {
                    return;
                }
                // Full, or being taken from: the run goes on in a new log, as large as this
                // one grew.
                log.capacity()
            }
            _ if deep => 0,
            _ => return self.push_block(message),
        };
        let mut log = FlatLog::with_capacity(room);
        if log.push(term) {
            self.later.push_back(Block::Log(log));
        } else {
            self.push_block(message);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_block(&mut self, message: Message) {
        let mut block = self
            .spare
            .pop()
            .unwrap_or_else(|| VecDeque::with_capacity(Self::BLOCK));
        block.push_back(message);
        self.later.push_back(Block::Messages(block));
    }

    /// Appends a driver's term that `write` builds into a log ([`FlatLog::push_spec`]): into
    /// the log at the end, or a new one behind a deep backlog
    /// ([`MessageQueue::TERMS_LOGGED_AFTER`]), as [`MessageQueue::push_behind_block`] would
    /// copy the term built; whether it did.
    fn log_term(&mut self, write: &mut dyn FnMut(&mut FlatLog) -> LoggedSpec) -> bool {
        let deep = self.later.len() >= Self::TERMS_LOGGED_AFTER;
        let room = match self.later.back_mut() {
            Some(Block::Log(log)) => match write(log) {
                LoggedSpec::Logged => {
                    self.len += 1;
                    return true;
                }
                // Full, or being taken from: as `push_behind_block`.
                LoggedSpec::NoRoom => log.capacity(),
                LoggedSpec::Unfit => return false,
            },
            Some(Block::Messages(last)) if deep && last.len() >= Self::BLOCK => 0,
            _ => return false,
        };
        let mut log = FlatLog::with_capacity(room);
        if write(&mut log) != LoggedSpec::Logged {
            return false;
        }
        self.later.push_back(Block::Log(log));
        self.len += 1;
        true
    }

    /// Appends `port`'s binary data output `{Port, {Tag, Data}}` to a log, when the
    /// log's form holds it and the queue's last block is a log or a full block of messages
    /// (a backlog: a short queue's receiver is likely to take its messages soon, and they
    /// are made at once, in the thread's arena, where memory is reused as they go). A log is
    /// started only after a full block, so that messages and data output in turns fill blocks
    /// rather than start a block and a log each. Whether it did.
    #[inline]
    fn push_data(
        &mut self,
        port: Port,
        tag: Atom,
        header: &[u8],
        pieces: &[DataPiece<'_>],
    ) -> bool {
        // `Some(room)`: a new log is started, with that room.
        let new_log = match self.later.back_mut() {
            Some(Block::Log(log)) => {
                if log.push_port_data(port, tag, header, pieces) {
                    self.len += 1;
                    return true;
                }
                // Full, or being taken from: the run goes on in a new log, as large as this
                // one grew (a long backlog's logs are all of the largest size).
                Some(log.capacity())
            }
            Some(Block::Messages(last)) => (last.len() >= Self::BLOCK).then_some(0),
            None => (self.first.len() >= Self::BLOCK).then_some(0),
        };
        new_log.is_some_and(|room| self.push_log(room, port, tag, header, pieces))
    }

    /// A new log with `room` for this output (the last block is not one, or it is
    /// full), if the log's form holds it.
    #[cold]
    #[inline(never)]
    fn push_log(
        &mut self,
        room: usize,
        port: Port,
        tag: Atom,
        header: &[u8],
        pieces: &[DataPiece<'_>],
    ) -> bool {
        let mut log = FlatLog::with_capacity(room);
        if !log.push_port_data(port, tag, header, pieces) {
            return false;
        }
        self.later.push_back(Block::Log(log));
        self.len += 1;
        true
    }

    /// The oldest message. One in a log is made a message of its own first (a matcher
    /// reads a `Message`).
    #[inline]
    fn front(&mut self) -> Option<&Message> {
        if self.first.is_empty() {
            if let Some(message) = self.pop_logged() {
                self.first.push_back(message);
            }
        }
        self.first.front()
    }

    #[inline]
    fn pop_front(&mut self) -> Option<Message> {
        let Some(message) = self.first.pop_front() else {
            let message = self.pop_logged()?;
            self.len -= 1;
            return Some(message);
        };
        self.len -= 1;
        if self.first.is_empty() && !self.later.is_empty() {
            self.next_block();
        }
        Some(message)
    }

    /// The oldest message of the log at the front (the first block being empty), taken
    /// off it in place: a logged backlog is not moved into a block to be taken.
    #[inline]
    fn pop_logged(&mut self) -> Option<Message> {
        let Some(Block::Log(log)) = self.later.front_mut() else {
            return None;
        };
        let message = log.pop();
        if log.is_empty() {
            self.later.pop_front();
            self.next_block();
        }
        message.map(Message::Flat)
    }

    /// The next block of messages becomes the first (the emptied one is kept for reuse); a
    /// log stays where it is, read in place.
    #[cold]
    #[inline(never)]
    fn next_block(&mut self) {
        match self.later.pop_front() {
            Some(Block::Messages(next)) => {
                let emptied = std::mem::replace(&mut self.first, next);
                if emptied.capacity() >= Self::BLOCK {
                    self.spare.push(emptied);
                }
            }
            Some(log) => self.later.push_front(log),
            None => {}
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        *self = MessageQueue::default();
    }

    /// Appends every message to `to`, in order, leaving this queue empty.
    fn move_to(&mut self, to: &mut VecDeque<Message>) {
        to.reserve(self.len);
        to.append(&mut self.first);
        for block in self.later.drain(..) {
            match block {
                Block::Messages(mut block) => {
                    to.append(&mut block);
                    self.spare.push(block);
                }
                Block::Log(mut log) => {
                    to.extend(std::iter::from_fn(|| log.pop()).map(Message::Flat))
                }
            }
        }
        self.len = 0;
    }
}

/// The room a process that records outputs keeps for them once taken.
const RECORDS_KEPT: usize = 1 << 12;

impl Process {
    pub(crate) fn new(pid: Pid, name: Option<String>) -> Process {
        Process::with_arrival_hook(pid, name, None)
    }

    /// A process whose binary data output is recorded (see [`Process::record_output`]),
    /// addressed to process number `parent`.
    pub(crate) fn recording_outputs(pid: Pid, parent: u64) -> Process {
        let mut process = Process::new(pid, None);
        process.records_outputs_for = Some(parent);
        process
    }

    pub(crate) fn with_arrival_hook(
        pid: Pid,
        name: Option<String>,
        arrival_hook: Option<ArrivalHook>,
    ) -> Process {
        Process {
            pid,
            name,
            inbox: SpinMutex::new(Inbox::default()),
            private: Mutex::new(VecDeque::new()),
            alive: AtomicBool::new(true),
            backlog: AtomicBool::new(false),
            deep_backlog: AtomicBool::new(false),
            trap_exit: AtomicBool::new(true),
            arrival_hook,
            records_outputs_for: None,
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
        let mut private = self.private.lock();
        let mut inbox = self.inbox.lock();
        private.clear();
        inbox.messages.clear();
        self.mark_backlog(false);
        inbox.outputs = Vec::new();
        inbox.private_in_use = false;
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
    #[inline]
    pub(crate) fn deliver(&self, message: impl Into<Message>) {
        self.push(message.into());
    }

    /// Appends `message`. The mailbox lock's atomic instruction waits for the stores that
    /// made the message, so the copy into the mailbox after it does not (see
    /// `TermHost::deliver_term`).
    fn push(&self, message: Message) {
        let parked = {
            let mut inbox = self.inbox.lock();
            // Checked under the lock: `mark_dead` clears the mailbox after clearing the flag,
            // so nothing is left behind in a dead process's mailbox.
            if !self.is_alive() {
                return;
            }
            inbox.messages.push_back(message);
            let queued = inbox.messages.len();
            if queued >= MessageQueue::BLOCK {
                self.mark_backlog(true);
                if queued >= DEEP_BACKLOG {
                    self.mark_deep_backlog(true);
                }
            }
            inbox.take_parked()
        };
        self.announce(parked);
    }

    /// Sets the backlog hint, writing only a change (the line is the receiver's too); clearing
    /// it clears the deep backlog's too. Under the inbox lock.
    #[inline]
    fn mark_backlog(&self, backlog: bool) {
        if self.backlog.load(Ordering::Relaxed) != backlog {
            self.backlog.store(backlog, Ordering::Relaxed);
        }
        if !backlog {
            self.mark_deep_backlog(false);
        }
    }

    /// Sets the deep backlog hint, counting the process for term output
    /// ([`drv_abi::term_log_receiver_added`]). Under the inbox lock, so that a change is counted
    /// once.
    #[inline]
    fn mark_deep_backlog(&self, deep: bool) {
        if self.deep_backlog.load(Ordering::Relaxed) != deep {
            self.deep_backlog.store(deep, Ordering::Relaxed);
            if deep {
                drv_abi::term_log_receiver_added();
            } else {
                drv_abi::term_log_receiver_removed();
            }
        }
    }

    /// Queues a driver's term by building it straight into a log at the end of the mailbox
    /// (`write` builds it into the log it is given: [`FlatLog::push_spec`]), when the mailbox
    /// holds a deep backlog; whether it did. The term is built under the lock, which
    /// [`FlatLog::MAX_SPEC_WORDS`] bounds.
    pub(crate) fn log_term(&self, write: &mut dyn FnMut(&mut FlatLog) -> LoggedSpec) -> bool {
        if !self.deep_backlog.load(Ordering::Relaxed) {
            return false;
        }
        let parked = {
            let mut inbox = self.inbox.lock();
            if !self.is_alive() || !inbox.messages.log_term(write) {
                return false;
            }
            inbox.take_parked()
        };
        self.announce(parked);
        true
    }

    /// A port's data output `{Port, {Tag, Data}}` for this process (see
    /// [`FlatTerm::port_data`]), made a message, or, when messages are queued before it and
    /// it is binary, kept in the mailbox's log (see [`FlatLog`]) until a receive
    /// reaches it. One lock either way: the message is made under it.
    #[inline]
    pub(crate) fn deliver_port_data(
        &self,
        port: Port,
        tag: Atom,
        header: &[u8],
        pieces: &[DataPiece<'_>],
        binary: bool,
    ) {
        // The usual case, an owner that takes its messages as they come: the message is made
        // before the lock (see `push`).
        if !binary || !self.backlog.load(Ordering::Relaxed) {
            let message = FlatTerm::port_data(port, tag, header, pieces, binary);
            return self.push(Message::Flat(message));
        }
        let parked = {
            let mut inbox = self.inbox.lock();
            if !self.is_alive() {
                return;
            }
            if !inbox.messages.push_data(port, tag, header, pieces) {
                let message = FlatTerm::port_data(port, tag, header, pieces, binary);
                inbox.messages.push_back(Message::Flat(message));
            }
            inbox.take_parked()
        };
        self.announce(parked);
    }

    /// Wakes the receivers parked until a message arrived, and runs the arrival hook.
    #[inline]
    fn announce(&self, parked: Vec<Thread>) {
        // Out of line: the usual sender finds no one parked, and iterating even an empty
        // vector costs more than this test.
        if !parked.is_empty() {
            wake(parked);
        }
        if let Some(hook) = &self.arrival_hook {
            (hook.0)();
        }
    }

    /// The next message, waiting up to `timeout` (`None`: forever).
    pub fn receive(&self, timeout: Option<Duration>) -> Option<Message> {
        // Not through `receive_matching`: the view reads the message's buffer (bounds checks
        // the compiler keeps), which taking the oldest message need not cost, and the oldest
        // message in a log is taken off it without being made a `Message` to look at.
        if let Some(message) = self.take_oldest(MessageQueue::pop_front) {
            return Some(message);
        }
        self.wait_for(timeout, &mut |_: &Message| true)
    }

    /// The first message for which `matches` holds, waiting up to `timeout`; other messages
    /// stay queued in order (Erlang's selective receive).
    ///
    /// `matches` may see the oldest message with senders held off (the usual case costs one
    /// lock so): keep it a quick test. Concurrent receivers on one process each take messages
    /// in order, but which of them gets a message that both would accept is unspecified (in
    /// Erlang only the process receives).
    pub fn receive_matching(
        &self,
        timeout: Option<Duration>,
        mut matches: impl FnMut(FlatRef<'_>) -> bool,
    ) -> Option<Message> {
        let matcher = &mut |m: &Message| matches(m.view());
        let first = self.take_oldest(|queue| match queue.front() {
            Some(front) if matcher(front) => queue.pop_front(),
            _ => None,
        });
        if first.is_some() {
            return first;
        }
        self.wait_for(timeout, matcher)
    }

    /// The oldest message as `take` takes it off the inbox (`None`: it did not), when no
    /// receive has left older messages in the private queue: the usual receive, in one lock.
    #[inline]
    fn take_oldest(
        &self,
        take: impl FnOnce(&mut MessageQueue) -> Option<Message>,
    ) -> Option<Message> {
        let mut inbox = self.inbox.lock();
        if inbox.private_in_use {
            return None;
        }
        let message = take(&mut inbox.messages)?;
        if inbox.messages.is_empty() {
            self.mark_backlog(false);
        }
        Some(message)
    }

    /// The first match, when the oldest message is not one: looked for among all, waiting
    /// up to `timeout` for more.
    fn wait_for(
        &self,
        timeout: Option<Duration>,
        matcher: &mut impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        // Reading the clock costs as much as the rest of a receive: only when waiting. A
        // deadline too far to represent is no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            // `None`: no time left; `Some(None)`: no deadline.
            let wait = match deadline {
                None => Some(None),
                Some(deadline) => deadline
                    .checked_duration_since(Instant::now())
                    .filter(|left| !left.is_zero())
                    .map(Some),
            };
            if let Some(message) = self.take_private(matcher, wait.is_some()) {
                return Some(message);
            }
            match wait {
                None => return None,
                Some(None) => crate::sync::park(),
                Some(Some(left)) => crate::sync::park_timeout(left),
            }
            self.unregister_parked();
        }
    }

    /// The first match, looked for in the private queue and then among the messages moved
    /// there from the inbox (again, while messages keep arriving); when there is none and
    /// `park` is set, this thread is registered as parked (under the inbox lock, so a sender
    /// that appends afterwards wakes it).
    fn take_private(
        &self,
        matcher: &mut impl FnMut(&Message) -> bool,
        park: bool,
    ) -> Option<Message> {
        let mut private = self.private.lock();
        // Messages before this index have been scanned by this receive.
        let mut scanned = 0;
        loop {
            if let Some(i) = private.iter().skip(scanned).position(&mut *matcher) {
                let message = private.remove(scanned + i);
                if private.is_empty() {
                    self.inbox.lock().private_in_use = false;
                }
                return message;
            }
            scanned = private.len();
            let mut inbox = self.inbox.lock();
            if inbox.messages.is_empty() {
                if park {
                    inbox.parked.push(crate::sync::current());
                }
                return None;
            }
            // Newer than everything in the private queue, which has no match.
            inbox.messages.move_to(&mut private);
            self.mark_backlog(false);
            inbox.private_in_use = true;
        }
    }

    /// Forgets this thread as parked (woken by a timeout, or spuriously).
    fn unregister_parked(&self) {
        let me = crate::sync::current().id();
        self.inbox.lock().parked.retain(|t| t.id() != me);
    }

    /// A port's binary data output `{Port, {data, Data}}` for this process, recorded instead
    /// of made a message when this process records outputs and nothing is queued before it
    /// (else the message keeps its place among the others): `record` appends the record
    /// (in the form an isolated driver's host replies with) for the parent's process number
    /// it is given, and says whether it did. Whether the output was recorded (or dropped, the
    /// process being dead). [`Process::take_all`] takes the records, the oldest of what is
    /// queued.
    #[inline]
    pub(crate) fn record_output(&self, record: impl FnOnce(&mut Vec<u8>, u64) -> bool) -> bool {
        let Some(to) = self.records_outputs_for else {
            return false;
        };
        let mut inbox = self.inbox.lock();
        if !self.is_alive() {
            return true;
        }
        // (A receiver parked on it learns of a message only: none parks on a mirror.)
        if !inbox.messages.is_empty() || inbox.private_in_use || !inbox.parked.is_empty() {
            return false;
        }
        record(&mut inbox.outputs, to)
    }

    /// Takes every message queued now, oldest first, appending them to `out` (and the
    /// output records, older than them, to `outputs`: see [`Process::record_output`]): one
    /// lock when no receive has left messages in the private queue (taking them one by one
    /// costs a count and a lock each).
    pub(crate) fn take_all(&self, outputs: &mut Vec<u8>, out: &mut Vec<Message>) {
        {
            let mut inbox = self.inbox.lock();
            if outputs.is_empty() && outputs.capacity() > 0 {
                // Exchanged, not copied: the caller's empty buffer (kept from one take to
                // the next, with room) takes the next records.
                std::mem::swap(outputs, &mut inbox.outputs);
            } else {
                outputs.extend_from_slice(&inbox.outputs);
                inbox.outputs.clear();
            }
            // Kept for the next records, unless one large output made it large.
            inbox.outputs.shrink_to(RECORDS_KEPT);
            if !inbox.private_in_use {
                out.reserve(inbox.messages.len());
                while let Some(message) = inbox.messages.pop_front() {
                    out.push(message);
                }
                self.mark_backlog(false);
                return;
            }
        }
        // Lock order: `private`, then `inbox`; the private queue's messages are the older
        // (output records, the oldest of all, are taken above: none is made meanwhile, with
        // messages queued).
        let mut private = self.private.lock();
        let mut inbox = self.inbox.lock();
        out.extend(private.drain(..));
        while let Some(message) = inbox.messages.pop_front() {
            out.push(message);
        }
        self.mark_backlog(false);
        inbox.private_in_use = false;
    }

    /// How many messages are queued.
    pub fn message_count(&self) -> usize {
        let private = self.private.lock();
        private.len() + self.inbox.lock().messages.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use drv_term::{Atom, DataPiece, FlatRef, FlatTerm, Pid, Port, Term};

    use super::{Message, Process};

    /// One step on a mailbox.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// Deliver the integer (odd ones in the flat form a driver's term output has, so that
        /// receives meet both forms).
        Send(i64),
        /// Port 3's binary data output of the byte, as the runtime's output makes it (kept in
        /// a log behind other messages); read as 100 + the byte.
        Output(u8),
        /// For each `i` in `0..n`: `Send(i)` then `Output(i % 256)`.
        Turns(u16),
        /// For each `i` in `0..n`: `Output(i % 256)`.
        Outputs(u16),
        /// Receive without waiting: the first message read as the integer (any message for
        /// `None`), expecting the given result.
        Take(Option<i64>, Option<i64>),
        /// The number of queued messages.
        Count(usize),
        /// Take every queued message at once, expecting these, in order.
        TakeAll(&'static [i64]),
        /// Take messages one by one, expecting `Turns(n)`'s, in order.
        TakeTurns(u16),
        /// The same, expecting `Outputs(n)`'s.
        TakeOutputs(u16),
    }
    use Step::{Count, Output, Outputs, Send, Take, TakeAll, TakeOutputs, TakeTurns, Turns};

    /// A message sent by a step, read back: the integer, or 100 + the byte of port data.
    fn value(m: FlatRef<'_>) -> i64 {
        if let Some(i) = m.int() {
            return i;
        }
        let mut items = m.tuple().expect("an integer or port data");
        assert_eq!(items.next().and_then(|p| p.port()), Some(Port::local(3)));
        let mut data = items.next().and_then(|d| d.tuple()).expect("{data, Bytes}");
        assert!(data.next().is_some_and(|t| t.is_atom("data")));
        let bytes = data.next().and_then(|b| b.binary()).expect("a binary");
        100 + i64::from(bytes[0])
    }

    /// What `Runtime::output` does with a binary port's data output.
    fn output(process: &Process, byte: u8) {
        let (port, tag, data) = (Port::local(3), Atom::new("data"), [byte]);
        process.deliver_port_data(port, tag, &[], &[DataPiece::Borrowed(&data)], true);
    }

    fn run(steps: &[Step]) {
        let process = Process::new(Pid::local(1), None);
        let send = |i: i64| match i % 2 {
            1 => process.deliver(FlatTerm::from_term(&Term::Int(i))),
            _ => process.deliver(Term::Int(i)),
        };
        for (n, step) in steps.iter().enumerate() {
            match *step {
                Send(i) => send(i),
                Output(byte) => output(&process, byte),
                Turns(count) => {
                    for i in 0..count {
                        send(i64::from(i));
                        output(&process, i as u8);
                    }
                }
                Outputs(count) => (0..count).for_each(|i| output(&process, i as u8)),
                Take(wanted, expected) => {
                    let got = process
                        .receive_matching(Some(Duration::ZERO), |m| {
                            wanted.is_none_or(|w| value(m) == w)
                        })
                        .map(|m| value(m.view()));
                    assert_eq!(got, expected, "step {n} of {steps:?}");
                }
                Count(expected) => {
                    assert_eq!(process.message_count(), expected, "step {n} of {steps:?}")
                }
                TakeAll(expected) => {
                    let mut taken = Vec::new();
                    process.take_all(&mut Vec::new(), &mut taken);
                    let taken: Vec<i64> = taken.iter().map(|m| value(m.view())).collect();
                    assert_eq!(taken, expected, "step {n} of {steps:?}");
                }
                TakeTurns(_) | TakeOutputs(_) => {
                    let expected: Vec<i64> = match *step {
                        TakeTurns(count) => (0..i64::from(count))
                            .flat_map(|i| [i, 100 + i % 256])
                            .collect(),
                        TakeOutputs(count) => {
                            (0..i64::from(count)).map(|i| 100 + i % 256).collect()
                        }
                        _ => unreachable!("a take of turns or outputs"),
                    };
                    let taken: Vec<i64> =
                        std::iter::from_fn(|| process.receive(Some(Duration::ZERO)))
                            .take(expected.len())
                            .map(|m| value(m.view()))
                            .collect();
                    assert!(taken == expected, "step {n} of {steps:?}");
                }
            }
        }
    }

    #[test]
    fn selective_receive_keeps_the_others_in_order() {
        let cases: &[&[Step]] = &[
            &[Take(None, None), Count(0)],
            &[
                Send(1),
                Send(2),
                Count(2),
                Take(None, Some(1)),
                Take(None, Some(2)),
            ],
            // A match behind others: they stay, in order.
            &[
                Send(1),
                Send(2),
                Send(3),
                Take(Some(2), Some(2)),
                Count(2),
                Take(None, Some(1)),
                Take(None, Some(3)),
                Take(None, None),
            ],
            // No match: nothing is lost; later arrivals queue behind the scanned ones.
            &[
                Send(1),
                Send(2),
                Take(Some(9), None),
                Count(2),
                Send(3),
                Send(4),
                Count(4),
                Take(Some(4), Some(4)),
                Take(None, Some(1)),
                Take(Some(3), Some(3)),
                Send(5),
                Take(None, Some(2)),
                Take(None, Some(5)),
                Count(0),
            ],
            // The oldest of equal messages comes first, from either queue.
            &[
                Send(7),
                Take(Some(8), None),
                Send(7),
                Take(Some(7), Some(7)),
                Count(1),
                Take(Some(7), Some(7)),
                Count(0),
            ],
            // Taking all: the inbox alone, then with older messages in the private queue.
            &[TakeAll(&[]), Send(1), Send(2), TakeAll(&[1, 2]), Count(0)],
            &[
                Send(1),
                Send(2),
                Take(Some(9), None),
                Send(3),
                TakeAll(&[1, 2, 3]),
                Count(0),
                Send(4),
                Take(None, Some(4)),
                TakeAll(&[]),
            ],
            // Data output behind other messages (kept in a log) keeps its place.
            &[
                Output(1),
                Output(2),
                Send(3),
                Output(4),
                Output(5),
                Count(5),
                Take(None, Some(101)),
                Take(Some(105), Some(105)),
                Take(None, Some(102)),
                Output(6),
                TakeAll(&[3, 104, 106]),
                Count(0),
            ],
            &[
                Send(2),
                Output(7),
                Output(8),
                Send(4),
                Output(9),
                TakeAll(&[2, 107, 108, 4, 109]),
            ],
            // Over many blocks and logs, taken one by one or all at once.
            &[Turns(700), Count(1400), TakeTurns(700)],
            &[Turns(700), Take(Some(699), Some(699)), Count(1399)],
            &[
                Send(1),
                Outputs(3000),
                Send(7),
                Count(3002),
                Take(None, Some(1)),
                TakeOutputs(3000),
                Take(None, Some(7)),
                Take(None, None),
            ],
        ];
        for steps in cases {
            run(steps);
        }
    }

    #[test]
    fn messages_of_either_form_read_alike() {
        let process = Process::new(Pid::local(1), None);
        let tcp = Term::Tuple(vec![Term::atom("tcp"), Term::Int(1)]);
        let now = Some(Duration::ZERO);
        process.deliver(FlatTerm::from_term(&tcp));
        process.deliver(tcp.clone());
        for _ in 0..2 {
            let message = process.receive(now).expect("sent");
            let mut items = message.view().tuple().expect("a tuple");
            assert!(items.next().is_some_and(|t| t.is_atom("tcp")));
            assert_eq!(items.next().and_then(|i| i.int()), Some(1));
            assert_eq!(message.to_string(), "{tcp,1}");
            assert_eq!(message, tcp);
            assert_eq!(message.encode(), drv_term::encode(&tcp));
            assert_eq!(message.into_term(), tcp);
        }
        // A selective receive reads the messages it skips in place; they stay, in order.
        process.deliver(FlatTerm::from_term(&tcp));
        process.deliver(Term::Int(2));
        process.deliver(FlatTerm::from_term(&Term::Int(3)));
        assert_eq!(
            process.receive_matching(now, |m| m.int() == Some(3)),
            Some(Message::from(Term::Int(3)))
        );
        assert_eq!(process.receive(now).map(Message::into_term), Some(tcp));
        assert_eq!(
            process.receive(now).map(Message::into_term),
            Some(Term::Int(2))
        );
        assert_eq!(process.receive(now), None);
    }

    /// What reaches a mirror that records its data output, in turns with messages.
    #[derive(Debug, Clone, Copy)]
    enum Arrival {
        /// Data output of byte `n`: recorded, or else queued as a message (the integer).
        Output(u8),
        /// A message (the integer).
        Message(u8),
    }

    /// The record of port 3's output of `data`, as the host's output path makes it.
    fn record(data: &[u8]) -> impl FnOnce(&mut Vec<u8>, u64) -> bool + '_ {
        |records, to| crate::isolate::frame::push_output(records, to, 3, data).is_some()
    }

    #[test]
    fn recorded_output_keeps_its_place_among_messages() {
        use Arrival::{Message as M, Output as O};
        // Each case: the arrivals, then how many of them were recorded. Taken all at once,
        // they come in the order they arrived.
        let cases: &[(&[Arrival], usize)] = &[
            (&[O(1), O(2), O(3)], 3),
            (&[O(1), M(2), O(3)], 1),
            (&[M(1), O(2), O(3)], 0),
            (&[M(1), M(2)], 0),
            (&[], 0),
        ];
        for &(arrivals, recorded) in cases {
            let process = Process::recording_outputs(Pid::local(1), 7);
            let mut made = 0;
            for arrival in arrivals {
                match *arrival {
                    Arrival::Output(n) if process.record_output(record(&[n])) => made += 1,
                    Arrival::Output(n) | Arrival::Message(n) => {
                        process.deliver(Term::Int(i64::from(n)))
                    }
                }
            }
            assert_eq!(made, recorded, "{arrivals:?}");
            let (mut outputs, mut messages) = (Vec::new(), Vec::new());
            process.take_all(&mut outputs, &mut messages);
            let records = crate::isolate::frame::outputs(&outputs).expect("whole records");
            let mut taken: Vec<u8> = records
                .map(|o| {
                    assert_eq!((o.to, o.port), (7, 3));
                    o.data[0]
                })
                .collect();
            taken.extend(
                messages
                    .iter()
                    .map(|m| m.view().int().expect("an integer") as u8),
            );
            let expected: Vec<u8> = arrivals
                .iter()
                .map(|(Arrival::Output(n) | Arrival::Message(n))| *n)
                .collect();
            assert_eq!(taken, expected, "{arrivals:?}");
        }
        // A process that does not record, or a dead one, gets none.
        let plain = Process::new(Pid::local(2), None);
        assert!(!plain.record_output(record(b"x")));
        let dead = Process::recording_outputs(Pid::local(3), 7);
        dead.mark_dead();
        assert!(
            dead.record_output(record(b"x")),
            "dropped, as a message would be"
        );
        let mut outputs = Vec::new();
        dead.take_all(&mut outputs, &mut Vec::new());
        assert!(outputs.is_empty());
    }

    /// Messages and data output in turns fill blocks: they do not start a block and a log
    /// each (a 40 KiB block per message); a run of output after a full block goes to a log.
    #[test]
    fn messages_and_output_in_turns_fill_blocks() {
        let process = Process::new(Pid::local(1), None);
        for i in 0..1000u16 {
            process.deliver(Term::Int(i64::from(i)));
            output(&process, i as u8);
        }
        let blocks = |process: &Process| process.inbox.lock().messages.later.len();
        let block = super::MessageQueue::BLOCK;
        assert!(
            blocks(&process) <= 2000 / block,
            "{} blocks",
            blocks(&process)
        );
        let before = blocks(&process);
        (0..1000u16).for_each(|i| output(&process, i as u8));
        assert_eq!(
            blocks(&process),
            before + 1,
            "a run of output goes to one log"
        );
        assert_eq!(process.message_count(), 3000);
    }

    /// Drivers' terms go to logs only behind a deep backlog, and those with kept terms
    /// (here a binary too large to copy) never. Every message comes out once, in order.
    #[test]
    fn terms_are_logged_behind_a_deep_backlog_only() {
        let process = Process::new(Pid::local(1), None);
        let kept = FlatTerm::from_term(&Term::Binary(vec![7; 100].into()));
        let send = |i: usize| match i % 5 {
            4 => process.deliver(kept.clone()),
            _ => process.deliver(FlatTerm::from_term(&Term::Int(i as i64))),
        };
        let logs = || {
            let inbox = process.inbox.lock();
            let blocks = &inbox.messages.later;
            let logged = blocks.iter().filter(|b| matches!(b, super::Block::Log(_)));
            (blocks.len(), logged.count())
        };
        let (block, deep) = (
            super::MessageQueue::BLOCK,
            super::MessageQueue::TERMS_LOGGED_AFTER,
        );
        // The first block and `deep` more: the next term is the first behind a deep backlog.
        let shallow = block * (deep + 1);
        (0..shallow).for_each(send);
        assert_eq!(logs(), (deep, 0), "a shallow queue was logged");
        let n = shallow + 40;
        (shallow..n).for_each(send);
        let (_, logged) = logs();
        assert!(logged > 0, "a deep backlog of terms was not logged");
        let value = |m: &Message| m.view().int().unwrap_or(-1);
        let expected = |i: usize| if i % 5 == 4 { -1 } else { i as i64 };
        let taken: Vec<i64> = std::iter::from_fn(|| process.receive(Some(Duration::ZERO)))
            .map(|m| value(&m))
            .collect();
        assert_eq!(taken, (0..n).map(expected).collect::<Vec<_>>());
    }

    /// Behind a deep backlog, and only there, a spec's term is built straight into a log
    /// (`Process::log_term`), in order with the terms delivered built; not one that keeps a
    /// term beside its records. The hint that offers logs is set by the deep backlog and
    /// cleared by the take that empties the mailbox.
    #[test]
    fn specs_are_built_into_logs_behind_a_deep_backlog_only() {
        use drv_term::tags::{ERL_DRV_INT, ERL_DRV_MAP};
        use std::sync::atomic::Ordering::Relaxed;
        let process = Process::new(Pid::local(2), None);
        let send = |spec: &[drv_term::TermData]| {
            let logged = process.log_term(&mut |log| log.push_spec(spec, &drv_term::NoMemory));
            if !logged {
                let term = FlatTerm::from_spec(spec, &drv_term::NoMemory).expect("a valid spec");
                process.deliver(term);
            }
            logged
        };
        let deep = super::DEEP_BACKLOG;
        let n = deep + 40;
        let logged: Vec<bool> = (0..n).map(|i| send(&[ERL_DRV_INT, i as u64])).collect();
        assert!(
            !logged[..deep].contains(&true),
            "logged before a deep backlog"
        );
        assert!(
            !logged[deep..].contains(&false),
            "not logged behind a deep backlog"
        );
        assert!(process.deep_backlog.load(Relaxed));
        let map = [ERL_DRV_INT, 1, ERL_DRV_INT, 2, ERL_DRV_MAP, 1];
        assert!(!send(&map), "a map was logged");
        let taken: Vec<Term> = std::iter::from_fn(|| process.receive(Some(Duration::ZERO)))
            .map(Term::from)
            .collect();
        let mut expected: Vec<Term> = (0..n as i64).map(Term::Int).collect();
        expected.push(
            FlatTerm::from_spec(&map, &drv_term::NoMemory)
                .expect("a map")
                .to_term(),
        );
        assert_eq!(taken, expected);
        assert!(
            !process.deep_backlog.load(Relaxed),
            "the emptied mailbox is still deep"
        );
    }

    /// A long run of data output fills logs of the largest size: the first grows to it, and
    /// each after it starts there (not from nothing, faulting in and copying its first MiB).
    #[test]
    fn a_long_backlog_fills_logs_of_the_largest_size() {
        let process = Process::new(Pid::local(1), None);
        // The compact form of one byte of data: 24 bytes of head, its length, the byte.
        let logged = 26;
        // A block, two full logs and a short one.
        let per_log = drv_term::FlatLog::MAX_BYTES / logged;
        let n = super::MessageQueue::BLOCK + 2 * per_log + 100;
        (0..n).for_each(|i| output(&process, i as u8));
        let capacities: Vec<usize> = process
            .inbox
            .lock()
            .messages
            .later
            .iter()
            .filter_map(|block| match block {
                super::Block::Log(log) => Some(log.capacity()),
                super::Block::Messages(_) => None,
            })
            .collect();
        assert_eq!(capacities.len(), 3, "{capacities:?}");
        assert!(
            capacities
                .iter()
                .all(|&c| c >= drv_term::FlatLog::MAX_BYTES),
            "{capacities:?}"
        );
        let taken = std::iter::from_fn(|| process.receive(Some(Duration::ZERO))).count();
        assert_eq!(taken, n);
    }

    #[test]
    fn a_backlog_over_many_blocks_keeps_its_order() {
        let process = Process::new(Pid::local(1), None);
        let n = 3 * super::MessageQueue::BLOCK as i64 + 5;
        let now = Some(Duration::ZERO);
        for round in 0..2 {
            for i in 0..n {
                process.deliver(Term::Int(i));
            }
            assert_eq!(process.message_count(), n as usize, "round {round}");
            // Taken from the middle (the inbox moves to the private queue), then in order.
            let middle = n / 2;
            assert_eq!(
                process
                    .receive_matching(now, |m| m.int() == Some(middle))
                    .map(Message::into_term),
                Some(Term::Int(middle))
            );
            let rest: Vec<i64> = std::iter::from_fn(|| process.receive(now))
                .map(|m| m.view().int().expect("an integer"))
                .collect();
            let expected: Vec<i64> = (0..n).filter(|&i| i != middle).collect();
            assert_eq!(rest, expected, "round {round}");
        }
        // Straight through the inbox, without a selective receive.
        for i in 0..n {
            process.deliver(Term::Int(i));
        }
        for i in 0..n {
            assert_eq!(process.receive(now).and_then(|m| m.view().int()), Some(i));
        }
        assert_eq!(process.message_count(), 0);
    }

    #[cfg(feature = "eetf")]
    #[test]
    fn messages_convert_to_eetf_terms() {
        use drv_term::eetf;
        let tcp = Term::Tuple(vec![Term::atom("tcp"), Term::Int(1)]);
        let theirs = eetf::Term::from(eetf::Tuple::from(vec![
            eetf::Term::from(eetf::Atom::from("tcp")),
            eetf::Term::from(eetf::FixInteger::from(1)),
        ]));
        for message in [
            Message::from(tcp.clone()),
            Message::from(FlatTerm::from_term(&tcp)),
        ] {
            assert_eq!(eetf::Term::try_from(&message).expect("converts"), theirs);
        }
    }

    /// The arrival hook runs once per message queued, after it is there to take, and not for
    /// a message a dead process drops.
    #[test]
    fn the_arrival_hook_runs_once_a_message_is_queued() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let process = Arc::new(std::sync::OnceLock::<Arc<Process>>::new());
        let seen = Arc::new(AtomicUsize::new(0));
        let hook = {
            let (process, seen) = (process.clone(), seen.clone());
            super::ArrivalHook(Box::new(move || {
                let queued = process.get().expect("set").message_count();
                seen.fetch_add(1, Ordering::SeqCst);
                assert!(queued > 0, "the hook ran before the message was queued");
            }))
        };
        let me = process
            .get_or_init(|| Arc::new(Process::with_arrival_hook(Pid::local(1), None, Some(hook))));
        me.deliver(Term::Int(1));
        me.deliver(Term::Int(2));
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        assert!(me.mark_dead());
        me.deliver(Term::Int(3));
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    /// A queued message is a slot of a mailbox block: under a backlog its bytes are memory
    /// faulted in per message (issue 16). Five words: a `Term` (a bitstring boxed) or a flat
    /// term's four, the variant in the term's tag.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_message_is_five_words() {
        use std::mem::size_of;
        let sizes = [
            ("Message", size_of::<Message>(), 40),
            ("Term", size_of::<Term>(), 40),
            ("FlatTerm", size_of::<FlatTerm>(), 32),
        ];
        for (name, size, expected) in sizes {
            assert_eq!(size, expected, "{name}");
        }
    }

    #[test]
    fn a_dead_process_gets_no_messages() {
        let process = Process::new(Pid::local(1), None);
        process.deliver(Term::Int(1));
        assert!(process.mark_dead());
        process.deliver(Term::Int(2));
        assert_eq!(process.message_count(), 0);
        assert_eq!(process.receive(Some(Duration::ZERO)), None);
    }

    #[test]
    fn a_parked_receiver_wakes_for_its_match_only() {
        let process = Arc::new(Process::new(Pid::local(1), None));
        let receiver = {
            let process = process.clone();
            std::thread::spawn(move || process.receive_matching(None, |m| m.int() == Some(3)))
        };
        // Whether the receiver parks before or after these arrive, it must take 3 and leave
        // the rest in order.
        for i in 1..=4 {
            std::thread::sleep(Duration::from_millis(2));
            process.deliver(Term::Int(i));
        }
        assert_eq!(
            receiver.join().expect("receiver").map(Message::into_term),
            Some(Term::Int(3))
        );
        let rest: Vec<_> = std::iter::from_fn(|| process.receive(Some(Duration::ZERO)))
            .map(Message::into_term)
            .collect();
        assert_eq!(rest, [1, 2, 4].map(Term::Int));
    }

    #[test]
    fn a_timed_receive_gives_up_and_leaves_no_trace() {
        let process = Process::new(Pid::local(1), None);
        process.deliver(Term::Int(1));
        assert_eq!(
            process.receive_matching(Some(Duration::from_millis(5)), |m| m.int() == Some(2)),
            None
        );
        assert!(process.inbox.lock().parked.is_empty());
        process.deliver(Term::Int(2));
        assert_eq!(
            process
                .receive(Some(Duration::ZERO))
                .map(Message::into_term),
            Some(Term::Int(1))
        );
        assert_eq!(
            process.receive(None).map(Message::into_term),
            Some(Term::Int(2))
        );
    }

    #[test]
    fn many_senders_lose_nothing_and_keep_each_senders_order() {
        let process = Arc::new(Process::new(Pid::local(1), None));
        let (senders, each) = (3i64, 2000i64);
        std::thread::scope(|s| {
            for sender in 0..senders {
                let process = &process;
                s.spawn(move || {
                    for i in 0..each {
                        process.deliver(Term::Tuple(vec![Term::Int(sender), Term::Int(i)]));
                    }
                });
            }
            let mut next = vec![0i64; senders as usize];
            for _ in 0..senders * each {
                let Some(Term::Tuple(m)) = process
                    .receive(Some(Duration::from_secs(10)))
                    .map(Message::into_term)
                else {
                    panic!("a message was lost");
                };
                let [Term::Int(sender), Term::Int(i)] = m[..] else {
                    panic!("not sent: {m:?}");
                };
                assert_eq!(i, next[sender as usize], "sender {sender} out of order");
                next[sender as usize] += 1;
            }
        });
        assert_eq!(process.message_count(), 0);
    }
}
