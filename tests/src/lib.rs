//! lynn's shared test support: the conformance suite and its building blocks.
//!
//! - [`raw`]: a raw-socket peer that writes exact bytes, independent of lynn's own codec.
//! - [`raw_server`]: a hand-written lynn_tcp-like server, for checking clients.
//! - [`app`]: the handlers every scenario needs, described once for every runtime.
//! - [`pki`]: certificates made at test time, for the TLS tests.
//! - [`runtime`]: the traits an adapter implements to join the suite; [`runtimes`] holds
//!   the impls for lynn-tokio, lynn-smol and lynn-blocking.
//! - [`sim`]: a deterministic simulated runtime (in-memory streams, virtual clock, seeded
//!   task order) running the shared server and client, and the scenarios written for it.
//! - [`scenarios`]: the scenarios, each a generic function over the runtime(s) it drives.
//! - [`conformance!`] and [`cross_runtime!`]: instantiate the scenario list as `#[test]`s,
//!   per runtime and for every client × server pair.

pub mod app;
pub mod pki;
pub mod raw;
pub mod raw_server;
pub mod runtime;
pub mod runtimes;
pub mod scenarios;
pub mod sim;
pub mod support;

mod suite;
