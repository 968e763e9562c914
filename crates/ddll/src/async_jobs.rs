//! Async jobs of drivers (issue #6).

use crate::host::GlobalHost;

impl drv_abi::AsyncHost for GlobalHost {}

/// Runtime-wide state for the async pool (a field of every runtime).
#[derive(Debug, Default)]
pub(crate) struct RuntimeAsync {}
