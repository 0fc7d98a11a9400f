//! [`Client`]: a cloneable handle to one connection kept alive by a background task.

use std::fmt;
use std::sync::Arc;

use async_executor::Task;
use bytes::Bytes;
use lynn_proto::client_calls::Call;
use lynn_proto::reconnect::Reconnect;
use lynn_proto::{ClientConfig, ClientError, ConfigError, Message};
use lynn_service::Metrics;
use lynn_service::Pushes;
use lynn_service::client_status::ClientStatus;

use crate::client_task::ClientTask;
use crate::command::Command;
use crate::dial::dial;

/// Calls waiting for the task before `send`/`request` wait for room (and `try_send`
/// fails with [`ClientError::QueueFull`]).
const COMMAND_QUEUE: usize = 256;

/// A lynn client. Cheap to clone; every clone talks through the same connection. Dropping
/// the last clone stops the background task and closes the socket.
///
/// The background task runs on a small executor of this crate's own (see the crate docs),
/// so a client works under any async runtime.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    cmds: async_channel::Sender<Command>,
    pushes: Arc<Pushes>,
    status: Arc<ClientStatus>,
    _task: Task<()>,
}

impl Client {
    /// Connects to `addr` (`host:port`, or `unix:/path` for a Unix socket) with the default
    /// [`ClientConfig`]. One attempt, bounded by the connect timeout.
    pub async fn connect(addr: impl Into<String>) -> Result<Client, ClientError> {
        let config = ClientConfig::builder().addr(addr).build()?;
        Client::connect_with(config).await
    }

    /// Connects with `config`. The first attempt's failure is returned; later losses are
    /// handled by the reconnect policy.
    pub async fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        if let Some(policy) = &config.reconnect {
            Reconnect::new(policy.clone()).map_err(|e| ConfigError {
                field: "reconnect",
                problem: e.to_string(),
            })?;
        }
        let stream = dial(&config).await?;
        let (cmd_tx, cmd_rx) = async_channel::bounded(COMMAND_QUEUE);
        let pushes = Arc::new(Pushes::new(config.incoming_queue, config.push_full));
        let status = Arc::new(ClientStatus::default());
        status.set_connected(true);
        let task = ClientTask {
            config,
            cmds: Box::pin(cmd_rx),
            pushes: Arc::clone(&pushes),
            status: Arc::clone(&status),
        };
        let task = crate::spawn::spawn(task.run(stream)).map_err(ClientError::Connect)?;
        Ok(Client {
            inner: Arc::new(Inner {
                cmds: cmd_tx,
                pushes,
                status,
                _task: task,
            }),
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
        self.call(Command::Call(call)).await?;
        rx.recv()
            .await
            .unwrap_or_else(|_| Err(self.inner.status.error()))
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
            .cmds
            .try_send(Command::Call(call))
            .map_err(|e| match e {
                async_channel::TrySendError::Full(_) => ClientError::QueueFull,
                async_channel::TrySendError::Closed(_) => self.inner.status.error(),
            })?;
        rx.recv()
            .await
            .unwrap_or_else(|_| Err(self.inner.status.error()))
    }

    /// Sends a request and waits for its reply: the next message from the server with the
    /// same method (lynn servers answer in request order). Waits while the send queue is
    /// full; while disconnected it waits in the offline queue like [`send`](Self::send).
    /// Fails with [`ClientError::Timeout`] `request_timeout` after it was sent,
    /// [`ClientError::Disconnected`] if the connection is lost first.
    pub async fn request(&self, method: u16, body: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        let (waiter, rx) = async_channel::bounded(1);
        let call = Call::Request {
            method,
            body: body.into(),
            waiter,
        };
        self.call(Command::Call(call)).await?;
        rx.recv()
            .await
            .unwrap_or_else(|_| Err(self.inner.status.error()))
    }

    /// The next message that is not a reply (a push from the server). `None` once the
    /// client has ended for good and every push was taken. At most `config.incoming_queue`
    /// pushes wait here; beyond that `config.push_full` decides.
    pub async fn recv(&self) -> Option<Message> {
        self.inner.pushes.recv().await
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.status.is_connected()
    }

    /// Closes gracefully: what was sent is flushed, then the connection closes and does not
    /// come back. Returns when the background task has finished.
    pub async fn close(&self) {
        let (done, finished) = async_channel::bounded::<()>(1);
        if self.inner.cmds.send(Command::Close { done }).await.is_ok() {
            let _ = finished.recv().await;
        }
    }

    /// Counters of this client's connections (same names as a server's).
    pub fn metrics(&self) -> &Metrics {
        self.inner.status.metrics()
    }

    async fn call(&self, cmd: Command) -> Result<(), ClientError> {
        self.inner
            .cmds
            .send(cmd)
            .await
            .map_err(|_| self.inner.status.error())
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}
