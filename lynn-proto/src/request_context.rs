//! [`Context`]: what a server handler knows about the request it serves, the same in every
//! runtime. `H` is the runtime's server handle; each runtime names
//! `Context<S> = lynn_proto::Context<S, ServerHandle>`.
//!
//! ```
//! use std::sync::Arc;
//! use lynn_proto::{ConnectionId, Context, PeerAddr, RequestScope};
//!
//! let scope = Arc::new(RequestScope {
//!     id: ConnectionId(7),
//!     peer: PeerAddr::Unix(None),
//!     state: Arc::new(5u32),
//!     server: "handle",
//! });
//! let ctx = Context::new(scope, 1, "hi".into());
//! assert_eq!((ctx.id(), *ctx.state(), ctx.method()), (ConnectionId(7), 5, 1));
//! assert_eq!(ctx.reply("ok").sender_reply().unwrap().0, 1);
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::ConnectionId;
use crate::reply::Reply;
use crate::runtime::PeerAddr;

/// What one connection shares with every request it carries (one `Arc` per connection).
#[derive(Debug)]
pub struct RequestScope<S, H> {
    /// The connection's id.
    pub id: ConnectionId,
    /// Where it comes from.
    pub peer: PeerAddr,
    /// The server's shared state.
    pub state: Arc<S>,
    /// The runtime's server handle.
    pub server: H,
}

/// A request as a handler sees it: who sent it, the method and body, the server's shared
/// state and a handle to reach other connections. Cheap to clone.
pub struct Context<S, H> {
    scope: Arc<RequestScope<S, H>>,
    method: u16,
    body: Bytes,
}

impl<S, H> Context<S, H> {
    /// A request with `method` and `body` on the connection of `scope`.
    pub fn new(scope: Arc<RequestScope<S, H>>, method: u16, body: Bytes) -> Self {
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

    /// The server's shared state (set with the builder's `state`).
    pub fn state(&self) -> &S {
        &self.scope.state
    }

    /// The shared state's `Arc`, to keep it past the handler.
    pub fn state_arc(&self) -> &Arc<S> {
        &self.scope.state
    }

    /// A handle to the server: send to other connections, broadcast, groups.
    pub fn server(&self) -> &H {
        &self.scope.server
    }

    /// A reply to the sender with the request's method: `Reply::to_sender(self.method(), body)`.
    pub fn reply(&self, body: impl Into<Bytes>) -> Reply {
        Reply::to_sender(self.method, body)
    }
}

impl<S, H> Clone for Context<S, H> {
    fn clone(&self) -> Self {
        Context {
            scope: Arc::clone(&self.scope),
            method: self.method,
            body: self.body.clone(),
        }
    }
}

impl<S, H> fmt::Debug for Context<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.scope.id)
            .field("peer", &self.scope.peer)
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .finish()
    }
}
