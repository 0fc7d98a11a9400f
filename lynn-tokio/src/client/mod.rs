//! The client: [`Client::connect`] → `send` / `request` / `recv` → `close`.

mod worker;

use std::sync::Arc;

use bytes::Bytes;
use lynn_proto::client_calls::Call;
use lynn_proto::reconnect::Reconnect;
use lynn_proto::{ClientConfig, ClientError, ConfigError, Instant, Message};
use lynn_service::Metrics;
use lynn_service::Pushes;
use lynn_service::client_status::ClientStatus;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::stream::Stream;
use worker::{Command, Worker};

/// Calls waiting for the background task before `send`/`request` wait for room (and
/// `try_send` fails with [`ClientError::QueueFull`]).
const COMMAND_QUEUE: usize = 256;

struct Inner {
    commands: mpsc::Sender<Command>,
    pushes: Arc<Pushes>,
    status: Arc<ClientStatus>,
    task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: cancel the background task, which closes the socket.
        self.task.abort();
    }
}

/// A connection to a lynn server, with heartbeats and automatic reconnect. Cheap to clone;
/// dropping the last clone cancels the background task and closes the socket.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// Connects to `addr` (`host:port`, or `unix:/path`) with default settings: one attempt
    /// bounded by the connect timeout.
    pub async fn connect(addr: impl Into<String>) -> Result<Client, ClientError> {
        let config = ClientConfig::builder().addr(addr).build()?;
        Client::connect_with(config).await
    }

    /// Connects with `config`: one attempt bounded by `config.connect_timeout`; after that
    /// the reconnect policy takes over whenever the connection is lost.
    pub async fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let mut reconnect = match &config.reconnect {
            Some(policy) => {
                let policy = policy
                    .clone()
                    .with_distinct_seed(lynn_service::reconnect_entropy());
                Some(Reconnect::new(policy).map_err(|e| ConfigError {
                    field: "reconnect",
                    problem: e.to_string(),
                })?)
            }
            None => None,
        };
        let stream = worker::dial(&config).await?;
        if let Some(policy) = reconnect.as_mut() {
            let now = Instant::now();
            let _ = policy.poll(now);
            policy.handle_connected(now);
        }
        Ok(Client::start(config, reconnect, stream))
    }

    fn start(config: ClientConfig, reconnect: Option<Reconnect>, stream: Stream) -> Client {
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let pushes = Arc::new(Pushes::new(config.incoming_queue, config.push_full));
        let status = Arc::new(ClientStatus::default());
        status.set_connected(true);
        let worker = Worker::new(
            config,
            reconnect,
            command_rx,
            pushes.clone(),
            status.clone(),
        );
        let task = tokio::spawn(worker.run(stream));
        Client {
            inner: Arc::new(Inner {
                commands,
                pushes,
                status,
                task,
            }),
        }
    }

    /// Sends one message. Waits while the send queue is full (the server reads slowly).
    /// While disconnected it is kept in the offline queue (if `config.offline_queue`
    /// allows) or refused with [`ClientError::Disconnected`].
    pub async fn send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let (ack, rx) = oneshot::channel();
        let body = body.into();
        let call = Call::Send {
            method,
            body,
            wait: true,
            ack,
        };
        self.command(Command::Call(call)).await?;
        rx.await.map_err(|_| self.inner.status.error())?
    }

    /// Like [`send`](Self::send), but never waits for room: when the send queue (or the
    /// queue of calls to the background task) is full it fails at once with
    /// [`ClientError::QueueFull`]. It only waits for the task's answer.
    pub async fn try_send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let (ack, rx) = oneshot::channel();
        let body = body.into();
        let call = Call::Send {
            method,
            body,
            wait: false,
            ack,
        };
        self.inner
            .commands
            .try_send(Command::Call(call))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ClientError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => self.inner.status.error(),
            })?;
        rx.await.map_err(|_| self.inner.status.error())?
    }

    /// Sends a request and waits for its reply: the reply tagged with its correlation id
    /// (`config.correlation_ids`), or else the next message from the server with the same
    /// method (lynn servers answer in request order). Waits while the send queue is full;
    /// while disconnected it waits in the offline queue like [`send`](Self::send). Fails with
    /// [`ClientError::Timeout`] `config.request_timeout` after it was sent; see
    /// [`lynn_proto::client_calls`] for what a timeout does to other requests in each mode.
    pub async fn request(&self, method: u16, body: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        let (waiter, rx) = oneshot::channel();
        let body = body.into();
        let call = Call::Request {
            method,
            body,
            waiter,
        };
        self.command(Command::Call(call)).await?;
        rx.await.map_err(|_| self.inner.status.error())?
    }

    /// The next message that is not a reply to a request (a push); `None` once the client
    /// is closed for good and every push was taken. At most `config.incoming_queue` pushes
    /// wait here; beyond that `config.push_full` decides.
    pub async fn recv(&self) -> Option<Message> {
        self.inner.pushes.recv().await
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.status.is_connected()
    }

    /// Counters of this client's connections (same names as a server's).
    pub fn metrics(&self) -> &Metrics {
        self.inner.status.metrics()
    }

    /// Closes gracefully: queued output is flushed, the socket closed, no reconnect.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.command(Command::Close { done }).await.is_ok() {
            let _ = rx.await;
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
