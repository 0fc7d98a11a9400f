//! [`TokioRuntime`]: the shared layer's [`Runtime`] over tokio: its sockets, its timer, its
//! `spawn` (on the runtime the caller runs on).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use lynn_proto::{Endpoint, Instant, SocketOptions};
use lynn_service::{Runtime, Transport, poll_io};

pub use crate::stream::Stream;
pub use crate::timer::Timer;

/// Tokio, as lynn's shared client sees it. Tasks are spawned on the runtime the caller
/// runs on (`tokio::spawn`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    type Stream = Stream;
    type Timer = Timer;

    // Not `async fn`: the future must be `'static`, not borrow the runtime.
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        endpoint: Endpoint,
        options: SocketOptions,
    ) -> impl Future<Output = io::Result<Stream>> + Send + 'static {
        async move { Stream::connect(endpoint, &options).await }
    }

    fn timer(&self) -> Timer {
        Timer::new()
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

impl Transport for Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        let this = &*self;
        poll_io(cx, |cx| this.poll_readable(cx), || this.read_buf(buf))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &*self;
        poll_io(
            cx,
            |cx| this.poll_writable(cx),
            || this.try_write_vectored(bufs),
        )
    }

    fn shutdown_write(&mut self) {
        Stream::shutdown_write(self);
    }
}

impl lynn_service::Timer for Timer {
    fn reset(&mut self, deadline: Instant) {
        self.set(Some(deadline));
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(self).poll(cx)
    }
}
