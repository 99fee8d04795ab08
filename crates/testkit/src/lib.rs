//! What carl's tests and `cargo xtask` share, kept out of the product crates:
//!
//! - [`generate`]: deterministic, realistic gateways (`cargo xtask gen`, the benchmarks,
//!   the chaos runs).
//! - [`oracle`]: compares what a gateway holds with a desired-state file, entity by
//!   entity, without any of carl's code: the judge of the reliability suite must not
//!   share the bugs of what it judges.
//! - [`measure`]: a process's CPU time and peak RSS (the benchmarks, bounded-memory
//!   tests).

pub mod generate;
pub mod measure;
pub mod oracle;
