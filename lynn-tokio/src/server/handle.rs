//! [`ServerHandle`]: reach connections from anywhere (handlers, other tasks, other threads).
//!
//! The registry maps each [`ConnectionId`] to the sending half of that connection's bounded
//! outbound channel. It is locked once per direct send, once per fanout (never once per
//! recipient) and once per connect, disconnect, join and leave. Request/reply never touches
//! it: a reply goes straight into the sender's own `Connection`, inside its own task.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use lynn_proto::admission::Admission;
use lynn_proto::codec::{self, FrameKind, Marks};
use lynn_proto::groups::GroupError;
use lynn_proto::{ConnectionId, Metrics, Outbound, PeerAddr, Registry, SendToError, Target};
use tokio::sync::{mpsc, watch};

/// What the registry keeps per connection.
pub(crate) type Entry = (mpsc::Sender<Outbound>, PeerAddr);

/// State shared by the accept loop, every connection task and every handle.
pub(crate) struct Shared {
    pub(crate) registry: Mutex<Registry<Entry>>,
    pub(crate) admission: Mutex<Admission>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) marks: Marks,
    pub(crate) peer_max_frame_len: u64,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) runtime: tokio::runtime::Handle,
}

/// Locks `m`, recovering the data if a thread panicked while holding it (the tables stay
/// consistent: every mutation is a single call into lynn-proto).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Completes once a shutdown has started (or the server is gone).
pub(crate) async fn shutdown_started(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|started| *started).await;
}

/// A cheap, cloneable handle to a running server.
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("connections", &self.connection_count())
            .finish()
    }
}

impl ServerHandle {
    /// Queues one message for connection `id`. Never waits: a full outbound queue refuses.
    pub fn send(
        &self,
        id: ConnectionId,
        method: u16,
        body: impl Into<Bytes>,
    ) -> Result<(), SendToError> {
        let body = body.into();
        let max = codec::max_body_len(self.shared.peer_max_frame_len);
        if body.len() as u64 > max {
            return Err(lynn_proto::EncodeError::BodyTooLarge {
                body_len: body.len(),
                max_body_len: max,
            }
            .into());
        }
        let tx = {
            let reg = lock(&self.shared.registry);
            reg.get(id)
                .map(|(tx, _)| tx.clone())
                .ok_or(SendToError::UnknownConnection(id))?
        };
        tx.try_send(Outbound::Message { method, body })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SendToError::QueueFull(id),
                mpsc::error::TrySendError::Closed(_) => SendToError::UnknownConnection(id),
            })
    }

    /// Sends one message to every open connection; returns how many got it queued.
    pub fn broadcast(&self, method: u16, body: impl Into<Bytes>) -> usize {
        self.fanout(Target::All, method, body)
    }

    /// Sends one message to every member of `group`; returns how many got it queued.
    pub fn broadcast_group(&self, group: &str, method: u16, body: impl Into<Bytes>) -> usize {
        self.fanout(Target::Group(group.into()), method, body)
    }

    /// Sends one message to `target`: encoded once, the bytes shared by every recipient,
    /// one registry lock in all. A recipient whose outbound queue is full is skipped (and
    /// counted in the send-refused metric); it never holds up the others. Returns how many
    /// recipients got it queued (0 when the body is too large for the peers).
    pub fn fanout(&self, target: Target, method: u16, body: impl Into<Bytes>) -> usize {
        let body = body.into();
        let frame = match codec::encode_to_bytes(
            self.shared.marks,
            FrameKind::Message,
            method,
            &body,
            self.shared.peer_max_frame_len,
        ) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(method, error = %e, "fanout refused");
                return 0;
            }
        };
        let mut sent = 0;
        let mut skipped = 0u64;
        lock(&self.shared.registry).for_each_recipient(&target, |_, (tx, _)| {
            match tx.try_send(Outbound::Encoded(frame.clone())) {
                Ok(()) => sent += 1,
                Err(_) => skipped += 1,
            }
        });
        if skipped > 0 {
            self.shared.metrics.add(&lynn_proto::ConnectionStats {
                send_refused: skipped,
                ..Default::default()
            });
        }
        sent
    }

    /// Adds connection `id` to `group`; `Ok(false)` if already a member or not connected.
    pub fn join(&self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        lock(&self.shared.registry).join(group, id)
    }

    /// Removes connection `id` from `group`; returns whether it was a member.
    pub fn leave(&self, group: &str, id: ConnectionId) -> bool {
        lock(&self.shared.registry).leave(group, id)
    }

    /// The open connections and their peers.
    pub fn connections(&self) -> Vec<(ConnectionId, PeerAddr)> {
        let reg = lock(&self.shared.registry);
        reg.ids()
            .filter_map(|id| reg.get(id).map(|(_, peer)| (id, peer.clone())))
            .collect()
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.registry).len()
    }

    /// Closes connection `id` gracefully (its requests in flight finish and are flushed).
    /// Returns whether the connection was open.
    pub fn close(&self, id: ConnectionId) -> bool {
        let Some(tx) = lock(&self.shared.registry)
            .get(id)
            .map(|(tx, _)| tx.clone())
        else {
            return false;
        };
        match tx.try_send(Outbound::Close) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                // The queue is bounded; the close waits for room without blocking the caller.
                self.shared.runtime.spawn(async move {
                    let _ = tx.send(cmd).await;
                });
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Starts a graceful shutdown of the whole server: stop accepting, let requests in
    /// flight finish, flush, close. [`Server::serve`](super::Server::serve) returns when done.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Whether a shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        *self.shared.shutdown.borrow()
    }

    /// The server's counters (render with [`Metrics::render`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }
}
