//! [`ConnGuard`]: gives back everything a connection holds, on every exit path (normal
//! close, error, panic, abort at the end of a shutdown).

use std::sync::Arc;

use lynn_proto::admission::Permit;
use lynn_proto::{CloseReason, ConnectionId, PeerAddr};

use super::handle::{Shared, lock};

/// Held by a connection's task from admission to its end.
pub(crate) struct ConnGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ConnectionId,
    pub(crate) peer: PeerAddr,
    pub(crate) permit: Option<Permit>,
    /// Why the connection ended; `None` when the task was cut short (counted as local).
    pub(crate) reason: Option<CloseReason>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        // Admission first: once the connection leaves the registry (which is what
        // `connection_count` reports), its slot is already free for the next peer.
        if let Some(permit) = self.permit.take() {
            lock(&self.shared.admission).release(permit);
        }
        lock(&self.shared.registry).remove(self.id);
        let reason = self.reason.take().unwrap_or(CloseReason::Local);
        self.shared.metrics.connection_closed(&reason);
    }
}
