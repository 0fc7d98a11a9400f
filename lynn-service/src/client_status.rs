//! [`ClientStatus`]: what a client's background task publishes for its handles: whether it
//! is connected, its counters, and, once it has ended for good, why.
//!
//! ```
//! use lynn_service::client_status::{ClientEnd, ClientStatus};
//! use lynn_proto::ClientError;
//!
//! let status = ClientStatus::default();
//! status.set_connected(true);
//! status.end(ClientEnd::GaveUp(3));
//! status.end(ClientEnd::Closed(None)); // the first end stays
//! assert!(!status.is_connected());
//! assert!(matches!(status.error(), ClientError::GaveUp { attempts: 3 }));
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::Metrics;
use lynn_proto::ClientError;
use lynn_proto::CloseReason;

/// How a client ended for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEnd {
    /// Closed by the user, or lost with no reconnect (with the last close reason).
    Closed(Option<CloseReason>),
    /// Reconnecting gave up after this many attempts.
    GaveUp(u32),
}

impl ClientEnd {
    /// The error for calls made after this end.
    pub fn error(&self) -> ClientError {
        match self {
            ClientEnd::Closed(reason) => ClientError::Closed(reason.clone()),
            ClientEnd::GaveUp(attempts) => ClientError::GaveUp {
                attempts: *attempts,
            },
        }
    }
}

/// Shared between a client's task and its handles (behind an `Arc`).
#[derive(Debug)]
pub struct ClientStatus {
    connected: AtomicBool,
    end: Mutex<Option<ClientEnd>>,
    metrics: Metrics,
}

impl Default for ClientStatus {
    fn default() -> Self {
        ClientStatus {
            connected: AtomicBool::new(false),
            end: Mutex::new(None),
            metrics: Metrics::client(),
        }
    }
}

impl ClientStatus {
    /// Whether a connection is up now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Records whether a connection is up.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Release);
    }

    /// The client's counters (same names as a server's).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Records the end (the first one stays) and marks the client disconnected.
    pub fn end(&self, end: ClientEnd) {
        self.set_connected(false);
        self.lock().get_or_insert(end);
    }

    /// The error for a call that finds the client over (`Closed(None)` before any end was
    /// recorded).
    pub fn error(&self) -> ClientError {
        self.lock()
            .as_ref()
            .map_or(ClientError::Closed(None), ClientEnd::error)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ClientEnd>> {
        self.end.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
