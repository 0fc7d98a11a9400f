//! [`Client`]: a cloneable handle to one connection kept alive by a background task.

use std::fmt;
use std::sync::Arc;

use async_executor::Task;
use bytes::Bytes;
use lynn_proto::codec::max_body_len;
use lynn_proto::reconnect::Reconnect;
use lynn_proto::{ClientConfig, ClientError, ConfigError, EncodeError, Message, Metrics};

use crate::client_task::{ClientShared, ClientTask};
use crate::command::Command;
use crate::dial::dial;

/// Calls that may wait for the task at once before callers wait for room.
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
    incoming: async_channel::Receiver<Message>,
    shared: Arc<ClientShared>,
    max_body: u64,
    _task: Task<()>,
}

impl Client {
    /// Connects to `addr` (`host:port`, or `unix:/path` for a Unix socket) with the default
    /// [`ClientConfig`]. One attempt, bounded by the connect timeout.
    pub async fn connect(addr: impl Into<String>) -> Result<Client, ClientError> {
        let config = ClientConfig {
            addr: addr.into(),
            ..ClientConfig::default()
        };
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
        let (in_tx, in_rx) = async_channel::bounded(config.incoming_queue);
        let shared = Arc::new(ClientShared::default());
        shared.set_connected(true);
        let max_body = max_body_len(config.connection.peer_max_frame_len);
        let task = ClientTask {
            config,
            cmds: Box::pin(cmd_rx),
            incoming: in_tx,
            shared: Arc::clone(&shared),
        };
        let task = crate::spawn::spawn(task.run(stream)).map_err(ClientError::Connect)?;
        Ok(Client {
            inner: Arc::new(Inner {
                cmds: cmd_tx,
                incoming: in_rx,
                shared,
                max_body,
                _task: task,
            }),
        })
    }

    /// Sends one message. Waits while the send queue is full (the server is slow);
    /// while disconnected, queues it in the offline queue or fails with
    /// [`ClientError::Disconnected`].
    pub async fn send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let body = self.checked(body.into())?;
        let (ack, rx) = async_channel::bounded(1);
        self.call(Command::Send { method, body, ack }).await?;
        rx.recv()
            .await
            .unwrap_or_else(|_| Err(self.inner.shared.ended()))
    }

    /// Sends one message and waits for the reply: the next message from the server with
    /// the same method (lynn servers answer in request order). Fails with
    /// [`ClientError::Timeout`] after `request_timeout`, [`ClientError::Disconnected`] if the
    /// connection is lost first.
    pub async fn request(&self, method: u16, body: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        let body = self.checked(body.into())?;
        let (reply, rx) = async_channel::bounded(1);
        self.call(Command::Request {
            method,
            body,
            reply,
        })
        .await?;
        rx.recv()
            .await
            .unwrap_or_else(|_| Err(self.inner.shared.ended()))
    }

    /// The next message that is not a reply (a push from the server). `None` once the
    /// client has ended for good and every received message was taken.
    pub async fn recv(&self) -> Option<Message> {
        self.inner.incoming.recv().await.ok()
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.is_connected()
    }

    /// Closes gracefully: what was sent is flushed, then the connection closes and does not
    /// come back. Returns when the background task has finished.
    pub async fn close(&self) {
        let (done, finished) = async_channel::bounded::<()>(1);
        if self.inner.cmds.send(Command::Close { done }).await.is_ok() {
            let _ = finished.recv().await;
        }
    }

    /// Counters of this client's connections (same names as the server's).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.shared.metrics
    }

    fn checked(&self, body: Bytes) -> Result<Bytes, ClientError> {
        if body.len() as u64 > self.inner.max_body {
            return Err(ClientError::Encode(EncodeError::BodyTooLarge {
                body_len: body.len(),
                max_body_len: self.inner.max_body,
            }));
        }
        Ok(body)
    }

    async fn call(&self, cmd: Command) -> Result<(), ClientError> {
        self.inner
            .cmds
            .send(cmd)
            .await
            .map_err(|_| self.inner.shared.ended())
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}
