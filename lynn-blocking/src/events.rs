//! The event stream: the blocking alternative to handlers. The shared server's bounded
//! stream ([`lynn_service::server::ServerEvents`]), read by blocking the calling thread.

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use async_io::{Timer, block_on};
use futures_lite::future;

pub use lynn_service::server::{Responder, ServerEvent};

/// The receiving end of the event stream, from
/// [`ServerBuilder::event_stream`](crate::ServerBuilder::event_stream): connections,
/// closes, and every message for a method without a route, each with a [`Responder`] that
/// completes it (replies still leave in request order; dropping it completes the request
/// with no reply). Bounded: while it is full, connections wait (they stop reading once
/// their requests in flight reach the limit); nothing is dropped. Also an iterator that
/// ends once the server is gone.
#[derive(Debug)]
pub struct ServerEvents<S = ()>(pub(crate) lynn_service::server::ServerEvents<S>);

impl<S> ServerEvents<S> {
    /// The next event, blocking the calling thread; `None` once the server is gone.
    pub fn recv(&self) -> Option<ServerEvent<S>> {
        self.0.recv_blocking()
    }

    /// The next event if one is ready now.
    pub fn try_recv(&self) -> Option<ServerEvent<S>> {
        self.0.try_recv()
    }

    /// The next event, waiting at most `timeout`: [`RecvTimeoutError::Disconnected`] once
    /// the server is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<ServerEvent<S>, RecvTimeoutError> {
        block_on(future::or(
            async { self.0.recv().await.ok_or(RecvTimeoutError::Disconnected) },
            async {
                Timer::after(timeout).await;
                Err(RecvTimeoutError::Timeout)
            },
        ))
    }
}

impl<S> Iterator for ServerEvents<S> {
    type Item = ServerEvent<S>;

    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}
