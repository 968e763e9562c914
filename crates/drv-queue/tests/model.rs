//! The queue against a `VecDeque<u8>` model (proptest), and the queue shared between threads
//! under a port data lock.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ffi::c_int;
use std::ptr;
use std::sync::Arc;

use drv_queue::{BinaryRef, ErlDrvBinary, ErlIOVec, PdlRef, PortQueue, SysIOVec};
use proptest::prelude::*;

const POOL: usize = 3;
const BIN_LEN: usize = 40;

/// One piece of an `ErlIOVec`: a slice of a pool binary, or plain bytes with no binary.
#[derive(Debug, Clone)]
enum Piece {
    Bin { bin: usize, off: usize, len: usize },
    Plain(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Op {
    Enq(Vec<u8>),
    Push(Vec<u8>),
    EnqBin {
        bin: usize,
        off: usize,
        len: usize,
    },
    PushBin {
        bin: usize,
        off: usize,
        len: usize,
    },
    /// `enq_bin_owned` with a fresh clone of the pool binary.
    EnqOwned {
        bin: usize,
        off: usize,
        len: usize,
    },
    Enqv {
        pieces: Vec<Piece>,
        skip: usize,
        binv: bool,
    },
    Pushqv {
        pieces: Vec<Piece>,
        skip: usize,
        binv: bool,
    },
    /// Dequeue this fraction (per 256) of the queue.
    Deq(u8),
    Peekqv,
    PeekBytes,
}

fn bin_range() -> impl Strategy<Value = (usize, usize, usize)> {
    (0..POOL, 0..=BIN_LEN).prop_flat_map(|(bin, off)| (Just(bin), Just(off), 0..=BIN_LEN - off))
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        bin_range().prop_map(|(bin, off, len)| Piece::Bin { bin, off, len }),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Piece::Plain),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let data = || prop::collection::vec(any::<u8>(), 0..40);
    let vec_args = || {
        (
            prop::collection::vec(piece(), 0..5),
            0..60usize,
            any::<bool>(),
        )
    };
    prop_oneof![
        3 => data().prop_map(Op::Enq),
        1 => data().prop_map(Op::Push),
        2 => bin_range().prop_map(|(bin, off, len)| Op::EnqBin { bin, off, len }),
        1 => bin_range().prop_map(|(bin, off, len)| Op::PushBin { bin, off, len }),
        1 => bin_range().prop_map(|(bin, off, len)| Op::EnqOwned { bin, off, len }),
        1 => vec_args().prop_map(|(pieces, skip, binv)| Op::Enqv { pieces, skip, binv }),
        1 => vec_args().prop_map(|(pieces, skip, binv)| Op::Pushqv { pieces, skip, binv }),
        3 => any::<u8>().prop_map(Op::Deq),
        1 => Just(Op::Peekqv),
        1 => Just(Op::PeekBytes),
    ]
}

/// The kept part of an `ErlIOVec` after its skip: each piece's source (pool index when it is
/// referenced) and bytes; `None` when the skip is beyond its end (the queue must refuse it).
type Kept = Option<Vec<(Option<usize>, Vec<u8>)>>;

/// Builds the `ErlIOVec` for `pieces` and what the queue must keep of it after `skip`.
fn with_iovec<R>(
    pool: &[BinaryRef],
    pieces: &mut [Piece],
    use_binv: bool,
    skip: usize,
    f: impl FnOnce(&ErlIOVec, Kept) -> R,
) -> R {
    let mut iov = Vec::new();
    let mut binv: Vec<*mut ErlDrvBinary> = Vec::new();
    let mut bytes = Vec::new();
    let mut kept = Vec::new();
    let mut skip_left = skip;
    for p in pieces.iter_mut() {
        let start = bytes.len();
        match p {
            Piece::Bin { bin, off, len } => {
                let b = &pool[*bin];
                iov.push(SysIOVec {
                    iov_base: b.data_ptr().wrapping_add(*off).cast(),
                    iov_len: *len,
                });
                binv.push(b.as_ptr());
                bytes.extend_from_slice(&b.as_bytes()[*off..*off + *len]);
            }
            Piece::Plain(data) => {
                iov.push(SysIOVec {
                    iov_base: data.as_mut_ptr().cast(),
                    iov_len: data.len(),
                });
                binv.push(ptr::null_mut());
                bytes.extend_from_slice(data);
            }
        }
        let piece = &bytes[start..];
        let cut = skip_left.min(piece.len());
        skip_left -= cut;
        if cut < piece.len() {
            let source = match p {
                Piece::Bin { bin, .. } if use_binv => Some(*bin),
                _ => None,
            };
            kept.push((source, piece[cut..].to_vec()));
        }
    }
    let ev = ErlIOVec {
        vsize: iov.len() as c_int,
        size: bytes.len(),
        iov: iov.as_mut_ptr(),
        binv: if use_binv {
            binv.as_mut_ptr()
        } else {
            ptr::null_mut()
        },
    };
    f(&ev, (skip <= bytes.len()).then_some(kept))
}

/// What readers were shown, kept referenced, with a copy of the bytes at that time: the queue
/// must never write to them afterwards.
#[derive(Default)]
struct Exposed {
    /// Whole binaries from `peekqv`'s `binv`.
    binaries: Vec<(BinaryRef, Vec<u8>)>,
    /// Views from `peek_bytes`, with the binary each holds a reference on.
    views: Vec<(bytes::Bytes, Vec<u8>, *mut ErlDrvBinary)>,
}

impl Exposed {
    fn unchanged(&self) -> bool {
        self.binaries
            .iter()
            .all(|(b, copy)| b.as_bytes() == copy.as_slice())
            && self.views.iter().all(|(b, copy, _)| b[..] == copy[..])
    }

