//! [`Context`]: what a handler knows about the request it serves.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lynn_proto::{ConnectionId, PeerAddr, Reply};

use crate::handle::ServerHandle;

/// One request, as a handler sees it: who sent it, what it says, the server's shared
/// state and a [`ServerHandle`] to reach other connections.
pub struct Context<S = ()> {
    pub(crate) id: ConnectionId,
    pub(crate) peer: Arc<PeerAddr>,
    pub(crate) method: u16,
    pub(crate) body: Bytes,
    pub(crate) state: Arc<S>,
    pub(crate) server: ServerHandle,
}

impl<S> Context<S> {
    /// The connection the request came on.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The peer's address.
    pub fn peer(&self) -> &PeerAddr {
        &self.peer
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

    /// The server's shared state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The shared state's `Arc`, to keep it past the handler.
    pub fn state_arc(&self) -> &Arc<S> {
        &self.state
    }

    /// The server, to send to other connections, broadcast, or manage groups.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// A reply to the sender with this request's method: `Reply::to_sender(self.method(), body)`.
    pub fn reply(&self, body: impl Into<Bytes>) -> Reply {
        Reply::to_sender(self.method, body)
    }

    /// The same request seen with another state (used to carry handlers registered before
    /// [`ServerBuilder::state`](crate::ServerBuilder::state)).
    pub(crate) fn with_state<T>(self, state: Arc<T>) -> Context<T> {
        Context {
            id: self.id,
            peer: self.peer,
            method: self.method,
            body: self.body,
            state,
            server: self.server,
        }
    }
}

impl<S> Clone for Context<S> {
    fn clone(&self) -> Self {
        Context {
            id: self.id,
            peer: Arc::clone(&self.peer),
            method: self.method,
            body: self.body.clone(),
            state: Arc::clone(&self.state),
            server: self.server.clone(),
        }
    }
}

impl<S> fmt::Debug for Context<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}
