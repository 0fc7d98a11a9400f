//! The event stream: the blocking alternative to handlers. Messages for methods without a
//! route arrive on a bounded channel with a [`Responder`] that completes them.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use lynn_proto::{CloseReason, ConnectionId, Metrics, PeerAddr, Reply, RequestId};

use crate::conn::{Input, deliver};
use crate::context::Context;

/// Something that happened on the server, from [`ServerEvents`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent<S = ()> {
    /// A connection was admitted.
    Connected {
        /// Its id.
        id: ConnectionId,
        /// Its peer.
        peer: PeerAddr,
    },
    /// A message for a method with no route (and no fallback).
    Message {
        /// The request.
        ctx: Context<S>,
        /// Completes it; dropping it completes it with no reply.
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

/// Completes one request from the event stream. Replies still leave in request order.
#[derive(Debug)]
pub struct Responder {
    pub(crate) tx: SyncSender<Input>,
    pub(crate) id: RequestId,
    pub(crate) server: crate::ServerHandle,
    pub(crate) done: bool,
}

impl Responder {
    /// Sends `reply`: the sender's part in request order, the fanout part at once.
    pub fn reply(mut self, reply: Reply) {
        self.done = true;
        let to_sender = deliver(&self.server, reply);
        let _ = self.tx.send(Input::Done(self.id, to_sender));
        self.metrics().in_flight_add(-1);
    }

    fn metrics(&self) -> &Metrics {
        self.server.metrics()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.tx.send(Input::Done(self.id, None));
            self.metrics().in_flight_add(-1);
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
