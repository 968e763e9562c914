//! Timer costs: the set + read + cancel trio behind driver_set_timer /
//! driver_read_timer / driver_cancel_timer, expiry, and the time functions.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use drv_timer::clock::{caller_now_ns, now_ns};
use drv_timer::time::{convert_time_unit, monotonic_time, now_micros, TimeUnit};
use drv_timer::TimerWheel;

/// A wheel already holding `pending` timers spread over a minute.
fn busy_wheel(pending: u64) -> TimerWheel<u64> {
    let mut wheel = TimerWheel::with_capacity(0, pending as usize + 16);
    for i in 0..pending {
        wheel.insert((i * 7919) % 60_000 + 1, i);
    }
    wheel
}

fn wheel_trio(c: &mut Criterion) {
    let mut wheel = busy_wheel(10_000);
    let mut delay = 0u64;
    c.bench_function("wheel set+read+cancel (10k pending)", |b| {
        b.iter(|| {
            delay = (delay + 37) % 100_000;
            let key = wheel.insert(black_box(delay + 1), 7);
            black_box(wheel.time_left(key, 0));
            black_box(wheel.cancel(key))
        })
    });
    let mut wheel = busy_wheel(10_000);
    let key = wheel.insert(500, 1);
    c.bench_function("wheel reschedule (10k pending)", |b| {
        b.iter(|| {
            delay = (delay + 37) % 100_000;
            black_box(wheel.reschedule(key, black_box(delay + 1)))
        })
    });
}

fn wheel_expiry(c: &mut Criterion) {
    c.bench_function("wheel insert+fire 1000 timers over 1 s", |b| {
        b.iter_batched_ref(
            || TimerWheel::with_capacity(0, 1_000),
            |wheel| {
                for i in 0..1_000u64 {
                    wheel.insert(i, i);
                }
                let mut sum = 0;
                for now in (0..1_000).step_by(10) {
                    wheel.advance(now, |_, v| sum += v);
                }
                black_box(sum)
            },
            BatchSize::SmallInput,
        )
    });
}

fn clock(c: &mut Criterion) {
    c.bench_function("clock now_ns (timer thread)", |b| b.iter(now_ns));
    c.bench_function("clock caller_now_ns (driver calls)", |b| {
        b.iter(caller_now_ns)
    });
}

fn time_functions(c: &mut Criterion) {
    c.bench_function("convert_time_unit ns->ms", |b| {
        b.iter(|| {
            convert_time_unit(
                black_box(-1_234_567_891),
                TimeUnit::Nanosecond,
                TimeUnit::Millisecond,
            )
        })
    });
    c.bench_function("monotonic_time(usec)", |b| {
        b.iter(|| monotonic_time(black_box(TimeUnit::Microsecond)))
    });
    c.bench_function("now_micros (driver_get_now)", |b| b.iter(now_micros));
}

criterion_group!(benches, wheel_trio, wheel_expiry, clock, time_functions);
criterion_main!(benches);
