//! The runtime-facing traits: what the suite needs from an adapter's server and client.
//!
//! Scenarios drive everything synchronously. Async runtimes run their servers on their own
//! executor threads and block on client calls. Adding a runtime to the suite means
//! implementing [`Runtime`] (with a [`ServerUnderTest`] and a [`ClientUnderTest`]) and
//! adding one line to `tests/conformance.rs` and `tests/cross_runtime.rs`; implementing
//! [`TlsRuntime`](crate::runtimes::TlsRuntime) as well runs the suite over TLS on it as
//! [`Tls<R>`](crate::runtimes::Tls).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::{ClientConfig, ClientError, Message, ServerConfig, ServerError};
use lynn_service::Metrics;

use crate::app::App;
use crate::runtimes::SuiteTls;

/// One adapter: how to start its server and connect its client.
pub trait Runtime: 'static {
    /// A running server.
    type Server: ServerUnderTest;
    /// A connected client.
    type Client: ClientUnderTest;

    /// Short name, for messages.
    fn name() -> &'static str;

    /// The TLS its servers and clients speak, `None` for plain TCP (the default). Raw peers
    /// ([`RawPeer::connect_for`](crate::raw::RawPeer::connect_for)) speak what it says.
    fn tls() -> Option<&'static SuiteTls> {
        None
    }

    /// Binds a server with `config` serving `app` and starts serving it in the background.
    fn start_server(config: ServerConfig, app: App) -> Result<Self::Server, ServerError>;

    /// Connects a client (one attempt bounded by `config.connect_timeout`).
    fn connect(config: ClientConfig) -> Result<Self::Client, ClientError>;
}

/// A server running in the background. Dropping it starts a shutdown without waiting.
pub trait ServerUnderTest: Send + 'static {
    /// The TCP address it listens on.
    fn addr(&self) -> SocketAddr;

    /// Where its metrics endpoint listens, if `config.metrics_addr` was set.
    fn metrics_addr(&self) -> Option<SocketAddr>;

    /// Its metrics.
    fn metrics(&self) -> Arc<Metrics>;

    /// Open connections, from the server handle.
    fn connection_count(&self) -> usize;

    /// Pushes `body` to every connection from outside any handler; returns the count.
    fn broadcast(&self, method: u16, body: Bytes) -> usize;

    /// Shuts down gracefully and waits until serving has ended. Panics if it does not end
    /// within a generous deadline.
    fn stop(self);
}

/// A connected client, driven synchronously.
pub trait ClientUnderTest: Send + Sync + 'static {
    /// Sends one message, waiting for room in the send queue.
    fn send(&self, method: u16, body: Bytes) -> Result<(), ClientError>;

    /// Sends one message if the send queue has room, else fails at once with
    /// `ClientError::QueueFull`.
    fn try_send(&self, method: u16, body: Bytes) -> Result<(), ClientError>;

    /// Sends a request and waits for its reply.
    fn request(&self, method: u16, body: Bytes) -> Result<Bytes, ClientError>;

    /// The next push, waiting at most `timeout`.
    fn recv_timeout(&self, timeout: Duration) -> Option<Message>;

    /// Whether the connection is up now.
    fn is_connected(&self) -> bool;

    /// The client's counters.
    fn metrics(&self) -> &Metrics;

    /// Closes gracefully.
    fn close(&self);
}
