//! [`SmolRuntime`]: the shared layer's [`Runtime`] over async-io: its sockets and timers,
//! and the crate's client executor for the client's background task.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_io::Async;
use bytes::BytesMut;
use lynn_proto::{Endpoint, Instant, SocketOptions};
use lynn_service::Runtime;

use crate::server::resolve;

/// A client's connected stream: the [`Transport`](lynn_service::Transport) of
/// [`SmolRuntime`].
#[derive(Debug)]
pub struct Stream(crate::stream::Stream);

/// async-io, as lynn's shared client sees it. A client's background task runs on the
/// crate's own small executor, so it makes progress under smol, async-std or a plain
/// `block_on` alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    type Stream = Stream;
    type Timer = Timer;

    // Not `async fn`: the future must be `'static`, not borrow the runtime.
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        endpoint: Endpoint,
        options: SocketOptions,
    ) -> impl Future<Output = io::Result<Stream>> + Send + 'static {
        async move {
            use crate::stream::Stream as S;
            let stream = match endpoint {
                #[cfg(unix)]
                Endpoint::Unix(path) => S::Unix(Async::<UnixStream>::connect(path).await?),
                #[cfg(not(unix))]
                Endpoint::Unix(_) => return Err(io::ErrorKind::Unsupported.into()),
                Endpoint::Tcp(addr) => {
                    S::Tcp(Async::<TcpStream>::connect(resolve(&addr).await?).await?)
                }
            };
            stream.apply(&options);
            Ok(Stream(stream))
        }
    }

    fn timer(&self) -> Timer {
        Timer {
            timer: async_io::Timer::never(),
            at: None,
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match crate::spawn::spawn(task) {
            Ok(task) => task.detach(),
            Err(e) => tracing::error!(error = %e, "the client executor could not start"),
        }
    }
}

impl lynn_service::Transport for Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_readable(cx))?;
            // Read into the zeroed spare room (the client's reads are few: no scratch).
            let start = buf.len();
            buf.resize(buf.capacity().max(start + 1), 0);
            let res = self.0.try_read(&mut buf[start..]);
            buf.truncate(start + *res.as_ref().unwrap_or(&0));
            match res {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_writable(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    fn shutdown_write(&mut self) {
        self.0.shutdown_write();
    }
}

/// An async-io timer moved only when the deadline changes (each move re-registers it
/// with the reactor): the [`Timer`](lynn_service::Timer) of [`SmolRuntime`].
#[derive(Debug)]
pub struct Timer {
    timer: async_io::Timer,
    at: Option<Instant>,
}

impl lynn_service::Timer for Timer {
    fn reset(&mut self, deadline: Instant) {
        if self.at != Some(deadline) {
            self.at = Some(deadline);
            self.timer.set_at(deadline);
        }
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}
