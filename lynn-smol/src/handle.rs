//! [`ServerHandle`]: reaching connections from anywhere (handlers, other tasks, threads).
//!
//! The registry lock is taken once per send, broadcast, join, leave, connect and close, never
//! once per recipient and never on the request/reply path (that stays inside each
//! connection's task). A broadcast is encoded once and the bytes are shared.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use lynn_proto::admission::{Admission, Permit, Rejection};
use lynn_proto::codec::{self, FrameKind};
use lynn_proto::groups::GroupError;
use lynn_proto::{
    ConnectionId, ConnectionStats, EncodeError, Instant, Marks, Metrics, Outbound, PeerAddr,
    Registry, SendToError, Target,
};

/// What the registry keeps per connection.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The connection's bounded outbound channel.
    pub(crate) tx: async_channel::Sender<Outbound>,
    /// Closed to ask the connection to close gracefully (never full, never blocks).
    pub(crate) close: async_channel::Sender<()>,
    /// Where it comes from.
    pub(crate) addr: Arc<PeerAddr>,
}

pub(crate) struct HandleInner {
    registry: Mutex<Registry<Peer>>,
    admission: Mutex<Admission>,
    metrics: Arc<Metrics>,
    marks: Marks,
    peer_max_frame_len: u64,
    shutdown_tx: async_channel::Sender<()>,
    shutdown_rx: async_channel::Receiver<()>,
}

/// A cheap, cloneable handle to a running server: send to one connection, broadcast,
/// manage groups, list and close connections, shut the server down, read its metrics.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<HandleInner>,
}

/// Locks a mutex, carrying on after a panic elsewhere (the tables stay consistent: every
/// critical section is a single table call).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ServerHandle {
    pub(crate) fn new(
        registry: Registry<Peer>,
        admission: Admission,
        metrics: Arc<Metrics>,
        marks: Marks,
        peer_max_frame_len: u64,
    ) -> Self {
        let (shutdown_tx, shutdown_rx) = async_channel::bounded(1);
        ServerHandle {
            inner: Arc::new(HandleInner {
                registry: Mutex::new(registry),
                admission: Mutex::new(admission),
                metrics,
                marks,
                peer_max_frame_len,
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
        let body = body.into();
        self.check_size(body.len())?;
        let registry = lock(&self.inner.registry);
        let peer = registry.get(id).ok_or(SendToError::UnknownConnection(id))?;
        peer.tx
            .try_send(Outbound::Message { method, body })
            .map_err(|e| match e {
                async_channel::TrySendError::Full(_) => SendToError::QueueFull(id),
                async_channel::TrySendError::Closed(_) => SendToError::UnknownConnection(id),
            })
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
        let body = body.into();
        let frame = match codec::encode_to_bytes(
            self.inner.marks,
            FrameKind::Message,
            method,
            &body,
            self.inner.peer_max_frame_len,
        ) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(method, error = %e, "fanout not sent");
                return 0;
            }
        };
        let (mut sent, mut skipped) = (0, 0u64);
        lock(&self.inner.registry).for_each_recipient(&target, |_, peer| {
            match peer.tx.try_send(Outbound::Encoded(frame.clone())) {
                Ok(()) => sent += 1,
                Err(_) => skipped += 1,
            }
        });
        if skipped > 0 {
            tracing::debug!(
                method,
                skipped,
                "fanout skipped full or closing connections"
            );
            self.inner.metrics.add(&ConnectionStats {
                send_refused: skipped,
                ..ConnectionStats::default()
            });
        }
        sent
    }

    /// Adds connection `id` to `group`. `Ok(false)`: already a member, or not connected.
    pub fn join(&self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        lock(&self.inner.registry).join(group, id)
    }

    /// Removes connection `id` from `group`; returns whether it was a member.
    pub fn leave(&self, group: &str, id: ConnectionId) -> bool {
        lock(&self.inner.registry).leave(group, id)
    }

    /// Open connections and their peers.
    pub fn connections(&self) -> Vec<(ConnectionId, PeerAddr)> {
        let registry = lock(&self.inner.registry);
        let mut all = Vec::with_capacity(registry.len());
        registry.for_each_recipient(&Target::All, |id, peer| {
            all.push((id, (*peer.addr).clone()))
        });
        all
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.registry).len()
    }

    /// Closes connection `id` gracefully (requests in flight are answered, output flushed).
    /// Returns whether it was open.
    pub fn close(&self, id: ConnectionId) -> bool {
        match lock(&self.inner.registry).get(id) {
            Some(peer) => {
                peer.close.close();
                true
            }
            None => false,
        }
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
        &self.inner.metrics
    }

    /// A receiver that ends (`recv` fails) once shutdown starts.
    pub(crate) fn shutdown_signal(&self) -> async_channel::Receiver<()> {
        self.inner.shutdown_rx.clone()
    }

    pub(crate) fn admit(&self, peer: &PeerAddr) -> Result<Permit, Rejection> {
        lock(&self.inner.admission).try_admit(peer.admission_ip(), Instant::now())
    }

    pub(crate) fn release(&self, permit: Permit) {
        lock(&self.inner.admission).release(permit);
    }

    pub(crate) fn register(&self, peer: Peer) -> ConnectionId {
        lock(&self.inner.registry).insert(peer)
    }

    pub(crate) fn unregister(&self, id: ConnectionId) {
        lock(&self.inner.registry).remove(id);
    }

    fn check_size(&self, body_len: usize) -> Result<(), EncodeError> {
        let max = codec::max_body_len(self.inner.peer_max_frame_len);
        if body_len as u64 > max {
            return Err(EncodeError::BodyTooLarge {
                body_len,
                max_body_len: max,
            });
        }
        Ok(())
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
