//! Processes: an id, a mailbox with selective receive, and the exit-trapping flag.
//!
//! The mailbox is split as BEAM splits it. Senders append to the *inbox* under a spin lock
//! held for a few instructions. A receiver whose first inbox message matches takes it there
//! (one lock, the usual case); otherwise it moves the inbox to its *private* queue and scans
//! that without holding up senders (selective receive over a long mailbox). Messages in the
//! private queue are all older than those in the inbox. A sender wakes receivers only when one
//! is parked.
//!
//! A message is a [`Message`]: a [`Term`] the runtime made, or the [`FlatTerm`] a driver's term
//! output built (one buffer, as BEAM links a driver's heap fragment to the mailbox). Receiving
//! as a `Term` converts the flat ones; [`Process::receive_message`] hands them over as they are.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use drv_term::{FlatTerm, Pid, Term};

use crate::spin::SpinMutex;
use crate::sync::{AtomicBool, Mutex, Ordering, Thread};

/// A message in a mailbox: a term in either of its forms.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A term the runtime made (port data, exit signals, replies, notifications).
    Term(Term),
    /// A term a driver sent (`erl_drv_output_term` and friends), in the one-buffer form it
    /// was built in.
    Flat(FlatTerm),
}

impl Message {
    /// The message as a [`Term`] (converting a flat one).
    pub fn into_term(self) -> Term {
        match self {
            Message::Term(term) => term,
            Message::Flat(flat) => flat.into_term(),
        }
    }

    /// The message as a [`Term`], a flat one converted in place first.
    fn make_term(&mut self) -> &Term {
        if let Message::Flat(flat) = self {
            *self = Message::Term(flat.to_term());
        }
        match self {
            Message::Term(term) => term,
            Message::Flat(_) => unreachable!("converted above"),
        }
    }

    /// The message as a [`Term`] without converting anything: `None` for a flat one.
    fn as_term(&self) -> Option<&Term> {
        match self {
            Message::Term(term) => Some(term),
            Message::Flat(_) => None,
        }
    }
}

impl From<Term> for Message {
    fn from(term: Term) -> Message {
        Message::Term(term)
    }
}

impl From<FlatTerm> for Message {
    fn from(flat: FlatTerm) -> Message {
        Message::Flat(flat)
    }
}

impl PartialEq<Term> for Message {
    fn eq(&self, other: &Term) -> bool {
        match self {
            Message::Term(term) => term == other,
            Message::Flat(flat) => flat == other,
        }
    }
}

impl fmt::Display for Message {
    /// The term as Erlang prints it (`~0p`), whichever the form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Term(term) => term.fmt(f),
            Message::Flat(flat) => flat.fmt(f),
        }
    }
}

/// Which messages a receive takes.
trait Matcher {
    /// Whether `message` matches, if that can be told without converting it (under the inbox
    /// lock, with senders held off).
    fn quick(&mut self, message: &Message) -> Option<bool>;
    /// Whether `message` matches, converting it in place if need be.
    fn full(&mut self, message: &mut Message) -> bool;
}

/// Takes any message.
struct Any;

impl Matcher for Any {
    #[inline]
    fn quick(&mut self, _: &Message) -> Option<bool> {
        Some(true)
    }
    fn full(&mut self, _: &mut Message) -> bool {
        true
    }
}

/// Takes the messages a test on their [`Term`] accepts.
struct TermMatcher<F>(F);

impl<F: FnMut(&Term) -> bool> Matcher for TermMatcher<F> {
    fn quick(&mut self, message: &Message) -> Option<bool> {
        message.as_term().map(&mut self.0)
    }
    fn full(&mut self, message: &mut Message) -> bool {
        (self.0)(message.make_term())
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
    trap_exit: AtomicBool,
}

/// What senders touch.
#[derive(Debug, Default)]
struct Inbox {
    messages: VecDeque<Message>,
    /// Whether the private queue holds messages (older than these): then the first inbox
    /// message is not the oldest, and receivers go through the private queue. Changed with
    /// both locks held, so either lock is enough to read it.
    private_in_use: bool,
    /// Receivers parked until a message arrives.
    parked: Vec<Thread>,
}

impl Process {
    pub(crate) fn new(pid: Pid, name: Option<String>) -> Process {
        Process {
            pid,
            name,
            inbox: SpinMutex::new(Inbox::default()),
            private: Mutex::new(VecDeque::new()),
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
        let mut private = self.private.lock();
        let mut inbox = self.inbox.lock();
        private.clear();
        inbox.messages.clear();
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
            if inbox.parked.is_empty() {
                return;
            }
            std::mem::take(&mut inbox.parked)
        };
        for receiver in parked {
            receiver.unpark();
        }
    }

    /// The next message as a [`Term`], waiting up to `timeout` (`None`: forever).
    pub fn receive(&self, timeout: Option<Duration>) -> Option<Term> {
        self.receive_message(timeout).map(Message::into_term)
    }

    /// The next message as it is in the mailbox (a driver's term output stays in the one-buffer
    /// form it was built in: for a host that copies messages into its own heap, or drops
    /// them), waiting up to `timeout` (`None`: forever).
    pub fn receive_message(&self, timeout: Option<Duration>) -> Option<Message> {
        self.receive_by(timeout, &mut Any)
    }

