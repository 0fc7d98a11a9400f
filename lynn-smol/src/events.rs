//! The event-stream alternative to handlers: [`ServerEvents`] yields connections, messages
//! (with a [`Responder`]) and closes, through a bounded channel that pushes back.

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_lite::Stream;
use lynn_proto::{CloseReason, ConnectionId, PeerAddr, Reply};

use crate::context::Context;
use crate::handler::{Handler, HandlerFuture};

/// Something that happened on the server, from [`ServerEvents`].
pub enum ServerEvent<S = ()> {
    /// A connection was admitted.
    Connected {
        /// Its id.
        id: ConnectionId,
        /// Its peer.
        peer: PeerAddr,
    },
    /// A message for a method with no route (and no fallback). Answer it through the
    /// responder; replies still leave in request order.
    Message {
        /// The request.
        ctx: Context<S>,
        /// Completes the request.
        responder: Responder,
    },
    /// A connection ended.
    Closed {
        /// Its id.
        id: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
}

impl<S> fmt::Debug for ServerEvent<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEvent::Connected { id, peer } => f
                .debug_struct("Connected")
                .field("id", id)
                .field("peer", peer)
                .finish(),
            ServerEvent::Message { ctx, .. } => {
                f.debug_struct("Message").field("ctx", ctx).finish()
            }
            ServerEvent::Closed { id, reason } => f
                .debug_struct("Closed")
                .field("id", id)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// Completes one [`ServerEvent::Message`]. Dropping it completes the request with no reply.
#[derive(Debug)]
pub struct Responder {
    tx: async_channel::Sender<Reply>,
}

impl Responder {
    /// Completes the request with `reply` (to the sender, in request order, and any fanout).
    pub fn reply(self, reply: Reply) {
        // The connection may be gone; then there is nobody to answer.
        let _ = self.tx.try_send(reply);
    }
}

/// The server's events, in order per connection. The channel is bounded: while it is full,
/// connections wait (and stop reading once their requests in flight are at the limit), so
/// nothing is dropped. Ends (`None`) when the server is gone.
#[derive(Debug)]
pub struct ServerEvents<S = ()> {
    rx: Pin<Box<async_channel::Receiver<ServerEvent<S>>>>,
}

impl<S> ServerEvents<S> {
    pub(crate) fn new(rx: async_channel::Receiver<ServerEvent<S>>) -> Self {
        ServerEvents { rx: Box::pin(rx) }
    }

    /// The next event; `None` once the server is gone.
    pub async fn recv(&self) -> Option<ServerEvent<S>> {
        self.rx.recv().await.ok()
    }
}

impl<S> Stream for ServerEvents<S> {
    type Item = ServerEvent<S>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.as_mut().poll_next(cx)
    }
}

/// The handler that turns unrouted messages into [`ServerEvent::Message`].
pub(crate) fn forwarder<S: Send + Sync + 'static>(
    tx: async_channel::Sender<ServerEvent<S>>,
) -> Handler<S> {
    Box::new(move |ctx| -> HandlerFuture {
        let tx = tx.clone();
        Box::pin(async move {
            let (reply_tx, reply_rx) = async_channel::bounded(1);
            let responder = Responder { tx: reply_tx };
            if tx
                .send(ServerEvent::Message { ctx, responder })
                .await
                .is_err()
            {
                return Ok(Reply::none());
            }
            Ok(reply_rx.recv().await.unwrap_or_default())
        })
    })
}
