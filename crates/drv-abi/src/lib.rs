//! `drv-abi`: the erl_driver C ABI.
pub mod types;
