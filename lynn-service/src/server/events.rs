//! Event-stream mode: instead of (or besides) routes, the application pulls connections,
//! messages and closes from one bounded channel.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::Stream;

use super::Context;
use super::handler::{self, Handler, HandlerFuture};
use crate::Reply;

/// Something that happened on the server, from [`ServerEvents`]: `Connected { id, peer }`,
/// `Message { ctx, responder }` (a message for a method without a route; answer it with
/// the [`Responder`], replies still leave in request order) or `Closed { id, reason }`.
/// See [`crate::ServerEvent`].
pub type ServerEvent<S = ()> = crate::ServerEvent<Context<S>, Responder>;

/// Completes one [`ServerEvent::Message`]. Dropping it completes the request with no reply.
#[derive(Debug)]
pub struct Responder {
    tx: async_channel::Sender<Reply>,
}

impl Responder {
    /// Completes the request with `reply` (which may be [`Reply::none`]).
    pub fn reply(self, reply: Reply) {
        // The connection may be gone; then there is nobody to answer.
        let _ = self.tx.try_send(reply);
    }
}

/// The receiving end of the event stream. Bounded: while it is full, connections wait
/// (they stop reading once their requests in flight reach the limit); nothing is dropped.
/// Ends (`None`) once the server is gone.
#[derive(Debug)]
pub struct ServerEvents<S = ()> {
    rx: Pin<Box<async_channel::Receiver<ServerEvent<S>>>>,
}

impl<S> ServerEvents<S> {
    pub(crate) fn channel(capacity: usize) -> (async_channel::Sender<ServerEvent<S>>, Self) {
        let (tx, rx) = async_channel::bounded(capacity.max(1));
        (tx, ServerEvents { rx: Box::pin(rx) })
    }

    /// The next event; `None` once the server is gone.
    pub async fn recv(&self) -> Option<ServerEvent<S>> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is ready now.
    pub fn try_recv(&self) -> Option<ServerEvent<S>> {
        self.rx.try_recv().ok()
    }

    /// The next event, waiting on the calling thread (for programs without an async
    /// runtime); `None` once the server is gone.
    pub fn recv_blocking(&self) -> Option<ServerEvent<S>> {
        self.rx.recv_blocking().ok()
    }
}

impl<S> Stream for ServerEvents<S> {
    type Item = ServerEvent<S>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.rx.as_mut().poll_next(cx)
    }
}

/// The fallback handler of event-stream mode: forwards the request and waits for its
/// responder.
pub(crate) fn forwarder<S: Send + Sync + 'static>(
    events: async_channel::Sender<ServerEvent<S>>,
) -> Handler<S> {
    handler::from_fn(move |ctx: Context<S>| -> HandlerFuture {
        let events = events.clone();
        Box::pin(async move {
            let (tx, rx) = async_channel::bounded(1);
            let event = ServerEvent::Message {
                ctx,
                responder: Responder { tx },
            };
            if events.send(event).await.is_err() {
                return Ok(Reply::none());
            }
            Ok(rx.recv().await.unwrap_or_default())
        })
    })
}
