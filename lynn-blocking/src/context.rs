//! [`Context`]: what a handler gets for one request, and the boxed handler type.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lynn_proto::{ConnectionId, HandlerError, IntoReply, PeerAddr, Reply};

use crate::handle::ServerHandle;

/// A handler as stored in the router: the user's closure with its result converted.
pub(crate) type BoxHandler<S> =
    Arc<dyn Fn(Context<S>) -> Result<Reply, HandlerError> + Send + Sync + 'static>;

/// Boxes a user closure.
pub(crate) fn boxed<S, F, R>(f: F) -> BoxHandler<S>
where
    F: Fn(Context<S>) -> R + Send + Sync + 'static,
    R: IntoReply,
{
    Arc::new(move |ctx| f(ctx).into_reply())
}

/// One request, as a handler (or the event stream) sees it.
pub struct Context<S = ()> {
    pub(crate) id: ConnectionId,
    pub(crate) peer: PeerAddr,
    pub(crate) method: u16,
    pub(crate) body: Bytes,
    pub(crate) state: Arc<S>,
    pub(crate) server: ServerHandle,
}

impl<S> fmt::Debug for Context<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .finish()
    }
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

    /// The request's body.
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

    /// The server, to send to other connections, broadcast or manage groups.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// A reply to the sender on the request's method.
    pub fn reply(&self, body: impl Into<Bytes>) -> Reply {
        Reply::to_sender(self.method, body)
    }
}
