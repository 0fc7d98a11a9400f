//! [`Seat`]: an admitted connection's place in the server, given back on every exit path.

use lynn_proto::admission::Permit;
use lynn_proto::{CloseReason, ConnectionId};

use crate::handle::{Peer, ServerHandle};

/// Holds an admission [`Permit`] and, once registered, the connection's registry entry.
/// [`leave`](Seat::leave) (or dropping it: panic, shutdown timeout, cancelled task) removes
/// the entry, records the close in the metrics and releases the permit, exactly once.
#[derive(Debug)]
pub(crate) struct Seat {
    handle: ServerHandle,
    permit: Option<Permit>,
    id: Option<ConnectionId>,
}

impl Seat {
    /// A seat for a connection just admitted with `permit`.
    pub(crate) fn new(handle: ServerHandle, permit: Permit) -> Self {
        Seat {
            handle,
            permit: Some(permit),
            id: None,
        }
    }

    /// Enters the connection in the registry (it becomes reachable) and counts it open.
    pub(crate) fn register(&mut self, peer: Peer) -> ConnectionId {
        let id = self.handle.register(peer);
        self.handle.metrics().connection_opened();
        self.id = Some(id);
        id
    }

    /// The connection ended with `reason`.
    pub(crate) fn leave(&mut self, reason: &CloseReason) {
        if let Some(id) = self.id.take() {
            self.handle.unregister(id);
            self.handle.metrics().connection_closed(reason);
        }
        if let Some(permit) = self.permit.take() {
            self.handle.release(permit);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.leave(&CloseReason::Local);
    }
}
