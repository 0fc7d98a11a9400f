//! [`Client`]: the shared client ([`lynn_service::Client`]) on [`BlockingRuntime`], with
//! every call blocking the calling thread. Its background task runs on the executor threads
//! ([`crate::runtime`]).

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use async_io::block_on;
use bytes::Bytes;
use lynn_proto::{ClientConfig, ClientError, Message};
use lynn_service::Metrics;
use lynn_service::pushes::RecvError;

use crate::runtime::BlockingRuntime;

/// A lynn client. Cheap to clone (all clones share one connection); when the last clone is
/// dropped, its task closes the connection (flushing what was queued) and ends.
#[derive(Clone, Debug)]
pub struct Client {
    inner: lynn_service::Client<BlockingRuntime>,
}

impl Client {
    /// Connects to `addr` (`host:port`, or `unix:/path` for a Unix socket) with the default
    /// [`ClientConfig`]: one attempt bounded by the connect timeout.
    pub fn connect(addr: impl Into<String>) -> Result<Client, ClientError> {
        let inner = block_on(lynn_service::Client::connect(addr))?;
        Ok(Client { inner })
    }

    /// Connects with `config`: one attempt bounded by `connect_timeout`; later losses are
    /// handled by the reconnect policy.
    pub fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
        let inner = block_on(lynn_service::Client::connect_with(config))?;
        Ok(Client { inner })
    }

    /// Connects over TLS with `config` and `tls` (feature `tls`; see
    /// [`lynn_service::Client::connect_tls`]): every dial, the first and each reconnect,
    /// completes a TLS handshake within `connect_timeout`.
    #[cfg(feature = "tls")]
    pub fn connect_tls(config: ClientConfig, tls: crate::ClientTls) -> Result<Client, ClientError> {
        let inner = block_on(lynn_service::Client::connect_tls(config, tls))?;
        Ok(Client { inner })
    }

    /// Sends one message. Blocks while the send queue is full (the server reads slowly).
    /// While disconnected it is kept in the offline queue (if `config.offline_queue`
    /// allows) or refused with [`ClientError::Disconnected`].
    pub fn send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        block_on(self.inner.send(method, body))
    }

    /// Like [`send`](Self::send), but never blocks for room: when the send queue (or the
    /// queue of calls to the client's task) is full it fails at once with
    /// [`ClientError::QueueFull`]. It only waits for the task's answer.
    pub fn try_send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        block_on(self.inner.try_send(method, body))
    }

    /// Sends a request and waits for its reply (see [`lynn_service::Client::request`]).
    /// Blocks while the send queue is full; while disconnected it waits in the offline
    /// queue like [`send`](Self::send). Fails with [`ClientError::Timeout`]
    /// `request_timeout` after it was sent.
    pub fn request(&self, method: u16, body: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        block_on(self.inner.request(method, body))
    }

    /// The next message that is not a reply (a push); `None` once the client is closed for
    /// good and every push has been taken.
    pub fn recv(&self) -> Option<Message> {
        self.inner.recv_deadline(None).ok()
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        self.inner.recv_deadline(deadline).map_err(|e| match e {
            RecvError::Timeout => RecvTimeoutError::Timeout,
            RecvError::Closed => RecvTimeoutError::Disconnected,
        })
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// Counters of this client's connections (same names as a server's).
    pub fn metrics(&self) -> &Metrics {
        self.inner.metrics()
    }

    /// Closes gracefully: flushes what is queued, closes, never reconnects. Returns when the
    /// connection is closed.
    pub fn close(&self) {
        block_on(self.inner.close());
    }
}
