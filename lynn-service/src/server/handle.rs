//! [`ServerHandle`]: reach connections from anywhere (handlers, other tasks, other threads).
//!
//! The connection table is a [`Switchboard`] of [`Entry`]s: per connection, its bounded
//! [`Inbox`] of commands and close request, and the peer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use event_listener::Event;
use lynn_proto::groups::GroupError;
use lynn_proto::{ConnectionId, PeerAddr, SendToError};

use crate::switchboard::{Mailbox, Refused, Switchboard};
use crate::{Metrics, Outbound, SharedAdmission, Target};

use super::inbox::Inbox;

/// What the connection table keeps per connection.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Commands and the close request for the connection's task (never waits).
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) peer: PeerAddr,
}

impl Mailbox for Entry {
    fn offer(&self, out: Outbound) -> Result<(), Refused> {
        self.inbox.offer(out)
    }

    fn peer(&self) -> &PeerAddr {
        &self.peer
    }

    fn close(&self) -> bool {
        self.inbox.request_close()
    }
}

/// State shared by the accept loop, every connection task and every handle.
pub(crate) struct Shared {
    pub(crate) board: Arc<Switchboard<Entry>>,
    pub(crate) admission: SharedAdmission,
    pub(crate) shutdown: ShutdownSignal,
}

/// Whether a shutdown has started, and a wake-up for when it does.
#[derive(Debug, Default)]
pub(crate) struct ShutdownSignal {
    started: AtomicBool,
    event: Event,
}

impl ShutdownSignal {
    fn start(&self) {
        self.started.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Completes once a shutdown has started.
    pub(crate) async fn started(&self) {
        while !self.is_started() {
            let listener = self.event.listen();
            if self.is_started() {
                return;
            }
            listener.await;
        }
    }
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
        self.shared.board.send(id, method, body.into())
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
    /// one table lock in all. A recipient whose outbound queue is full is skipped (and
    /// counted in `lynn_send_queue_full_total`); it never holds up the others. Returns how
    /// many recipients got it queued (0 when the body is too large for the peers).
    pub fn fanout(&self, target: Target, method: u16, body: impl Into<Bytes>) -> usize {
        self.shared
            .board
            .fanout(&target, method, &body.into())
            .unwrap_or_else(|e| {
                tracing::warn!(method, error = %e, "fanout not sent");
                0
            })
    }

    /// Adds connection `id` to `group`; `Ok(false)` if already a member or not connected.
    pub fn join(&self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        self.shared.board.join(group, id)
    }

    /// Removes connection `id` from `group`; returns whether it was a member.
    pub fn leave(&self, group: &str, id: ConnectionId) -> bool {
        self.shared.board.leave(group, id)
    }

    /// The open connections and their peers.
    pub fn connections(&self) -> Vec<(ConnectionId, PeerAddr)> {
        self.shared.board.connections()
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.shared.board.len()
    }

    /// Closes connection `id` gracefully (its requests in flight finish and are flushed).
    /// Returns whether the connection was open.
    pub fn close(&self, id: ConnectionId) -> bool {
        self.shared.board.close(id)
    }

    /// Starts a graceful shutdown of the whole server: stop accepting, let requests in
    /// flight finish, flush, close. [`Server::serve`](super::Server::serve) returns when done.
    pub fn shutdown(&self) {
        self.shared.shutdown.start();
    }

    /// Whether a shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_started()
    }

    /// The server's counters (render with [`Metrics::render`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.shared.board.metrics()
    }
}
