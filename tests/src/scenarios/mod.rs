//! The conformance scenarios, each written once as a generic function.
//!
//! Server scenarios take one runtime `R` and talk to its server with raw peers
//! ([`crate::raw`]) or its own client. Client scenarios take a client runtime `C` and a
//! server runtime `S`, and run for every pair.
//!
//! A scenario closes its peers and clients before `server.stop()`: a peer left open holds
//! the stop for the whole lingering close of its connection (2 s), which is not what the
//! scenario checks (`shutdown` keeps them open on purpose).

pub mod backpressure;
pub mod bad_frames;
pub mod broadcast;
pub mod echo;
pub mod events;
pub mod framing;
pub mod limits;
pub mod liveness;
pub mod load;
pub mod marks;
pub mod metrics;
pub mod reconnect;
pub mod requests;
pub mod shutdown;
pub mod slow_peer;
pub mod sync_routes;
