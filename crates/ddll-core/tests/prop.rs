//! Property test: random operation sequences from 3 processes on 2 drivers must give the same
//! replies, effects and observable state in ddll-core and in the reference model.

mod common;
mod model;

use common::{Harness, Impl, Op, BAD_DIR, DIR_A, DIR_B, GONE_DIR};
use ddll_core::{MonitorKind, Pending};
use model::Model;
use proptest::prelude::*;

fn pending() -> impl Strategy<Value = Option<Pending>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Pending::PendingDriver)),
        1 => Just(Some(Pending::Pending)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let pid = 1u8..=3;
    let drv = prop_oneof![Just("da"), Just("db")];
    let dir = prop_oneof![
        6 => Just(DIR_A),
        2 => Just(DIR_B),
        1 => Just(BAD_DIR),
        1 => Just(GONE_DIR),
    ];
    prop_oneof![
        6 => (pid.clone(), drv.clone(), dir, any::<bool>(), pending(), pending()).prop_map(
            |(pid, drv, dir, kill, monitor, reload)| Op::Load { pid, drv, dir, kill, monitor, reload }
        ),
        4 => (pid.clone(), drv.clone(), any::<bool>(), pending())
            .prop_map(|(pid, drv, kill, monitor)| Op::Unload { pid, drv, kill, monitor }),
        2 => (pid.clone(), drv.clone(), prop_oneof![
                Just(MonitorKind::Loaded),
                Just(MonitorKind::Unloaded),
                Just(MonitorKind::UnloadedOnly)
            ]).prop_map(|(pid, drv, kind)| Op::Monitor { pid, drv, kind }),
        1 => (pid.clone(), 0usize..8).prop_map(|(pid, nth)| Op::Demonitor { pid, nth }),
        3 => drv.clone().prop_map(Op::PortOpen),
        3 => drv.clone().prop_map(Op::PortClose),
        1 => drv.clone().prop_map(Op::Reference),
        1 => drv.clone().prop_map(Op::Dereference),
        1 => pid.prop_map(Op::Die),
        1 => drv.prop_map(Op::Lock),
        4 => Just(Op::Run),
    ]
}

fn run_both(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut real = Harness::new(Impl::default());
    let mut model = Harness::new(Model::default());
    real.sys.core.add_linked_in("tcp_inet");
    model.sys.add_linked_in("tcp_inet");
    for (i, op) in ops.iter().enumerate() {
        let got = real.step(op);
        let want = model.step(op);
        prop_assert_eq!(&got, &want, "step {} {:?}", i, op);
        prop_assert_eq!(
            real.state(),
            model.state(),
            "state after step {} {:?}",
            i,
            op
        );
    }
    // Drain: run the scheduled work until both are quiet.
    let got = real.step(&Op::Run);
    let want = model.step(&Op::Run);
    prop_assert_eq!(got, want);
    prop_assert_eq!(real.state(), model.state());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn core_agrees_with_reference_model(ops in prop::collection::vec(op(), 1..40)) {
        run_both(&ops)?;
    }
}

/// The random operations reach the interesting states (guards against a vacuous generator).
#[test]
fn generator_reaches_reload_and_unload_paths() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), 1..40);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..500 {
        let ops = strategy.new_tree(&mut runner).expect("tree").current();
        let mut h = Harness::new(Impl::default());
        for op in &ops {
            let obs = h.step(op);
            seen.insert(obs.reply.split(',').take(2).collect::<Vec<_>>().join(","));
            for e in obs.effects {
                seen.insert(
                    e.split(' ')
                        .skip(1)
                        .take(1)
                        .chain(e.rsplit(' ').take(1))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
        }
    }
    for needed in [
        "{ok,loaded}",
        "{ok,already_loaded}",
        "{ok,pending_driver",
        "{ok,pending_process",
        "{error,inconsistent}",
        "{error,pending_reload}",
        "{error,not_loaded_by_this_process}",
        "{error,bad_driver_name}",
        "{error,permanent}",
        "DOWN unloaded",
        "UP loaded",
        "DOWN load_cancelled",
        "UP unload_cancelled",
        "UP permanent",
        "DOWN {load_failure,bad_driver_name}",
    ] {
        assert!(
            seen.iter().any(|s| s.starts_with(needed)),
            "never saw {needed}: {seen:?}"
        );
    }
}
