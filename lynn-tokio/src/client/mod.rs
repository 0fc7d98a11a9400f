//! The client: [`Client::connect`] → `send` / `request` / `recv` → `close`.

mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lynn_proto::reconnect::Reconnect;
use lynn_proto::{ClientConfig, ClientError, CloseReason, ConfigError, Instant, Message};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::stream::Stream;
use worker::{Command, Worker};

/// Commands waiting for the background task before `send`/`request` wait for room.
const COMMAND_QUEUE: usize = 256;

/// How a client ended for good.
#[derive(Clone, Debug)]
pub(crate) enum End {
    Closed(Option<CloseReason>),
    GaveUp(u32),
}

/// State the handles share with the background task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) connected: AtomicBool,
    pub(crate) end: Mutex<Option<End>>,
}

impl Shared {
    fn end_error(&self) -> ClientError {
        let end = self.end.lock().map(|e| e.clone()).unwrap_or(None);
        match end {
            Some(End::GaveUp(attempts)) => ClientError::GaveUp { attempts },
            Some(End::Closed(reason)) => ClientError::Closed(reason),
            None => ClientError::Closed(None),
        }
    }
}

struct Inner {
    commands: mpsc::Sender<Command>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<Message>>,
    shared: Arc<Shared>,
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
    pub async fn connect_with(mut config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let mut reconnect = match config.reconnect.as_mut() {
            Some(policy) => {
                policy.seed ^= distinct_seed();
                let policy = Reconnect::new(policy.clone()).map_err(|e| ConfigError {
                    field: "reconnect",
                    problem: e.to_string(),
                })?;
                Some(policy)
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
        let (incoming_tx, incoming) = mpsc::channel(config.incoming_queue);
        let shared = Arc::new(Shared::default());
        shared.connected.store(true, Ordering::Release);
        let worker = Worker::new(config, reconnect, command_rx, incoming_tx, shared.clone());
        let task = tokio::spawn(worker.run(stream));
        Client {
            inner: Arc::new(Inner {
                commands,
                incoming: tokio::sync::Mutex::new(incoming),
                shared,
                task,
            }),
        }
    }

    /// Sends one message. While disconnected it is kept in the offline queue (if
    /// `config.offline_queue` allows) or refused with [`ClientError::Disconnected`].
    pub async fn send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let (done, rx) = oneshot::channel();
        let body = body.into();
        self.command(Command::Send { method, body, done }).await?;
        rx.await.map_err(|_| self.inner.shared.end_error())?
    }

    /// Sends a request and waits for its reply: the next message from the server with the
    /// same method (lynn servers answer in request order). Fails with
    /// [`ClientError::Timeout`] after `config.request_timeout`.
    pub async fn request(&self, method: u16, body: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        let (reply, rx) = oneshot::channel();
        let body = body.into();
        self.command(Command::Request {
            method,
            body,
            reply,
        })
        .await?;
        rx.await.map_err(|_| self.inner.shared.end_error())?
    }

    /// The next message that is not a reply to a request (a push); `None` once the client
    /// is closed for good and every received message was taken.
    pub async fn recv(&self) -> Option<Message> {
        self.inner.incoming.lock().await.recv().await
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.connected.load(Ordering::Acquire)
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
            .map_err(|_| self.inner.shared.end_error())
    }
}

/// A jitter seed that differs between processes and between clients of one process (the
/// core reads no randomness, so the runtime supplies it).
fn distinct_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (u64::from(std::process::id()) << 32) ^ nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
