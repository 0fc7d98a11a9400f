//! [`Client`]: the handle users hold. Every call talks to the client's driver thread (see
//! [`crate::client_driver`]) through one bounded command channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::client_calls::Call;
use lynn_proto::{ClientConfig, ClientError, Message};
use lynn_service::Metrics;
use lynn_service::Pushes;
use lynn_service::client_status::ClientStatus;
use lynn_service::pushes::RecvError;

use crate::client_driver::{self, Cmd, Input};
use crate::handle::lock;

/// What the driver thread publishes for handles to read.
#[derive(Debug)]
pub(crate) struct Status {
    /// Connected or not, counters, and why the client ended.
    pub(crate) core: ClientStatus,
    /// Pushes waiting for `recv`.
    pub(crate) pushes: Pushes,
    /// The driver needs a wake-up when `recv` makes room in the incoming queue.
    pub(crate) incoming_blocked: AtomicBool,
}

#[derive(Debug)]
struct Inner {
    tx: SyncSender<Input>,
    status: Arc<Status>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop at once and close the socket.
        let _ = self.tx.send(Input::Cmd(Cmd::Stop));
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// A lynn client. Cheap to clone (all clones share one connection); dropping the last
/// clone stops its threads and closes the socket.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Commands waiting for the driver before callers block.
const COMMAND_QUEUE: usize = 256;

impl Client {
    /// Connects to `addr` (`host:port`, or `unix:/path` for a Unix socket) with the default
    /// [`ClientConfig`]: one attempt bounded by the connect timeout.
    pub fn connect(addr: impl Into<String>) -> Result<Client, ClientError> {
        Self::connect_with(ClientConfig {
            addr: addr.into(),
            ..ClientConfig::default()
        })
    }

    /// Connects with `config`: one attempt bounded by `connect_timeout`; later losses are
    /// handled by the reconnect policy.
    pub fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let stream = crate::dial::dial(&config)?;
        let (tx, rx) = sync_channel(COMMAND_QUEUE);
        let status = Arc::new(Status {
            core: ClientStatus::default(),
            pushes: Pushes::new(config.incoming_queue, config.push_full),
            incoming_blocked: AtomicBool::new(false),
        });
        let thread = client_driver::spawn(config, stream, tx.clone(), rx, &status)?;
        Ok(Client {
            inner: Arc::new(Inner {
                tx,
                status,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Sends one message. Blocks while the send queue is full (the server reads slowly).
    /// While disconnected it is kept in the offline queue (if `config.offline_queue`
    /// allows) or refused with [`ClientError::Disconnected`].
    pub fn send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let (ack, done) = sync_channel(1);
        let call = Call::Send {
            method,
            body: body.into(),
            wait: true,
            ack,
        };
        self.command(Cmd::Call(call))?;
        done.recv().unwrap_or_else(|_| Err(self.final_error()))
    }

    /// Like [`send`](Self::send), but never blocks for room: when the send queue (or the
    /// queue of calls to the driver thread) is full it fails at once with
    /// [`ClientError::QueueFull`]. It only waits for the driver's answer.
    pub fn try_send(&self, method: u16, body: impl Into<Bytes>) -> Result<(), ClientError> {
        let (ack, done) = sync_channel(1);
        let call = Call::Send {
            method,
            body: body.into(),
            wait: false,
            ack,
        };
        self.inner
            .tx
            .try_send(Input::Cmd(Cmd::Call(call)))
            .map_err(|e| match e {
                TrySendError::Full(_) => ClientError::QueueFull,
                TrySendError::Disconnected(_) => self.final_error(),
            })?;
        done.recv().unwrap_or_else(|_| Err(self.final_error()))
    }

    /// Sends a request and waits for its reply (the next message with the same method; a
    /// lynn server answers in order). Blocks while the send queue is full; while
    /// disconnected it waits in the offline queue like [`send`](Self::send). Fails with
    /// [`ClientError::Timeout`] `request_timeout` after it was sent.
    pub fn request(&self, method: u16, body: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        let (waiter, done) = sync_channel(1);
        let call = Call::Request {
            method,
            body: body.into(),
            waiter,
        };
        self.command(Cmd::Call(call))?;
        done.recv().unwrap_or_else(|_| Err(self.final_error()))
    }

    /// The next message that is not a reply (a push); `None` once the client is closed for
    /// good and every received message has been taken.
    pub fn recv(&self) -> Option<Message> {
        let msg = self.inner.status.pushes.recv_deadline(None).ok();
        self.made_room();
        msg
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        let msg = self.inner.status.pushes.recv_deadline(deadline);
        self.made_room();
        msg.map_err(|e| match e {
            RecvError::Timeout => RecvTimeoutError::Timeout,
            RecvError::Closed => RecvTimeoutError::Disconnected,
        })
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.inner.status.core.is_connected()
    }

    /// Counters of this client's connections (same names as a server's).
    pub fn metrics(&self) -> &Metrics {
        self.inner.status.core.metrics()
    }

    /// Closes gracefully: flushes what is queued, closes, never reconnects. Returns when the
    /// connection is closed.
    pub fn close(&self) {
        let (ack, done) = sync_channel(1);
        if self.command(Cmd::Close { ack }).is_ok() {
            let _ = done.recv();
        }
    }

    fn command(&self, cmd: Cmd) -> Result<(), ClientError> {
        self.inner
            .tx
            .send(Input::Cmd(cmd))
            .map_err(|_| self.final_error())
    }

    fn made_room(&self) {
        if self
            .inner
            .status
            .incoming_blocked
            .swap(false, Ordering::AcqRel)
        {
            match self.inner.tx.try_send(Input::Cmd(Cmd::Wake)) {
                // A full channel wakes the driver anyway.
                Ok(()) | Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
            }
        }
    }

    fn final_error(&self) -> ClientError {
        self.inner.status.core.error()
    }
}
