//! Port timers (issue #6).

use crate::host::GlobalHost;

/// Per-port state for this capability (a field of every port).
#[derive(Debug, Default)]
pub(crate) struct PortTimer {}

impl drv_abi::TimerHost for GlobalHost {}

/// Runtime-wide state for timers (a field of every runtime).
#[derive(Debug, Default)]
pub(crate) struct RuntimeTimers {}