    /// The first message for which `matches` holds, waiting up to `timeout`; other messages
    /// stay queued in order (Erlang's selective receive).
    ///
    /// `matches` may see the oldest message with senders held off (the usual case costs one
    /// lock so): keep it a quick test. A message a driver sent is converted to a `Term` (once)
    /// before `matches` sees it, without holding off senders. Concurrent receivers on one
    /// process each take messages in order, but which of them gets a message that both would
    /// accept is unspecified (in Erlang only the process receives).
    pub fn receive_matching(
        &self,
        timeout: Option<Duration>,
        matches: impl FnMut(&Term) -> bool,
    ) -> Option<Term> {
        self.receive_by(timeout, &mut TermMatcher(matches))
            .map(Message::into_term)
    }

    fn receive_by(&self, timeout: Option<Duration>, matcher: &mut impl Matcher) -> Option<Message> {
        {
            let mut inbox = self.inbox.lock();
            if !inbox.private_in_use {
                let front = inbox.messages.front();
                if front.is_some_and(|m| matcher.quick(m) == Some(true)) {
                    return inbox.messages.pop_front();
                }
            }
        }
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
    fn take_private(&self, matcher: &mut impl Matcher, park: bool) -> Option<Message> {
        let mut private = self.private.lock();
        // Messages before this index have been scanned by this receive.
        let mut scanned = 0;
        loop {
            if let Some(i) = private
                .iter_mut()
                .skip(scanned)
                .position(|m| matcher.full(m))
            {
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
            private.append(&mut inbox.messages);
            inbox.private_in_use = true;
        }
    }

    /// Forgets this thread as parked (woken by a timeout, or spuriously).
    fn unregister_parked(&self) {
        let me = crate::sync::current().id();
        self.inbox.lock().parked.retain(|t| t.id() != me);
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

    use drv_term::{FlatTerm, Pid, Term};

    use super::{Message, Process};

    /// One step on a mailbox.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// Deliver the integer (odd ones in the flat form a driver's term output has, so that
        /// receives meet both forms).
        Send(i64),
        /// Receive without waiting: the first message equal to the integer (any message for
        /// `None`), expecting the given result.
        Take(Option<i64>, Option<i64>),
        /// The number of queued messages.
        Count(usize),
    }
    use Step::{Count, Send, Take};

    fn run(steps: &[Step]) {
        let process = Process::new(Pid::local(1), None);
        for (n, step) in steps.iter().enumerate() {
            match *step {
                Send(i) if i % 2 == 1 => process.deliver(FlatTerm::from_term(&Term::Int(i))),
                Send(i) => process.deliver(Term::Int(i)),
                Take(wanted, expected) => {
                    let got = process
                        .receive_matching(Some(Duration::ZERO), |m| {
                            wanted.is_none_or(|w| *m == Term::Int(w))
                        })
                        .map(|m| match m {
                            Term::Int(i) => i,
                            other => panic!("not sent: {other}"),
                        });
                    assert_eq!(got, expected, "step {n} of {steps:?}");
                }
                Count(expected) => {
                    assert_eq!(process.message_count(), expected, "step {n} of {steps:?}")
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
        ];
        for steps in cases {
            run(steps);
        }
    }

    #[test]
    fn flat_messages_come_as_they_are_or_as_terms() {
        let process = Process::new(Pid::local(1), None);
        let tcp = Term::Tuple(vec![Term::atom("tcp"), Term::Int(1)]);
        let now = Some(Duration::ZERO);
        process.deliver(FlatTerm::from_term(&tcp));
        assert!(matches!(process.receive_message(now), Some(Message::Flat(f)) if f == tcp));
        process.deliver(FlatTerm::from_term(&tcp));
        process.deliver(Term::Int(2));
        process.deliver(FlatTerm::from_term(&Term::Int(3)));
        // A selective receive converts the flat messages it looks at (once), in order.
        assert_eq!(
            process.receive_matching(now, |m| *m == Term::Int(3)),
            Some(Term::Int(3))
        );
        assert_eq!(process.receive_message(now), Some(Message::Term(tcp)));
        assert_eq!(process.receive(now), Some(Term::Int(2)));
        assert_eq!(process.receive_message(now), None);
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
            std::thread::spawn(move || process.receive_matching(None, |m| *m == Term::Int(3)))
        };
        // Whether the receiver parks before or after these arrive, it must take 3 and leave
        // the rest in order.
        for i in 1..=4 {
            std::thread::sleep(Duration::from_millis(2));
            process.deliver(Term::Int(i));
        }
        assert_eq!(receiver.join().expect("receiver"), Some(Term::Int(3)));
        let rest: Vec<_> = std::iter::from_fn(|| process.receive(Some(Duration::ZERO))).collect();
        assert_eq!(rest, [1, 2, 4].map(Term::Int));
    }

    #[test]
    fn a_timed_receive_gives_up_and_leaves_no_trace() {
        let process = Process::new(Pid::local(1), None);
        process.deliver(Term::Int(1));
        assert_eq!(
            process.receive_matching(Some(Duration::from_millis(5)), |m| *m == Term::Int(2)),
            None
        );
        assert!(process.inbox.lock().parked.is_empty());
        process.deliver(Term::Int(2));
        assert_eq!(process.receive(Some(Duration::ZERO)), Some(Term::Int(1)));
        assert_eq!(process.receive(None), Some(Term::Int(2)));
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
                let Some(Term::Tuple(m)) = process.receive(Some(Duration::from_secs(10))) else {
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
