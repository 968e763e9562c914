//! The driver API's time functions against BEAM's behaviour.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drv_timer::time::{
    convert_time_unit, convert_time_unit_raw, monotonic_time, monotonic_time_raw, now, now_micros,
    split_now, time_offset, time_offset_raw, TimeUnit, ERL_DRV_TIME_ERROR,
};

const UNITS: [TimeUnit; 4] = [
    TimeUnit::Second,
    TimeUnit::Millisecond,
    TimeUnit::Microsecond,
    TimeUnit::Nanosecond,
];

fn check_convert(value: i64, from: i32, to: i32, expected: i64) {
    assert_eq!(
        convert_time_unit_raw(value, from, to),
        expected,
        "convert_time_unit({value}, {from}, {to})"
    );
    if let (Some(from), Some(to)) = (TimeUnit::from_raw(from), TimeUnit::from_raw(to)) {
        assert_eq!(convert_time_unit(value, from, to), expected);
    }
}

/// Rows computed once with `erlang:convert_time_unit/3` on OTP 25.
#[test]
fn convert_time_unit_matches_erl() {
    let table = include_str!("data/convert_time_unit.txt");
    let mut rows = 0;
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<i64> = line
            .split_whitespace()
            .map(|f| f.parse().expect("integer field"))
            .collect();
        let [value, from, to, expected] = fields[..] else {
            panic!("bad row {line:?}");
        };
        check_convert(value, from as i32, to as i32, expected);
        rows += 1;
    }
    assert!(rows > 400, "table truncated: {rows} rows");
}

#[test]
fn convert_time_unit_rejects_bad_units() {
    check_convert(5, 4, 0, ERL_DRV_TIME_ERROR);
    check_convert(5, 0, 4, ERL_DRV_TIME_ERROR);
    check_convert(5, -1, 1, ERL_DRV_TIME_ERROR);
    check_convert(0, 1, i32::MAX, ERL_DRV_TIME_ERROR);
    assert_eq!(monotonic_time_raw(7), ERL_DRV_TIME_ERROR);
    assert_eq!(time_offset_raw(-3), ERL_DRV_TIME_ERROR);
}

/// The unit values and the error value are those of the installed OTP headers.
#[test]
fn constants_match_installed_header() {
    let path = "/usr/lib/erlang/usr/include/erl_drv_nif.h";
    let Ok(header) = std::fs::read_to_string(path) else {
        eprintln!("{path} not installed; skipped");
        return;
    };
    let define = |name: &str| -> String {
        header
            .lines()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("#define") && words.next() == Some(name))
                    .then(|| words.next().expect("value").to_string())
            })
            .unwrap_or_else(|| panic!("{name} not in header"))
    };
    for (name, unit) in [
        ("ERTS_NAPI_SEC__", TimeUnit::Second),
        ("ERTS_NAPI_MSEC__", TimeUnit::Millisecond),
        ("ERTS_NAPI_USEC__", TimeUnit::Microsecond),
        ("ERTS_NAPI_NSEC__", TimeUnit::Nanosecond),
    ] {
        assert_eq!(
            define(name).parse::<i32>().expect("number"),
            unit.raw(),
            "{name}"
        );
        assert_eq!(TimeUnit::from_raw(unit.raw()), Some(unit));
    }
    assert_eq!(define("ERTS_NAPI_TIME_ERROR__"), "ERL_NAPI_SINT64_MIN__");
    assert_eq!(ERL_DRV_TIME_ERROR, i64::MIN);
}

#[test]
fn monotonic_time_never_goes_back_and_units_agree() {
    let mut last = [i64::MIN; 4];
    for _ in 0..1_000 {
        for (i, unit) in UNITS.into_iter().enumerate() {
            let t = monotonic_time(unit);
            assert!(t >= last[i], "{unit:?} went back");
            assert!(monotonic_time_raw(unit.raw()) >= t);
            last[i] = t;
        }
    }
    let before_ns = monotonic_time(TimeUnit::Nanosecond);
    let ms = monotonic_time(TimeUnit::Millisecond);
    let after_ns = monotonic_time(TimeUnit::Nanosecond);
    assert!(before_ns.div_euclid(1_000_000) <= ms && ms <= after_ns.div_euclid(1_000_000));
    std::thread::sleep(Duration::from_millis(20));
    assert!(monotonic_time(TimeUnit::Millisecond) >= ms + 20);
}

#[test]
fn monotonic_plus_offset_is_system_time() {
    for unit in UNITS {
        let system_before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after epoch");
        let sum = i128::from(monotonic_time(unit)) + i128::from(time_offset(unit));
        let system_after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after epoch");
        let per_sec = unit.per_second() as i128;
        let lo = system_before.as_nanos() as i128 * per_sec / 1_000_000_000 - 2;
        let hi = system_after.as_nanos() as i128 * per_sec / 1_000_000_000 + 1;
        // Allow 50 ms for clock adjustments between the two clocks' readings.
        let slack = per_sec / 20;
        assert!(
            sum >= lo - slack && sum <= hi + slack,
            "{unit:?}: {sum} not in [{lo}, {hi}]"
        );
        assert_eq!(time_offset_raw(unit.raw()), time_offset(unit));
    }
}

#[test]
fn split_now_fields() {
    fn check(micros: u64, expected: (u64, u64, u64)) {
        assert_eq!(split_now(micros), expected, "{micros}");
    }
    check(0, (0, 0, 0));
    check(999_999, (0, 0, 999_999));
    check(1_000_000, (0, 1, 0));
    check(1_700_000_123_456_789, (1_700, 123, 456_789));
    check(1_000_000_000_000, (1, 0, 0));
}

#[test]
fn now_is_strictly_increasing_across_threads() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let values: Vec<u64> = (0..20_000).map(|_| now_micros()).collect();
                assert!(
                    values.windows(2).all(|w| w[0] < w[1]),
                    "not increasing in a thread"
                );
                values
            })
        })
        .collect();
    let mut all = HashSet::new();
    for thread in threads {
        for value in thread.join().expect("thread") {
            assert!(all.insert(value), "{value} returned twice");
        }
    }
    let (mega, secs, micros) = now();
    let system = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after epoch");
    let from_now = Duration::from_micros(mega * 1_000_000_000_000 + secs * 1_000_000 + micros);
    // 80k calls may run ahead of the clock by at most 80 ms.
    assert!(
        from_now.abs_diff(system) < Duration::from_millis(200),
        "{from_now:?} vs {system:?}"
    );
}
