//! Event-stream mode: instead of (or besides) routes, the application pulls connections,
//! messages and closes from one bounded channel.

use lynn_service::Reply;
use tokio::sync::{mpsc, oneshot};

use super::Context;
use super::handler::{self, Handler, HandlerFuture};

/// Something that happened on the server, from [`ServerEvents`]: `Connected { id, peer }`,
/// `Message { ctx, responder }` (a message for a method without a route; answer it with
/// the [`Responder`], replies still leave in request order) or `Closed { id, reason }`.
/// See [`lynn_service::ServerEvent`].
pub type ServerEvent<S = ()> = lynn_service::ServerEvent<Context<S>, Responder>;

/// Completes one request delivered as [`ServerEvent::Message`].
#[derive(Debug)]
pub struct Responder {
    tx: oneshot::Sender<Reply>,
}

impl Responder {
    /// Completes the request with `reply` (which may be [`Reply::none`]).
    pub fn reply(self, reply: Reply) {
        let _ = self.tx.send(reply);
    }
}

/// The receiving end of the event stream. Bounded: while it is full, connections wait
/// (they stop reading once their requests in flight reach the limit); nothing is dropped.
#[derive(Debug)]
pub struct ServerEvents<S = ()> {
    rx: mpsc::Receiver<ServerEvent<S>>,
}

impl<S> ServerEvents<S> {
    pub(crate) fn channel(capacity: usize) -> (mpsc::Sender<ServerEvent<S>>, Self) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (tx, ServerEvents { rx })
    }

    /// The next event; `None` once the server is gone.
    pub async fn recv(&mut self) -> Option<ServerEvent<S>> {
        self.rx.recv().await
    }

    /// The next event if one is ready now.
    pub fn try_recv(&mut self) -> Option<ServerEvent<S>> {
        self.rx.try_recv().ok()
    }
}

/// The fallback handler of event-stream mode: forwards the request and waits for its
/// responder.
pub(crate) fn forwarder<S: Send + Sync + 'static>(
    events: mpsc::Sender<ServerEvent<S>>,
) -> Handler<S> {
    handler::from_fn(move |ctx: Context<S>| -> HandlerFuture {
        let events = events.clone();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            let event = ServerEvent::Message {
                ctx,
                responder: Responder { tx },
            };
            if events.send(event).await.is_err() {
                return Ok(Reply::none());
            }
            Ok(rx.await.unwrap_or_default())
        })
    })
}
