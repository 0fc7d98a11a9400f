//! [`Runtime`]: what the shared server and client need from an async runtime: listen and
//! accept, adopt an accepted socket into the task that owns it, connect, sleep until a
//! deadline, spawn, read the clock. An adapter implements it once for its runtime and names
//! the shared types with it (`pub type Client = lynn_service::Client<TokioRuntime>`).
//!
//! Everything is static: the per-connection path is generic over the runtime's types, with
//! no `dyn` and no boxing per operation.
//!
//! A stream ([`Transport`]) reports readiness and reads and writes without blocking, as
//! tokio's and async-io's sockets do. A drive loop waits for readiness holding no buffer
//! (an idle connection holds none), then reads straight into the connection's receive
//! buffer. Other transports fit the same shape: a TLS session (feature `tls`:
//! `tls::TlsStream`, rustls driven sans-IO) is a `Transport` over the socket's, and a
//! multiplexed connection's stream (QUIC) or a message-based transport (WebSocket) would
//! implement readiness over its own buffer.

use std::future::Future;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::BytesMut;
use lynn_proto::{Endpoint, Instant, PeerAddr, SocketOptions};

/// An async runtime, as the shared server and client see it. Cheap to clone.
pub trait Runtime: Clone + Default + Send + Sync + 'static {
    /// A connected byte stream (TCP or Unix socket).
    type Stream: Transport;
    /// A sleep that can be moved to another deadline.
    type Timer: Timer;
    /// A listening socket.
    type Listener: Listener;

    /// Listens at `endpoint` (a host name is resolved first) with a queue of `backlog`
    /// connections not yet accepted.
    fn bind(
        &self,
        endpoint: Endpoint,
        backlog: u32,
    ) -> impl Future<Output = io::Result<Self::Listener>> + Send + 'static;

    /// Turns an accepted socket into the stream of the connection's task; called in that
    /// task, so a runtime with several reactors registers it with the one it runs on.
    /// Applies `options` to a TCP socket (a setting the OS refuses is logged and skipped).
    fn adopt(
        &self,
        accepted: <Self::Listener as Listener>::Accepted,
        options: &SocketOptions,
    ) -> io::Result<Self::Stream>;

    /// Connects to `endpoint`, applying `options` to a TCP socket.
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

/// A listening socket.
pub trait Listener: Send + Sync + 'static {
    /// An accepted socket on its way to the task that will own it
    /// ([`Runtime::adopt`]).
    type Accepted: Send + 'static;

    /// The next connection and where it comes from.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Accepted, PeerAddr)>>;

    /// The address peers connect to.
    fn local_addr(&self) -> io::Result<PeerAddr>;
}

/// A connected stream: readiness to wait on, and reads and writes that never block.
///
/// A `try_` call that finds nothing to do returns `WouldBlock` and clears the readiness it
/// consumed, so the next `poll_*_ready` waits for the runtime's next report.
pub trait Transport: Send + Unpin + 'static {
    /// Ready when a read may make progress (bytes, the end of the stream, or an error).
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Whether readiness to read was reported and not consumed since: a loop may read
    /// without polling. A hint: `false` (the default) costs only a poll.
    fn read_ready(&self) -> bool {
        false
    }

    /// Reads what is available into `buf`'s spare room (growing it if it has none), once.
    /// `Ok(0)` is the end of the stream.
    fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<usize>;

    /// Ready when a write may make progress.
    fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Writes a prefix of `bufs`, once; returns how many bytes.
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Ends the write side (TCP FIN), best effort: after a graceful close, so the peer sees
    /// the end of the stream while unread input may still arrive. A transport that buffers
    /// output ([`try_flush`](Self::try_flush)) ends it once that output is written.
    fn shutdown_write(&mut self);

    /// Writes out output the transport buffers itself (a TLS session's encrypted records),
    /// once: `Ok` when none is left, `WouldBlock` (clearing the write readiness) while some
    /// is. A drive loop calls it after its own writes and waits for writability while it
    /// would block. A socket buffers nothing (the default).
    #[inline]
    fn try_flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Waits for readiness and reads once (see [`try_read`](Self::try_read)).
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.poll_read_ready(cx))?;
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    /// Waits for readiness until the transport's own output is written (see
    /// [`try_flush`](Self::try_flush)).
    #[inline]
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.try_flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                res => return Poll::Ready(res),
            }
            std::task::ready!(self.poll_write_ready(cx))?;
        }
    }

    /// Waits for readiness and writes once (see [`try_write_vectored`](Self::try_write_vectored)).
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.poll_write_ready(cx))?;
            match self.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }
}

/// A sleep until a deadline that can be moved.
pub trait Timer: Send + Unpin + 'static {
    /// Fires at `deadline` from now on (earlier or later than before).
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline passed, and at every poll after until it is reset; registers
    /// `cx` to be woken then otherwise.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// Whether it was polled pending since it was last reset, so it holds the waker of the
    /// task that owns it and will wake it: a caller that knows the deadline is still ahead
    /// need not poll it. `false` (the default) makes callers poll.
    fn is_waiting(&self) -> bool {
        false
    }
}
