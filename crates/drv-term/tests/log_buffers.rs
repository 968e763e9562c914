//! A full-size log's buffer is written again by the next log once nothing holds it: a backlog
//! that comes again writes memory already faulted in (`arena::SPARE_BUFFERS`). One test in a
//! binary of its own: the spare buffers are the process's.

use bytes::Bytes;
use drv_term::{FlatLog, FlatTerm, Term};

/// A new full-size log with one message, taken: the message, and where its bytes are.
fn taken_from_new_log(term: &FlatTerm) -> (FlatLog, FlatTerm, usize) {
    let mut log = FlatLog::with_capacity(FlatLog::MAX_BYTES);
    assert!(log.push(term));
    let message = log.pop().expect("the message");
    let at = message.root().binary().expect("a binary").as_ptr() as usize;
    (log, message, at)
}

#[test]
fn a_full_size_logs_buffer_serves_the_next_once_nothing_holds_it() {
    let term = FlatTerm::from_term(&Term::Binary(Bytes::from_static(b"abc")));
    let (log, held, first) = taken_from_new_log(&term);
    drop(log);
    let (log, message, other) = taken_from_new_log(&term);
    assert_ne!(
        other, first,
        "a buffer a message still holds was written again"
    );
    drop((log, message));
    // The last message gone, its log's buffer is the next log's (the last kept is the first
    // written again).
    drop(held);
    let (log, message, again) = taken_from_new_log(&term);
    assert_eq!(
        again, first,
        "the buffer its last message let go of was not written again"
    );
    drop((log, message));
    // A log dropped unread hands its buffer on too.
    let mut unread = FlatLog::with_capacity(FlatLog::MAX_BYTES);
    assert!(unread.push(&term));
    let (log, message, next) = taken_from_new_log(&term);
    drop((log, message));
    drop(unread);
    let (_log, _message, last) = taken_from_new_log(&term);
    assert_eq!(last, first, "the unread log's buffer was not written again");
    assert_ne!(last, next);
}
