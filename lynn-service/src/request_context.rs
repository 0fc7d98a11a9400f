//! [`Context`]: what a server handler knows about the request it serves, the same in every
//! runtime. `H` is the runtime's server handle; each runtime names
//! `Context<S> = lynn_service::Context<S, ServerHandle>`.
//!
//! ```
//! use std::sync::Arc;
//! use lynn_proto::{ConnectionId, PeerAddr};
//! use lynn_service::{Context, RequestScope, ServerScope};
//!
//! let server = Arc::new(ServerScope::new(Arc::new(5u32), "handle"));
//! let scope = Arc::new(RequestScope::new(ConnectionId(7), PeerAddr::Unix(None), server));
//! let ctx = Context::new(scope, 1, "hi".into());
//! assert_eq!((ctx.id(), *ctx.state(), ctx.method()), (ConnectionId(7), 5, 1));
//! assert_eq!(ctx.reply("ok").sender_reply().unwrap().0, 1);
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::HandlerError;
use crate::reply::Reply;
use lynn_proto::PeerAddr;
use lynn_proto::{ConnectionId, InlineMessage, RequestId};
#[cfg(feature = "tls")]
use rustls::pki_types::CertificateDer;

/// What every connection of one server shares with its requests: the server's state and
/// its handle (one `Arc` per server, so that a connection's [`RequestScope`] holds one
/// pointer for both).
#[derive(Debug)]
pub struct ServerScope<S, H> {
    /// The server's shared state.
    pub state: Arc<S>,
    /// The runtime's server handle.
    pub server: H,
}

impl<S, H> ServerScope<S, H> {
    /// The scope of a server with `state` and handle `server`.
    pub fn new(state: Arc<S>, server: H) -> Self {
        ServerScope { state, server }
    }
}

/// What one connection shares with every request it carries (one `Arc` per connection).
/// Made with [`RequestScope::new`] (its fields depend on the crate's features).
#[derive(Debug)]
#[non_exhaustive]
pub struct RequestScope<S, H> {
    /// The connection's id.
    pub id: ConnectionId,
    /// Where it comes from.
    pub peer: PeerAddr,
    /// What the connection shares with the others of its server.
    pub server: Arc<ServerScope<S, H>>,
    /// The certificate chain the client presented over TLS (see
    /// [`peer_certificates`](Self::peer_certificates)). Behind a thin pointer: with a wider
    /// field every connection's scope would take a larger allocation, with or without TLS.
    #[cfg(feature = "tls")]
    #[allow(clippy::box_collection)]
    peer_certificates: Option<Box<Vec<CertificateDer<'static>>>>,
}

impl<S, H> RequestScope<S, H> {
    /// The scope of connection `id` from `peer` on the server of `server`, with no peer
    /// certificates.
    pub fn new(id: ConnectionId, peer: PeerAddr, server: Arc<ServerScope<S, H>>) -> Self {
        RequestScope {
            id,
            peer,
            server,
            #[cfg(feature = "tls")]
            peer_certificates: None,
        }
    }

    /// The certificate chain the client presented over TLS (end entity first), as the
    /// handshake verified it; `None` on a plain connection or without client
    /// authentication.
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.peer_certificates.as_deref().map(Vec::as_slice)
    }

    /// Sets [`peer_certificates`](Self::peer_certificates).
    #[cfg(feature = "tls")]
    pub fn set_peer_certificates(&mut self, chain: Option<&[CertificateDer<'static>]>) {
        self.peer_certificates = chain.map(|chain| Box::new(chain.to_vec()));
    }
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
        &self.scope.server.state
    }

    /// The shared state's `Arc`, to keep it past the handler.
    pub fn state_arc(&self) -> &Arc<S> {
        &self.scope.server.state
    }

    /// A handle to the server: send to other connections, broadcast, groups.
    pub fn server(&self) -> &H {
        &self.scope.server.server
    }

    /// The certificate chain the client presented over TLS (end entity first), verified
    /// against the server's client CA; `None` on a plain connection or without client
    /// authentication (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.scope.peer_certificates()
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

