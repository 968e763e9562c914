//! Time for the driver API, delegated to `drv-timer` (the raw forms take the C unit values
//! and answer `ERL_DRV_TIME_ERROR` for a bad unit).
pub(crate) use drv_timer::time::{
    convert_time_unit_raw as convert_time_unit, monotonic_time_raw as monotonic_time, now,
    time_offset_raw as time_offset,
};
