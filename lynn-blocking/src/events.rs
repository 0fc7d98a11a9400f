//! The event stream: the blocking alternative to handlers. Messages for methods without a
//! route arrive on a bounded channel with a [`Responder`] that completes them.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use lynn_proto::RequestId;
use lynn_service::Reply;
use lynn_service::dispatch::HandlerOutcome;

use crate::conn::Input;
use crate::context::Context;

/// Something that happened on the server, from [`ServerEvents`]: `Connected { id, peer }`,
/// `Message { ctx, responder }` (a message for a method without a route; answer it with
/// the [`Responder`], replies still leave in request order) or `Closed { id, reason }`.
/// See [`lynn_service::ServerEvent`].
pub type ServerEvent<S = ()> = lynn_service::ServerEvent<Context<S>, Responder>;

/// Completes one request from the event stream. Replies still leave in request order.
#[derive(Debug)]
pub struct Responder {
    pub(crate) tx: Sender<Input>,
    pub(crate) id: RequestId,
    pub(crate) done: bool,
}

impl Responder {
    /// Completes the request with `reply`: the sender's part in request order, the fanout
    /// part to its recipients.
    pub fn reply(mut self, reply: Reply) {
        self.done = true;
        let _ = self
            .tx
            .send(Input::Done(self.id, HandlerOutcome::Replied(reply)));
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.done {
            let outcome = HandlerOutcome::Replied(Reply::none());
            let _ = self.tx.send(Input::Done(self.id, outcome));
        }
    }
}

/// The receiving end of the event stream, from
/// [`ServerBuilder::event_stream`](crate::ServerBuilder::event_stream). Also an iterator
/// that ends when the server has stopped.
#[derive(Debug)]
pub struct ServerEvents<S = ()> {
    pub(crate) rx: Receiver<ServerEvent<S>>,
}

impl<S> ServerEvents<S> {
    /// The next event; `None` once the server has stopped.
    pub fn recv(&self) -> Option<ServerEvent<S>> {
        self.rx.recv().ok()
    }

    /// The next event if one is ready now.
    pub fn try_recv(&self) -> Option<ServerEvent<S>> {
        self.rx.try_recv().ok()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<ServerEvent<S>, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }
}

impl<S> Iterator for ServerEvents<S> {
    type Item = ServerEvent<S>;

    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}
