//! The timing wheel against a sorted-map model, under random operations.

use std::collections::{BTreeMap, HashMap};

use drv_timer::{TimerKey, TimerWheel};
use proptest::prelude::*;

/// A deadline relative to the wheel's time.
#[derive(Clone, Debug)]
enum When {
    Past(u64),
    Soon(u64),
    /// One of a few fixed offsets, so many timers share a slot and a deadline.
    Crowded(u8),
    Far(u64),
    Huge(u64),
    Max,
}

#[derive(Clone, Debug)]
enum Op {
    Insert(When),
    Cancel(usize),
    Reschedule(usize, When),
    Advance(u64),
    AdvanceFar(u64),
    AdvanceToMax,
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        (0u64..200).prop_map(When::Past),
        (0u64..300).prop_map(When::Soon),
        (0u8..4).prop_map(When::Crowded),
        (0u64..1 << 24).prop_map(When::Far),
        any::<u64>().prop_map(When::Huge),
        Just(When::Max),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => when().prop_map(Op::Insert),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => (any::<usize>(), when()).prop_map(|(i, w)| Op::Reschedule(i, w)),
        3 => (0u64..400).prop_map(Op::Advance),
        1 => (0u64..1 << 30).prop_map(Op::AdvanceFar),
        1 => (0u64..1 << 62).prop_map(Op::AdvanceFar),
        1 => Just(Op::AdvanceToMax),
    ]
}

fn resolve(now: u64, when: &When) -> u64 {
    match *when {
        When::Past(back) => now.saturating_sub(back),
        When::Soon(ahead) => now.saturating_add(ahead),
        When::Crowded(which) => now.saturating_add([1, 64, 4096, 70][which as usize]),
        When::Far(ahead) => now.saturating_add(ahead),
        When::Huge(at) => at,
        When::Max => u64::MAX,
    }
}

/// Reference: pending timers ordered by (deadline, insertion sequence).
#[derive(Default)]
struct Model {
    now: u64,
    seq: u64,
    order: BTreeMap<(u64, u64), (TimerKey, u64)>,
    by_key: HashMap<TimerKey, (u64, u64)>,
}

impl Model {
    fn insert(&mut self, key: TimerKey, deadline: u64, value: u64) {
        self.seq += 1;
        self.order.insert((deadline, self.seq), (key, value));
        self.by_key.insert(key, (deadline, self.seq));
    }

    fn remove(&mut self, key: TimerKey) -> Option<u64> {
        let slot = self.by_key.remove(&key)?;
        self.order.remove(&slot).map(|(_, value)| value)
    }