/// A message answered in place, as a synchronous handler sees it: the connection's
/// [`RequestScope`] and the [`InlineMessage`] lent by
/// [`Connection::handle_received_inline`](lynn_proto::Connection::handle_received_inline). The
/// body is borrowed from the receive buffer and the reply is copied straight into the send
/// queue, so nothing is allocated or reference-counted per message. Each runtime names
/// `SyncContext<'a, 'm, S> = lynn_service::SyncContext<'a, 'm, S, ServerHandle>`.
///
/// ```
/// use lynn_proto::codec::{self, FrameKind, Marks};
/// use lynn_proto::{Connection, ConnectionConfig, ConnectionId, Inline, Instant, PeerAddr};
/// use lynn_service::{RequestScope, ServerScope, SyncContext};
/// use std::sync::Arc;
///
/// let server = Arc::new(ServerScope::new(Arc::new(()), ()));
/// let scope = RequestScope::new(ConnectionId(7), PeerAddr::Unix(None), server);
/// let now = Instant::now();
/// let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
/// let frame = codec::encode_to_bytes(Marks::default(), FrameKind::Message, 1, b"hi", 1 << 20);
/// conn.receive_buffer().extend_from_slice(&frame.unwrap());
/// conn.handle_received_inline(now, |msg| {
///     let mut ctx = SyncContext::new(&scope, msg);
///     assert_eq!((ctx.id(), ctx.method(), ctx.body()), (ConnectionId(7), 1, &b"hi"[..]));
///     ctx.reply(ctx.body());
///     Inline::Answered
/// });
/// assert!(conn.wants_write());
/// ```
pub struct SyncContext<'a, 'm, S, H> {
    scope: &'a RequestScope<S, H>,
    msg: &'a mut InlineMessage<'m>,
}

impl<'a, 'm, S, H> SyncContext<'a, 'm, S, H> {
    /// The message `msg` on the connection of `scope`.
    pub fn new(scope: &'a RequestScope<S, H>, msg: &'a mut InlineMessage<'m>) -> Self {
        SyncContext { scope, msg }
    }

    /// The connection the message came on.
    pub fn id(&self) -> ConnectionId {
        self.scope.id
    }

    /// Where that connection comes from.
    pub fn peer(&self) -> &PeerAddr {
        &self.scope.peer
    }

    /// The client's certificate chain over mutual TLS (see
    /// [`Context::peer_certificates`]).
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.scope.peer_certificates()
    }

    /// The message's position on its connection.
    pub fn request_id(&self) -> RequestId {
        self.msg.id()
    }

    /// The message's method id.
    pub fn method(&self) -> u16 {
        self.msg.method()
    }

    /// The message's body, borrowed from the receive buffer for this call.
    pub fn body(&self) -> &'m [u8] {
        self.msg.body()
    }

    /// The server's shared state.
    pub fn state(&self) -> &S {
        &self.scope.server.state
    }

    /// The shared state's `Arc`, to keep it past the handler.
    pub fn state_arc(&self) -> &Arc<S> {
        &self.scope.server.state
    }

    /// A handle to the server: send to other connections, broadcast, groups.
    pub fn server(&self) -> &H {
        &self.scope.server.server
    }

    /// Replies to the sender with the message's method, copying `body` into the send queue.
    /// See [`InlineMessage::reply`]: one reply per message (later calls are ignored); a body
    /// too large for the peer is refused (and reported by the runtime); a handler that
    /// fails after replying has its reply withdrawn.
    pub fn reply(&mut self, body: &[u8]) {
        let method = self.msg.method();
        self.msg.reply(method, body);
    }

    /// Replies to the sender with `method`.
    pub fn reply_with(&mut self, method: u16, body: &[u8]) {
        self.msg.reply(method, body);
    }

    /// The message being answered.
    pub fn message(&self) -> &InlineMessage<'m> {
        self.msg
    }
}

impl<S, H> fmt::Debug for SyncContext<'_, '_, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncContext")
            .field("id", &self.scope.id)
            .field("peer", &self.scope.peer)
            .field("method", &self.msg.method())
            .field("body_len", &self.msg.body().len())
            .finish()
    }
}

/// What a synchronous handler may return: `()`, or a `Result<(), E>` with an error that
/// can be displayed (counted as a handler error).
pub trait SyncOutcome {
    /// `Ok`, or why the handler failed.
    fn into_outcome(self) -> Result<(), HandlerError>;
}

impl SyncOutcome for () {
    fn into_outcome(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: fmt::Display> SyncOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), HandlerError> {
        self.map_err(|e| HandlerError(e.to_string()))
    }
}
