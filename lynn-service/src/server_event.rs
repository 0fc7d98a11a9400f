//! [`ServerEvent`]: what a server's event stream yields, the same in every runtime. `C` is
//! the runtime's request context and `R` its responder; each runtime names
//! `ServerEvent<S> = lynn_service::ServerEvent<Context<S>, Responder>`.

use lynn_proto::CloseReason;
use lynn_proto::ConnectionId;
use lynn_proto::PeerAddr;

/// Something that happened on the server, from its event stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent<C, R> {
    /// A connection was admitted.
    Connected {
        /// Its id.
        id: ConnectionId,
        /// Where it comes from.
        peer: PeerAddr,
    },
    /// A message for a method without a route. Answer with `responder`; dropping it
    /// completes the request without a reply. Later replies on the same connection wait
    /// for this one (replies leave in request order).
    Message {
        /// The request.
        ctx: C,
        /// Completes the request.
        responder: R,
    },
    /// A connection ended; its last event.
    Closed {
        /// Its id.
        id: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
}
