//! lynn's shared test support: the conformance suite's building blocks.
//!
//! - [`raw`]: a raw-socket peer that writes exact bytes, independent of lynn's own codec.

pub mod raw;
