//! Per-operation cost of the driver queue's hot paths (single thread).
//!
//! Each iteration is 16 operations followed by draining the queue, so the reported time
//! divided by 16 is the amortised cost per operation.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drv_queue::{BinaryRef, PortQueue};

const BATCH: usize = 16;

fn bench_queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(BATCH as u64));

    let data = [0x5au8; 64];
    let mut q = PortQueue::new();
    group.bench_function("enq64_x16_then_peekq_deq", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                q.enq(black_box(&data));
            }
            let total: usize = black_box(q.peekq()).iter().map(|v| v.iov_len).sum();
            q.deq(total).expect("whole queue");
        })
    });

    let bin = BinaryRef::from_slice(&[0xa5; 64 * BATCH]).expect("alloc");
    let mut q = PortQueue::new();
    group.bench_function("enq_bin64_same_binary_x16_then_deq", |b| {
        b.iter(|| {
            // Every other 64-byte slice, as in queue_bench_drv.c (each is an entry of its own).
            for i in 0..BATCH {
                q.enq_bin(
                    black_box(&bin),
                    (i * 64) % (bin.len() / 2) * 2 % bin.len(),
                    64,
                )
                .expect("in range");
            }
            q.deq(q.size()).expect("whole queue");
        })
    });

    let bins: Vec<BinaryRef> = (0..BATCH)
        .map(|_| BinaryRef::from_slice(&[0xa5; 64]).expect("alloc"))
        .collect();
    let mut q = PortQueue::new();
    group.bench_function("enq_bin64_distinct_binaries_x16_then_deq", |b| {
        b.iter(|| {
            for bin in &bins {
                q.enq_bin(black_box(bin), 0, 64).expect("in range");
            }
            q.deq(q.size()).expect("whole queue");
        })
    });

    let mut q = PortQueue::new();
    group.bench_function("enq64_x16_then_deq_in_64b_steps", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                q.enq(black_box(&data));
            }
            while !q.is_empty() {
                q.deq(64).expect("64 bytes");
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("binary");
    group.bench_function("alloc64_free", |b| {
        b.iter(|| black_box(BinaryRef::alloc(black_box(64))))
    });
    let bin = BinaryRef::alloc(64).expect("alloc");
    group.bench_function("clone_drop", |b| b.iter(|| black_box(bin.clone())));
    group.finish();
}

criterion_group!(benches, bench_queue);
criterion_main!(benches);
