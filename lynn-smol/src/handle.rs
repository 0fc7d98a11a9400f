//! [`ServerHandle`]: reaching connections from anywhere (handlers, other tasks, threads).
//!
//! The registry lock is taken once per send, broadcast, join, leave, connect and close, never
//! once per recipient and never on the request/reply path (that stays inside each
//! connection's task). A broadcast is encoded once and the bytes are shared.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lynn_proto::groups::GroupError;
use lynn_proto::{ConnectionId, PeerAddr, SendToError, ServerConfig};
use lynn_service::Metrics;
use lynn_service::SharedAdmission;
use lynn_service::switchboard::{Mailbox, Refused, Switchboard};
use lynn_service::{Outbound, Target};

use crate::doorbell::Doorbell;

/// What the connection table keeps per connection.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The connection's outbound channel, bounded by `limit` in [`offer`](Mailbox::offer).
    /// Not an `async_channel::bounded` one: that allocates its whole capacity up front
    /// (~48 KiB per connection for the default 1,024 commands), where this allocates
    /// nothing until a command is queued.
    pub(crate) tx: async_channel::Sender<Outbound>,
    /// Most commands queued (`outbound_queue`). Concurrent senders each check it before
    /// sending, so the queue may exceed it by at most one command per sending thread.
    pub(crate) limit: usize,
    /// Rung after every command queued, and to ask the connection to close gracefully.
    pub(crate) bell: Arc<Doorbell>,
    /// Where it comes from.
    pub(crate) addr: PeerAddr,
}

impl Mailbox for Peer {
    fn offer(&self, out: Outbound) -> Result<(), Refused> {
        if self.tx.len() >= self.limit && !self.tx.is_closed() {
            return Err(Refused::Full);
        }
        self.tx.try_send(out).map_err(|e| match e {
            async_channel::TrySendError::Full(_) => Refused::Full,
            async_channel::TrySendError::Closed(_) => Refused::Closed,
        })?;
        self.bell.ring();
        Ok(())
    }

    fn peer(&self) -> &PeerAddr {
        &self.addr
    }

    fn close(&self) -> bool {
        // Whether the task is there is read before the request, never after: the request
        // may end the connection at once (nothing in flight, nothing to flush), and a task
        // that ended drops its receiver, so a check after it could see the connection gone
        // because of this very request.
        if self.tx.is_closed() {
            return false;
        }
        self.bell.request_close();
        true
    }
}

pub(crate) struct HandleInner {
    pub(crate) board: Arc<Switchboard<Peer>>,
    pub(crate) admission: SharedAdmission,
    shutdown_tx: async_channel::Sender<()>,
    shutdown_rx: async_channel::Receiver<()>,
}

/// A cheap, cloneable handle to a running server: send to one connection, broadcast,
/// manage groups, list and close connections, shut the server down, read its metrics.
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) inner: Arc<HandleInner>,
}

impl ServerHandle {
    pub(crate) fn new(config: &ServerConfig, admission: SharedAdmission) -> Self {
        let (shutdown_tx, shutdown_rx) = async_channel::bounded(1);
        ServerHandle {
            inner: Arc::new(HandleInner {
                board: Arc::new(Switchboard::new(config, Arc::new(Metrics::default()))),
                admission,
                shutdown_tx,
                shutdown_rx,
            }),
        }
    }

    /// Queues one message for connection `id`. Never waits: a full outbound queue is an
    /// error.
    pub fn send(
        &self,
        id: ConnectionId,
        method: u16,
        body: impl Into<Bytes>,
    ) -> Result<(), SendToError> {
        self.inner.board.send(id, method, body.into())
    }

    /// Sends to every open connection; returns how many got it queued.
    pub fn broadcast(&self, method: u16, body: impl Into<Bytes>) -> usize {
        self.fanout(Target::All, method, body)
    }

    /// Sends to every member of `group`; returns how many got it queued.
    pub fn broadcast_group(&self, group: &str, method: u16, body: impl Into<Bytes>) -> usize {
        self.fanout(Target::Group(group.to_owned()), method, body)
    }

    /// Sends to `target`: encoded once, the bytes shared by every recipient. A recipient
    /// whose outbound queue is full is skipped (and counted in
    /// `lynn_send_queue_full_total`); it never blocks the others. Returns how many got it
    /// queued. A body too large for the peers' frame limit reaches nobody (logged).
    pub fn fanout(&self, target: Target, method: u16, body: impl Into<Bytes>) -> usize {
        self.inner
            .board
            .fanout(&target, method, &body.into())
            .unwrap_or_else(|e| {
                tracing::warn!(method, error = %e, "fanout not sent");
                0
            })
    }

    /// Adds connection `id` to `group`. `Ok(false)`: already a member, or not connected.
    pub fn join(&self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        self.inner.board.join(group, id)
    }

    /// Removes connection `id` from `group`; returns whether it was a member.
    pub fn leave(&self, group: &str, id: ConnectionId) -> bool {
        self.inner.board.leave(group, id)
    }

    /// Open connections and their peers.
    pub fn connections(&self) -> Vec<(ConnectionId, PeerAddr)> {
        self.inner.board.connections()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.inner.board.len()
    }

    /// Closes connection `id` gracefully (requests in flight are answered, output flushed).
    /// Returns whether it was open.
    pub fn close(&self, id: ConnectionId) -> bool {
        self.inner.board.close(id)
    }

    /// Starts a graceful shutdown of the whole server: stop accepting, close every
    /// connection gracefully, wait up to `shutdown_timeout`. [`Server::serve`] returns when
    /// it is done.
    ///
    /// [`Server::serve`]: crate::Server::serve
    pub fn shutdown(&self) {
        self.inner.shutdown_tx.close();
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown_tx.is_closed()
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.inner.board.metrics()
    }

    /// A receiver that ends (`recv` fails) once shutdown starts.
    pub(crate) fn shutdown_signal(&self) -> async_channel::Receiver<()> {
        self.inner.shutdown_rx.clone()
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("connections", &self.connection_count())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::task::{Context, Poll, Wake, Waker};

    use super::*;

    /// A connection task that ends the moment it is woken, as one with nothing in flight
    /// and nothing to flush does on a close request: its receiver is dropped.
    struct EndsOnWake(Mutex<Option<async_channel::Receiver<Outbound>>>);

    impl Wake for EndsOnWake {
        fn wake(self: Arc<Self>) {
            self.0.lock().unwrap().take();
        }
    }

    #[test]
    fn a_close_that_ends_the_connection_at_once_reports_it_open() {
        let (tx, rx) = async_channel::unbounded();
        let peer = Peer {
            tx,
            limit: 4,
            bell: Arc::new(Doorbell::default()),
            addr: PeerAddr::Unix(None),
        };
        let task = Arc::new(EndsOnWake(Mutex::new(Some(rx))));
        let waker = Waker::from(Arc::clone(&task));
        // The task waits on its doorbell.
        let idle = peer
            .bell
            .poll(&Context::from_waker(&waker), true, || Poll::<()>::Pending);
        assert!(idle.is_pending());
        assert!(peer.close(), "open when asked");
        assert!(task.0.lock().unwrap().is_none(), "the request ended it");
        assert!(!peer.close(), "gone now");
    }
}
