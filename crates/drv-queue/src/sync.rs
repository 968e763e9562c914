//! The atomics and allocator calls behind binary and port data lock reference counts: std's, or
//! the model checker's when the crate is built with `--cfg loom` (`cargo xtask loom`), so the
//! code the models in `tests/loom_refcount.rs` check is the production code, not a copy.
//!
//! Under loom, allocations go through `loom::alloc`, which reports a binary freed twice or never.
//! `realloc` has no loom counterpart; the models do not reallocate.

#[cfg(loom)]
pub(crate) use loom::alloc::{alloc, dealloc};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicIsize, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::alloc::{alloc, dealloc};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicIsize, AtomicUsize, Ordering};
