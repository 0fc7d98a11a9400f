//! [`Context`]: what a handler knows about the request it handles.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lynn_proto::{ConnectionId, PeerAddr, Reply};

use super::ServerHandle;

/// What one connection shares with every request it carries (one `Arc` per request).
pub(crate) struct Scope<S> {
    pub(crate) id: ConnectionId,
    pub(crate) peer: PeerAddr,
    pub(crate) state: Arc<S>,
    pub(crate) server: ServerHandle,
}

/// A request as a handler sees it: who sent it, the method and body, the server's shared
/// state and a handle to reach other connections.
pub struct Context<S = ()> {
    scope: Arc<Scope<S>>,
    method: u16,
    body: Bytes,
}

impl<S> Context<S> {
    pub(crate) fn new(scope: Arc<Scope<S>>, method: u16, body: Bytes) -> Self {
        Context {
            scope,
            method,
            body,
        }
    }

    /// The connection the request came on.
    pub fn id(&self) -> ConnectionId {
        self.scope.id
    }

    /// Where that connection comes from.
    pub fn peer(&self) -> &PeerAddr {
        &self.scope.peer
    }

    /// The request's method id.
    pub fn method(&self) -> u16 {
        self.method
    }

    /// The request's body (a slice of the receive buffer, no copy).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The server's shared state (set with [`ServerBuilder::state`](super::ServerBuilder::state)).
    pub fn state(&self) -> &S {
        &self.scope.state
    }

    /// A handle to the server: send to other connections, broadcast, groups.
    pub fn server(&self) -> &ServerHandle {
        &self.scope.server
    }

    /// A reply to the sender with the request's method: `Reply::to_sender(self.method(), body)`.
    pub fn reply(&self, body: impl Into<Bytes>) -> Reply {
        Reply::to_sender(self.method, body)
    }
}

impl<S> fmt::Debug for Context<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.scope.id)
            .field("peer", &self.scope.peer)
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .finish()
    }
}
