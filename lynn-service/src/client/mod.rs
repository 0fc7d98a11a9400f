//! [`Client`]: a connection to a lynn server over any [`Runtime`], written once. An
//! adapter names it with its runtime (`pub type Client = lynn_service::Client<TokioRuntime>`).
//!
//! [`Client::connect_with`] → `send` / `try_send` / `request` / `recv` → `close`. A
//! background task (spawned on the runtime) owns the connection, its heartbeats and
//! timeouts, the reconnect policy and the offline queue; handles talk to it through one
//! bounded channel and get typed answers.

mod dial;
mod io;
mod session;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use lynn_proto::client_calls::Call;
use lynn_proto::reconnect::Reconnect;
use lynn_proto::{ClientConfig, ClientError, ConfigError, Message};

use crate::client_status::ClientStatus;
use crate::runtime::Runtime;
use crate::{Metrics, Pushes};
use session::{Command, Session};

/// Calls waiting for the background task before `send`/`request` wait for room (and
/// `try_send` fails with [`ClientError::QueueFull`]).
const COMMAND_QUEUE: usize = 256;

struct Inner {
    commands: async_channel::Sender<Command>,
    pushes: Arc<Pushes>,
    status: Arc<ClientStatus>,
}

/// A connection to a lynn server, with heartbeats and automatic reconnect. Cheap to clone;
/// when the last clone is dropped, the background task closes the connection (flushing
/// what was queued) and ends.
pub struct Client<R: Runtime> {
    inner: Arc<Inner>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Clone for Client<R> {
    fn clone(&self) -> Self {
        Client {
            inner: Arc::clone(&self.inner),
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime> fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl<R: Runtime> Client<R> {
    /// Connects to `addr` (`host:port`, or `unix:/path`) with default settings: one attempt
    /// bounded by the connect timeout.
    pub async fn connect(addr: impl Into<String>) -> Result<Self, ClientError> {
        let config = ClientConfig::builder().addr(addr).build()?;
        Self::connect_with(config).await
    }

    /// Connects with `config`: one attempt bounded by `config.connect_timeout`; after that
    /// the reconnect policy takes over whenever the connection is lost.
    pub async fn connect_with(config: ClientConfig) -> Result<Self, ClientError> {
        Self::connect_by(config, dial::Plain).await
    }

    /// Connects over TLS with `config` and `tls` (feature `tls`): like
    /// [`connect_with`](Self::connect_with), and every dial (the first, and each reconnect)
    /// completes a TLS handshake within `config.connect_timeout`. The server is verified
    /// against `tls`'s CA certificates, as the host of `config.addr` unless
    /// [`ClientTls::server_name`](crate::tls::ClientTls::server_name) says otherwise (a
    /// Unix socket address needs one). A handshake that fails is
    /// [`ClientError::Connect`] (with the [`HandshakeError`](crate::tls::HandshakeError)
    /// inside), one that runs out of time [`ClientError::ConnectTimeout`].
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        config: ClientConfig,
        tls: crate::tls::ClientTls,
    ) -> Result<Self, ClientError> {
        config.validate()?;
        let dialer = dial::Tls::new(tls, &config)?;
        Self::connect_by(config, dialer).await
    }

    async fn connect_by<D: dial::Dial<R>>(
        config: ClientConfig,
        dialer: D,
    ) -> Result<Self, ClientError> {
        config.validate()?;
        let rt = R::default();
        let mut reconnect = match &config.reconnect {
            Some(policy) => {
                let policy = policy
                    .clone()
                    .with_distinct_seed(crate::reconnect_entropy());
                Some(Reconnect::new(policy).map_err(|e| ConfigError {
                    field: "reconnect",
                    problem: e.to_string(),
                })?)
            }
            None => None,
        };
        let stream = dialer.dial(&rt, &config).await?;
        if let Some(policy) = reconnect.as_mut() {
            let now = rt.now();
            let _ = policy.poll(now);
            policy.handle_connected(now);
        }
        let (commands, command_rx) = async_channel::bounded(COMMAND_QUEUE);
        let pushes = Arc::new(Pushes::new(config.incoming_queue, config.push_full));
        let status = Arc::new(ClientStatus::default());
        status.set_connected(true);
        let session = Session::new(
            rt.clone(),
            dialer,
            config,
            reconnect,
            command_rx,
            pushes.clone(),
            status.clone(),
        );
        rt.spawn(session.run(stream));
        Ok(Client {
            inner: Arc::new(Inner {
                commands,
                pushes,
                status,
            }),
            runtime: PhantomData,
        })
    }

    /// Sends one message. Waits while the send queue is full (the server reads slowly).
    /// While disconnected it is kept in the offline queue (if `config.offline_queue`
    /// allows) or refused with [`ClientError::Disconnected`].
    pub async fn send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let (ack, rx) = async_channel::bounded(1);
        let call = Call::Send {
            method,
            body: body.into(),
            wait: true,
            ack,
        };
        self.command(Command::Call(call)).await?;
        rx.recv().await.map_err(|_| self.inner.status.error())?
    }

    /// Like [`send`](Self::send), but never waits for room: when the send queue (or the
    /// queue of calls to the background task) is full it fails at once with
    /// [`ClientError::QueueFull`]. It only waits for the task's answer.
    pub async fn try_send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let (ack, rx) = async_channel::bounded(1);
        let call = Call::Send {
            method,
            body: body.into(),
            wait: false,
            ack,
        };
        self.inner
            .commands
            .try_send(Command::Call(call))
            .map_err(|e| match e {
                async_channel::TrySendError::Full(_) => ClientError::QueueFull,
                async_channel::TrySendError::Closed(_) => self.inner.status.error(),
            })?;
        rx.recv().await.map_err(|_| self.inner.status.error())?
    }

    /// Sends a request and waits for its reply: the reply tagged with its correlation id
    /// (`config.correlation_ids`), or else the next message from the server with the same
    /// method (lynn servers answer in request order). Waits while the send queue is full;
    /// while disconnected it waits in the offline queue like [`send`](Self::send). Fails with
    /// [`ClientError::Timeout`] `config.request_timeout` after it was sent; see
    /// [`lynn_proto::client_calls`] for what a timeout does to other requests in each mode.
    pub async fn request(&self, method: u16, body: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        let (waiter, rx) = async_channel::bounded(1);
        let call = Call::Request {
            method,
            body: body.into(),
            waiter,
        };
        self.command(Command::Call(call)).await?;
        rx.recv().await.map_err(|_| self.inner.status.error())?
    }

    /// The next message that is not a reply to a request (a push); `None` once the client
    /// is closed for good and every push was taken. At most `config.incoming_queue` pushes
    /// wait here; beyond that `config.push_full` decides.
    pub async fn recv(&self) -> Option<Message> {
        self.inner.pushes.recv().await
    }

    /// [`recv`](Self::recv) for a thread: blocks it until a push comes or `deadline`
    /// (`None`: no deadline) passes.
    pub fn recv_deadline(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> Result<Message, crate::pushes::RecvError> {
        self.inner.pushes.recv_deadline(deadline)
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.status.is_connected()
    }

    /// Counters of this client's connections (same names as a server's).
    pub fn metrics(&self) -> &Metrics {
        self.inner.status.metrics()
    }

    /// Closes gracefully: queued output is flushed, the connection closed, no reconnect.
    pub async fn close(&self) {
        let (done, rx) = async_channel::bounded(1);
        if self.command(Command::Close { done }).await.is_ok() {
            let _ = rx.recv().await;
        }
    }

    async fn command(&self, cmd: Command) -> Result<(), ClientError> {
        self.inner
            .commands
            .send(cmd)
            .await
            .map_err(|_| self.inner.status.error())
    }
}
