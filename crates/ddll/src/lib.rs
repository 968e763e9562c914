//! `ddll`: the runtime facade.
pub mod scenario;
