//! Term output from drivers (issue #5).

use crate::host::GlobalHost;

impl drv_abi::TermHost for GlobalHost {}
