//! `ddll-benches`: the criterion benches of the `ddll` runtime (`cargo bench -p ddll-benches`).
//! The crate has no code of its own; the benches are in `benches/`.

#![forbid(unsafe_code)]
