//! The event-stream alternative to handlers: [`ServerEvents`] yields connections, messages
//! (with a [`Responder`]) and closes, through a bounded channel that pushes back.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_lite::Stream;
use lynn_service::Reply;

use crate::context::Context;
use crate::handler::{self, Handler, HandlerFuture};

/// Something that happened on the server, from [`ServerEvents`]: `Connected { id, peer }`,
/// `Message { ctx, responder }` (a message for a method without a route; answer it with
/// the [`Responder`], replies still leave in request order) or `Closed { id, reason }`.
/// See [`lynn_service::ServerEvent`].
pub type ServerEvent<S = ()> = lynn_service::ServerEvent<Context<S>, Responder>;

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

    /// The next event if one is ready now.
    pub fn try_recv(&self) -> Option<ServerEvent<S>> {
        self.rx.try_recv().ok()
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
    handler::from_fn(move |ctx| -> HandlerFuture {
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
