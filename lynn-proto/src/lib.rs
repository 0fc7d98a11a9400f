//! lynn-proto (work in progress: crate docs land with the Connection).
#![forbid(unsafe_code)]

pub mod admission;
pub mod groups;
pub mod reconnect;
pub mod router;

mod id;

pub use id::ConnectionId;

/// The clock type of the whole crate. Time only ever enters as an argument of this type;
/// nothing in lynn-proto reads a clock.
pub type Instant = std::time::Instant;
