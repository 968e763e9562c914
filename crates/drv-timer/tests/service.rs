//! The timer thread, on the real clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use drv_timer::TimerService;

/// A service sending each expired value, with the time and thread it fired on.
fn service<T: Send + 'static>() -> (TimerService<T>, Receiver<(T, Instant, thread::ThreadId)>) {
    let (sender, receiver) = mpsc::channel();
    let service = TimerService::new(move |value| {
        // The receiver may be gone once a test has what it needs.
        let _ = sender.send((value, Instant::now(), thread::current().id()));
    });
    (service, receiver)
}

fn recv<T>(receiver: &Receiver<(T, Instant, thread::ThreadId)>) -> T {
    receiver
        .recv_timeout(Duration::from_secs(5))
        .expect("timer fired")
        .0
}

#[test]
fn fires_in_deadline_order_not_set_order() {
    let (service, fired) = service();
    service.set(60, 'c');
    service.set(20, 'a');
    service.set(40, 'b');
    service.set(40, 'B');
    let order: String = (0..4).map(|_| recv(&fired)).collect();
    assert_eq!(order, "abBc");
    assert!(service.is_empty());
}

#[test]
fn zero_delay_fires_promptly_on_the_timer_thread() {
    let (service, fired) = service();
    let set_at = Instant::now();
    service.set(0, 1);
    let (value, at, thread) = fired.recv_timeout(Duration::from_secs(5)).expect("fired");
    assert_eq!(value, 1);
    assert_ne!(thread, thread::current().id(), "fired inside set");
    assert!(
        at - set_at < Duration::from_millis(500),
        "took {:?}",
        at - set_at
    );
}

#[test]
fn earlier_timer_wakes_a_sleeping_thread() {
    let (service, fired) = service();
    service.set(60_000, "late");
    thread::sleep(Duration::from_millis(20)); // let the thread go to sleep for a minute
    let set_at = Instant::now();
    service.set(10, "early");
    let (value, at, _) = fired.recv_timeout(Duration::from_secs(5)).expect("fired");
    assert_eq!(value, "early");
    assert!(at - set_at >= Duration::from_millis(10), "fired early");
    assert!(
        at - set_at < Duration::from_millis(500),
        "woke late: {:?}",
        at - set_at
    );
    assert_eq!(service.len(), 1);
}

#[test]
fn cancel_before_fire_and_replace() {
    let (service, fired) = service();
    let cancelled = service.set(30, "cancelled");
    let replaced = service.set(40, "old");
    assert_eq!(service.cancel(cancelled), Some("cancelled"));
    assert_eq!(service.cancel(cancelled), None, "stale key");
    // Replace = cancel + set.
    assert_eq!(service.cancel(replaced), Some("old"));
    let new = service.set(60, "new");
    let moved = service.set(500, "moved");
    assert!(service.reschedule(moved, 80));
    assert_eq!(recv(&fired), "new");
    assert_eq!(recv(&fired), "moved");
    assert_eq!(service.cancel(new), None, "already fired");
    assert!(!service.reschedule(new, 10));
    thread::sleep(Duration::from_millis(30));
    assert!(fired.try_recv().is_err(), "a cancelled timer fired");
}

#[test]
fn time_left_decreases_then_disappears() {
    let (service, fired) = service();
    let key = service.set(150, ());
    let first = service.time_left(key).expect("pending");
    assert!((100..=150).contains(&first), "{first}");
    thread::sleep(Duration::from_millis(50));
    let second = service.time_left(key).expect("pending");
    assert!(second <= first - 50, "{first} then {second}");
    recv(&fired);
    assert_eq!(service.time_left(key), None);
}

#[test]
fn thousand_timers_fire_exactly_once_and_never_early() {
    let (service, fired) = service();
    let start = Instant::now();
    let mut due = HashMap::new();
    for id in 0..1_000u64 {
        let delay = (id * 7919) % 60;
        due.insert(id, start + Duration::from_millis(delay));
        service.set(delay, id);
    }
    let mut seen = HashMap::new();
    for _ in 0..1_000 {
        let (id, at, _) = fired.recv_timeout(Duration::from_secs(5)).expect("fired");
        assert!(at >= due[&id], "timer {id} fired early");
        *seen.entry(id).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 1_000);
    assert!(seen.values().all(|&count| count == 1));
    thread::sleep(Duration::from_millis(20));
    assert!(fired.try_recv().is_err(), "extra firing");
}

/// Counts drops, to see pending values dropped (not fired) at shutdown.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn drop_joins_and_drops_pending_timers_without_firing() {
    let drops = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let service = {
        let calls = Arc::clone(&calls);
        TimerService::new(move |_: Tracked| {
            calls.fetch_add(1, Ordering::SeqCst);
        })
    };
    for delay in [200, 10_000, u64::MAX] {
        service.set(delay, Tracked(Arc::clone(&drops)));
    }
    service.set_at(u64::MAX, Tracked(Arc::clone(&drops)));
    let started = Instant::now();
    drop(service);
    assert!(started.elapsed() < Duration::from_secs(1), "drop hung");
    assert_eq!(drops.load(Ordering::SeqCst), 4, "pending values dropped");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing fired");
}

#[test]
fn panicking_callback_does_not_stop_the_service() {
    let (sender, fired) = mpsc::channel();
    let service = TimerService::new(move |value: u32| {
        assert_ne!(value, 1, "deliberate panic in a timer callback");
        let _ = sender.send(value);
    });
    service.set(0, 1);
    service.set(20, 2);
    assert_eq!(
        fired.recv_timeout(Duration::from_secs(5)).expect("fired"),
        2
    );
}

#[test]
fn callback_can_rearm_and_even_drop_the_service() {
    use std::sync::{Mutex, OnceLock, Weak};
    type Service = TimerService<u32>;
    let this: Arc<OnceLock<Weak<Service>>> = Arc::new(OnceLock::new());
    let (sender, fired) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let service = {
        let this = Arc::clone(&this);
        Arc::new(TimerService::new(move |value: u32| {
            let service = this.get().and_then(Weak::upgrade).expect("service alive");
            let _ = sender.send(value);
            if value < 3 {
                // A driver's timeout re-arming its port timer.
                service.set(1, value + 1);
            } else {
                // Wait until the test dropped its handle: ours is then the last one.
                let _ = released.lock().expect("lock").recv();
                drop(service);
                let _ = sender.send(99);
            }
        }))
    };
    this.set(Arc::downgrade(&service)).expect("set once");
    service.set(60_000, 0);
    service.set(0, 1);
    assert_eq!(
        (recv_value(&fired), recv_value(&fired), recv_value(&fired)),
        (1, 2, 3)
    );
    drop(service);
    release.send(()).expect("callback waiting");
    // The service was dropped on its own thread without deadlocking.
    assert_eq!(recv_value(&fired), 99);
    assert!(this.get().and_then(Weak::upgrade).is_none());
}

fn recv_value(receiver: &Receiver<u32>) -> u32 {
    receiver
        .recv_timeout(Duration::from_secs(5))
        .expect("timer fired")
}
