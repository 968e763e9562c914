//! The driver queue and port data lock of each port (issue #4).

use crate::host::GlobalHost;

/// Per-port state for this capability (a field of every port).
#[derive(Debug, Default)]
pub(crate) struct PortQueueState {}

impl drv_abi::QueueHost for GlobalHost {}