    fn advance(&mut self, now: u64) -> Vec<(TimerKey, u64)> {
        self.now = self.now.max(now);
        let mut fired = Vec::new();
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (key, value) = entry.remove();
            self.by_key.remove(&key);
            fired.push((key, value));
        }
        fired
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let start = 1_000_000;
    let mut wheel = TimerWheel::new(start);
    let mut model = Model {
        now: start,
        ..Model::default()
    };
    // Every key ever issued, live or stale, so cancels also hit stale keys.
    let mut keys: Vec<TimerKey> = Vec::new();
    let mut next_value = 0u64;
    for op in ops {
        match op {
            Op::Insert(when) => {
                let deadline = resolve(model.now, &when);
                next_value += 1;
                let key = wheel.insert(deadline, next_value);
                prop_assert!(!model.by_key.contains_key(&key), "live key reissued");
                model.insert(key, deadline, next_value);
                keys.push(key);
            }
            Op::Cancel(pick) if !keys.is_empty() => {
                let key = keys[pick % keys.len()];
                prop_assert_eq!(wheel.cancel(key), model.remove(key));
            }
            Op::Reschedule(pick, when) if !keys.is_empty() => {
                let key = keys[pick % keys.len()];
                let deadline = resolve(model.now, &when);
                let live = model.remove(key);
                prop_assert_eq!(wheel.reschedule(key, deadline), live.is_some());
                if let Some(value) = live {
                    model.insert(key, deadline, value);
                }
            }
            Op::Cancel(_) | Op::Reschedule(..) => {}
            Op::Advance(by) | Op::AdvanceFar(by) => {
                let now = model.now.saturating_add(by);
                let mut fired = Vec::new();
                let count = wheel.advance(now, |key, value| fired.push((key, value)));
                prop_assert_eq!(count, fired.len());
                prop_assert_eq!(fired, model.advance(now));
            }
            Op::AdvanceToMax => {
                let mut fired = Vec::new();
                wheel.advance(u64::MAX, |key, value| fired.push((key, value)));
                prop_assert_eq!(fired, model.advance(u64::MAX));
            }
        }
        prop_assert_eq!(wheel.len(), model.by_key.len());
        prop_assert_eq!(wheel.now(), model.now);
        let next = model.order.keys().next().map(|&(deadline, _)| deadline);
        prop_assert_eq!(wheel.next_deadline(), next);
        if let (Some(wakeup), Some(deadline)) = (wheel.next_wakeup(), next) {
            prop_assert!(
                wakeup <= deadline.max(model.now),
                "wakeup {} after deadline {}",
                wakeup,
                deadline
            );
        }
        prop_assert_eq!(wheel.next_wakeup().is_some(), next.is_some());
        for key in &keys {
            let expected = model.by_key.get(key).map(|&(deadline, _)| deadline);
            prop_assert_eq!(wheel.deadline(*key), expected);
            prop_assert_eq!(
                wheel.time_left(*key, model.now),
                expected.map(|d| d.saturating_sub(model.now))
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wheel_matches_sorted_model(ops in prop::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}

#[test]
fn many_timers_in_one_slot_fire_in_insertion_order() {
    let mut wheel = TimerWheel::new(0);
    // Same deadline, reached through a cascade from level 2.
    let keys: Vec<_> = (0..500).map(|i| wheel.insert(5_000, i)).collect();
    wheel.insert(4_999, -1);
    let mut fired = Vec::new();
    wheel.advance(4_999, |_, v| fired.push(v));
    assert_eq!(fired, [-1]);
    wheel.advance(5_000, |_, v| fired.push(v));
    assert_eq!(fired[1..], (0..500).collect::<Vec<_>>()[..]);
    assert!(keys.iter().all(|&k| wheel.deadline(k).is_none()));
}

#[test]
fn past_deadlines_fire_on_next_advance_in_deadline_order() {
    let mut wheel = TimerWheel::new(100);
    wheel.insert(90, "b");
    wheel.insert(10, "a");
    wheel.insert(90, "c");
    wheel.insert(100, "d");
    let mut fired = Vec::new();
    // Even an advance that does not move time fires them.
    wheel.advance(50, |_, v| fired.push(v));
    assert_eq!(fired, ["a", "b", "c", "d"]);
    assert_eq!(wheel.now(), 100);
}

#[test]
fn slab_reuses_slots_in_steady_state() {
    let mut wheel = TimerWheel::with_capacity(0, 4);
    for round in 0..1_000u64 {
        let a = wheel.insert(round + 5, round);
        let b = wheel.insert(round + 7, round);
        assert_eq!(wheel.cancel(a), Some(round));
        wheel.advance(round + 1, |_, _| {});
        assert_eq!(wheel.cancel(b), Some(round));
    }
    assert!(wheel.is_empty());
}

#[test]
fn panicking_fire_callback_leaves_the_wheel_consistent() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut wheel = TimerWheel::new(10);
    wheel.insert(5, 0); // due list
    wheel.insert(8, 1); // due list
    for value in 2..6 {
        wheel.insert(200, value); // level 1, fires after a cascade
    }
    for panic_on in [0, 3] {
        let result = catch_unwind(AssertUnwindSafe(|| {
            wheel.advance(1_000, |_, value| assert_ne!(value, panic_on, "deliberate"))
        }));
        assert!(result.is_err());
    }
    let mut rest = Vec::new();
    wheel.advance(1_000, |_, value| rest.push(value));
    assert_eq!(rest, [4, 5]);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_deadline(), None);
}
