//! [`Runtime`]: what the shared client (and, as the adapters thin out, the shared server)
//! needs from an async runtime: connect a stream, sleep until a deadline, spawn a task, read
//! the clock. An adapter implements it once for its runtime (a unit struct) and names the
//! shared types with it (`pub type Client = lynn_service::Client<TokioRuntime>`).
//!
//! Everything is static: the per-connection path is generic over the runtime's types, with
//! no `dyn` and no boxing per operation.
//!
//! The stream is poll-based ([`Transport`]: read into a buffer, vectored write), not
//! readiness-based, so that one drive loop serves what is coming besides sockets: a TLS
//! session between the socket and the [`Connection`](lynn_proto::Connection) (rustls is
//! itself sans-IO and sits inside the loop), a multiplexed connection's stream (QUIC's
//! streams are read and written, not polled for readiness) and a message-based transport
//! (WebSocket, whose binary messages carry the frames).

use std::future::Future;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::BytesMut;
use lynn_proto::{Endpoint, Instant, SocketOptions};

/// An async runtime, as the shared client sees it. Cheap to clone (usually a unit struct).
pub trait Runtime: Clone + Default + Send + Sync + 'static {
    /// A connected byte stream (TCP or Unix socket).
    type Stream: Transport;
    /// A sleep that can be moved to another deadline.
    type Timer: Timer;

    /// Connects to `endpoint`, applying `options` to a TCP socket (a setting the OS refuses
    /// is logged and skipped, not an error).
    fn connect(
        &self,
        endpoint: Endpoint,
        options: SocketOptions,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static;

    /// A timer that is not armed yet.
    fn timer(&self) -> Self::Timer;

    /// Runs `task` to completion in the background.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    /// The time now. A simulated runtime answers with its virtual clock.
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A connected stream: bytes in, bytes out, both polled.
pub trait Transport: Send + 'static {
    /// Reads what is available into `buf`'s spare room (growing it if it has none), once.
    /// `Ok(0)` is the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;

    /// Writes a prefix of `bufs`, once; returns how many bytes.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Ends the write side (TCP FIN), best effort: after a graceful close, so the peer sees
    /// the end of the stream while unread input may still arrive.
    fn shutdown_write(&mut self);
}

/// One non-blocking IO operation on a socket whose readiness is polled: waits for
/// readiness with `poll_ready`, tries `op`, and on `WouldBlock` (the readiness was stale;
/// the runtime clears it) waits again. For [`Transport`] implementations over a reactor.
pub fn poll_io<T>(
    cx: &mut Context<'_>,
    mut poll_ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        if let Err(e) = std::task::ready!(poll_ready(cx)) {
            return Poll::Ready(Err(e));
        }
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            res => return Poll::Ready(res),
        }
    }
}

/// A sleep until a deadline that can be moved.
pub trait Timer: Send + Unpin + 'static {
    /// Fires at `deadline` from now on (earlier or later than before).
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline passed; registers `cx` to be woken then otherwise.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