    /// The references readers hold on `bin`.
    fn references(&self, bin: *mut ErlDrvBinary) -> usize {
        let whole = self.binaries.iter().filter(|(b, _)| b.as_ptr() == bin);
        let views = self.views.iter().filter(|(_, _, b)| *b == bin);
        whole.count() + views.count()
    }
}

/// The model: the queued bytes, and the queued slices of pool binaries (pool index, length) in
/// order, which the runtime keeps as separate entries with one reference each.
#[derive(Default)]
struct Model {
    bytes: VecDeque<u8>,
    /// Every queued piece in order: `Some(pool index)` for a referenced slice of a pool
    /// binary, `None` for copied bytes; with its length.
    pieces: VecDeque<(Option<usize>, usize)>,
}

impl Model {
    fn enq(&mut self, source: Option<usize>, bytes: &[u8]) {
        self.bytes.extend(bytes);
        if !bytes.is_empty() {
            self.pieces.push_back((source, bytes.len()));
        }
    }

    fn push(&mut self, source: Option<usize>, bytes: &[u8]) {
        bytes.iter().rev().for_each(|&b| self.bytes.push_front(b));
        if !bytes.is_empty() {
            self.pieces.push_front((source, bytes.len()));
        }
    }

    fn deq(&mut self, n: usize) {
        self.bytes.drain(..n);
        let mut n = n;
        while n > 0 {
            let head = self.pieces.front_mut().expect("pieces cover the bytes");
            if n < head.1 {
                head.1 -= n;
                break;
            }
            n -= head.1;
            self.pieces.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The referenced slices, as `(pool index, length)`.
    fn referenced(&self) -> Vec<(usize, usize)> {
        let referenced = self.pieces.iter().filter_map(|&(b, len)| Some((b?, len)));
        referenced.collect()
    }
}

/// Applies `op` to the queue and the model.
fn apply(q: &mut PortQueue, model: &mut Model, pool: &[BinaryRef], exposed: &mut Exposed, op: Op) {
    match op {
        Op::Enq(data) => {
            q.enq(&data);
            model.enq(None, &data);
        }
        Op::Push(data) => {
            q.push(&data);
            model.push(None, &data);
        }
        Op::EnqBin { bin, off, len } => {
            q.enq_bin(&pool[bin], off, len).expect("in range");
            model.enq(Some(bin), &pool[bin].as_bytes()[off..off + len]);
        }
        Op::EnqOwned { bin, off, len } => {
            q.enq_bin_owned(pool[bin].clone(), off, len)
                .expect("in range");
            model.enq(Some(bin), &pool[bin].as_bytes()[off..off + len]);
        }
        Op::PushBin { bin, off, len } => {
            q.push_bin(&pool[bin], off, len).expect("in range");
            model.push(Some(bin), &pool[bin].as_bytes()[off..off + len]);
        }
        Op::Enqv {
            mut pieces,
            skip,
            binv,
        } => {
            with_iovec(pool, &mut pieces, binv, skip, |ev, kept| {
                // SAFETY: `ev` describes live arrays, plain data and pool binaries.
                let result = unsafe { q.enqv(ev, skip) };
                assert_eq!(result.is_ok(), kept.is_some());
                for (source, bytes) in kept.unwrap_or_default() {
                    model.enq(source, &bytes);
                }
            });
        }
        Op::Pushqv {
            mut pieces,
            skip,
            binv,
        } => {
            with_iovec(pool, &mut pieces, binv, skip, |ev, kept| {
                // SAFETY: as above.
                let result = unsafe { q.pushqv(ev, skip) };
                assert_eq!(result.is_ok(), kept.is_some());
                for (source, bytes) in kept.unwrap_or_default().iter().rev() {
                    model.push(*source, bytes);
                }
            });
        }
        Op::Deq(fraction) => {
            let n = model.len() * usize::from(fraction) / 255;
            assert_eq!(q.deq(n), Ok(model.len() - n));
            model.deq(n);
        }
        Op::Peekqv => {
            let mut ev = ErlIOVec {
                vsize: -1,
                size: 0,
                iov: ptr::null_mut(),
                binv: ptr::null_mut(),
            };
            assert_eq!(q.peekqv(&mut ev), model.len());
            assert_eq!(ev.vsize as usize, q.vlen());
            for i in 0..q.vlen() {
                // SAFETY: `ev` points at the queue's arrays, unchanged since `peekqv`.
                let (v, bin) = unsafe { (*ev.iov.add(i), *ev.binv.add(i)) };
                assert!(!bin.is_null());
                // SAFETY: a non-null binv entry is a live binary the queue references.
                let bin = unsafe { BinaryRef::from_raw_borrowed(bin) };
                let start = v.iov_base as usize - bin.data_ptr() as usize;
                assert!(start + v.iov_len <= bin.len(), "entry inside its binary");
                let snapshot = bin.as_bytes().to_vec();
                exposed.binaries.push((bin, snapshot));
            }
        }
        Op::PeekBytes => {
            let parts = q.peek_bytes();
            let joined: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
            assert!(joined.iter().eq(model.bytes.iter()));
            for (part, &bin) in parts.into_iter().zip(q.binaries()) {
                let copy = part.to_vec();
                exposed.views.push((part, copy, bin));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn queue_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        let pool: Vec<BinaryRef> = (0..POOL)
            .map(|i| {
                let data: Vec<u8> = (0..BIN_LEN).map(|j| (i * 64 + j) as u8).collect();
                BinaryRef::from_slice(&data).expect("alloc")
            })
            .collect();
        let mut q = PortQueue::new();
        let mut model = Model::default();
        let mut exposed = Exposed::default();
        for op in ops {
            apply(&mut q, &mut model, &pool, &mut exposed, op);
            prop_assert!(exposed.unchanged(), "bytes shown to a reader were overwritten");
            prop_assert_eq!(q.size(), model.len());
            // Referenced slices are entries of their own, and each holds one reference.
            let referenced: Vec<(usize, usize)> = q
                .binaries()
                .iter()
                .zip(q.peekq())
                .filter_map(|(&bin, v)| {
                    let index = pool.iter().position(|p| p.as_ptr() == bin)?;
                    Some((index, v.iov_len))
                })
                .collect();
            prop_assert_eq!(&referenced, &model.referenced());
            for (index, bin) in pool.iter().enumerate() {
                let entries = referenced.iter().filter(|&&(i, _)| i == index).count();
                let readers = exposed.references(bin.as_ptr());
                prop_assert_eq!(bin.refc(), (1 + entries + readers) as isize);
            }
            let peeked: Vec<u8> = q
                .peekq()
                .iter()
                // SAFETY: peekq entries describe live queued bytes until the next change.
                .flat_map(|v| unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) })
                .copied()
                .collect();
            prop_assert!(peeked.iter().eq(model.bytes.iter()));
            prop_assert!(q.peekq().iter().all(|v| v.iov_len > 0));
        }
        drop(q);
        prop_assert!(exposed.unchanged());
        drop(exposed);
        for bin in &pool {
            prop_assert_eq!(bin.refc(), 1);
        }
    }
}

/// The queue shared by threads, as the ABI layer does: exclusive access is guaranteed by
/// holding the port data lock.
struct LockedPort {
    pdl: PdlRef,
    queue: UnsafeCell<PortQueue>,
}

// SAFETY: `queue` is only touched while `pdl` is held.
unsafe impl Sync for LockedPort {}

impl LockedPort {
    fn with_queue<R>(&self, f: impl FnOnce(&mut PortQueue) -> R) -> R {
        let _held = self.pdl.guard();
        // SAFETY: the lock is held, so no other thread accesses the queue.
        f(unsafe { &mut *self.queue.get() })
    }
}

#[test]
fn threads_enq_and_deq_under_the_port_data_lock() {
    const PRODUCERS: u32 = 3;
    const PER_PRODUCER: u32 = 5_000;
    let port = Arc::new(LockedPort {
        pdl: PdlRef::new(),
        queue: UnsafeCell::new(PortQueue::new()),
    });
    let shared = BinaryRef::from_slice(&[0xff; 8]).expect("alloc");
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let port = Arc::clone(&port);
            std::thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let mut record = [0u8; 8];
                    record[..4].copy_from_slice(&id.to_le_bytes());
                    record[4..].copy_from_slice(&seq.to_le_bytes());
                    port.with_queue(|q| q.enq(&record));
                }
            })
        })
        .collect();
    let consumer = {
        let port = Arc::clone(&port);
        let shared = shared.clone();
        std::thread::spawn(move || {
            let mut next = [0u32; PRODUCERS as usize];
            let mut seen = 0;
            while seen < PRODUCERS * PER_PRODUCER {
                port.with_queue(|q| {
                    // Interleave referenced marker binaries with the copied records.
                    q.enq_bin(&shared, 0, 8).expect("in range");
                    while q.size() >= 8 {
                        let record: Vec<u8> = q.chunks().flatten().take(8).copied().collect();
                        let (id, seq) = (&record[..4], &record[4..8]);
                        if id == [0xff; 4] {
                            q.deq(8).expect("marker");
                            continue;
                        }
                        let id = u32::from_le_bytes(id.try_into().expect("4 bytes"));
                        let seq = u32::from_le_bytes(seq.try_into().expect("4 bytes"));
                        assert_eq!(
                            seq, next[id as usize],
                            "records of one thread stay in order"
                        );
                        next[id as usize] += 1;
                        seen += 1;
                        q.deq(8).expect("a whole record");
                    }
                });
                std::thread::yield_now();
            }
            next
        })
    };
    for p in producers {
        p.join().expect("producer");
    }
    let next = consumer.join().expect("consumer");
    assert_eq!(next, [PER_PRODUCER; PRODUCERS as usize]);
    port.with_queue(|q| {
        assert!(
            q.chunks().flatten().all(|&b| b == 0xff),
            "only markers left"
        );
        q.clear();
    });
    assert_eq!(shared.refc(), 1, "every queued reference released");
    assert_eq!(port.pdl.refc(), 1);
}
