//! Tokio's sockets as the shared layer's [`Transport`] and [`Listener`].

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::BytesMut;
use lynn_proto::{Endpoint, PeerAddr, SocketOptions};
use lynn_service::Transport;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A connected stream socket: the [`Transport`] of [`TokioRuntime`](crate::TokioRuntime).
#[derive(Debug)]
pub enum Stream {
    /// A TCP socket.
    Tcp(TcpStream),
    /// A Unix socket.
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `endpoint`, applying `opts` to a TCP socket.
    pub(crate) async fn connect(endpoint: Endpoint, opts: &SocketOptions) -> io::Result<Stream> {
        match endpoint {
            Endpoint::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            Endpoint::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                lynn_service::apply_socket_options(&stream, opts);
                Ok(Stream::Tcp(stream))
            }
        }
    }

    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self {
            Stream::Tcp(s) => s.try_io(interest, f),
            Stream::Unix(s) => s.try_io(interest, f),
        }
    }
}

impl Transport for Stream {
    /// Through `poll_read_ready`, which keeps the one waker of the socket's reader slot,
    /// rather than `readable()`, whose future links itself into the socket's waiter list
    /// and unlinks on drop (a lock each way, on every loop turn). Only the connection's own
    /// task waits on its socket, so the single slot is enough.
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
        }
    }

    /// Tokio's readiness bit, read without a waker or the task's cooperative budget (a
    /// caller that loops on it bounds its own turns).
    fn read_ready(&self) -> bool {
        self.try_io(Interest::READABLE, || Ok(())).is_ok()
    }

    /// A read that leaves spare room in `buf` drained the socket, so the readiness is
    /// cleared (as tokio's own `AsyncRead` does): the next poll waits for the reactor
    /// instead of costing a read that would block.
    fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let spare = buf.capacity() - buf.len();
        let mut got = None;
        let this = &*self;
        let res = this.try_io(Interest::READABLE, || {
            let n = match this {
                Stream::Tcp(s) => s.try_read_buf(buf),
                Stream::Unix(s) => s.try_read_buf(buf),
            }?;
            got = Some(n);
            if n > 0 && n < spare {
                // Not an error: `try_io` clears the readiness it saw on `WouldBlock` (a
                // readiness event newer than that is kept).
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match got {
            Some(n) => Ok(n),
            None => res,
        }
    }

    fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_write_ready(cx),
            Stream::Unix(s) => s.poll_write_ready(cx),
        }
    }

    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // One slice (most output: small replies share one chunk) as a plain write.
        match (self, bufs) {
            (Stream::Tcp(s), [one]) => s.try_write(one),
            (Stream::Unix(s), [one]) => s.try_write(one),
            (Stream::Tcp(s), _) => s.try_write_vectored(bufs),
            (Stream::Unix(s), _) => s.try_write_vectored(bufs),
        }
    }

    fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => socket2::SockRef::from(&*s).shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => socket2::SockRef::from(&*s).shutdown(std::net::Shutdown::Write),
        };
    }
}

/// A listening socket: the [`Listener`](lynn_service::Listener) of
/// [`TokioRuntime`](crate::TokioRuntime).
#[derive(Debug)]
pub struct Listener {
    socket: ListenSocket,
    /// Accepted sockets leave the accepting runtime's reactor, for a worker's.
    detach: bool,
}

#[derive(Debug)]
enum ListenSocket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    pub(crate) async fn bind(endpoint: Endpoint, backlog: u32, detach: bool) -> io::Result<Self> {
        let socket = match endpoint {
            Endpoint::Unix(path) => ListenSocket::Unix(UnixListener::from_std(
                lynn_service::listen_unix(path, backlog)?,
            )?),
            Endpoint::Tcp(addr) => {
                let addr = tokio::net::lookup_host(&addr)
                    .await?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("{addr} resolves to no address"),
                        )
                    })?;
                ListenSocket::Tcp(TcpListener::from_std(lynn_service::listen_tcp(
                    addr, backlog,
                )?)?)
            }
        };
        Ok(Listener { socket, detach })
    }
}

/// An accepted socket: registered with the accepting runtime's reactor, or detached from
/// it for a worker's (registered there by [`Accepted::adopt`], in the connection's task).
#[derive(Debug)]
pub enum Accepted {
    /// Registered with the reactor of the runtime that accepted it.
    Registered(Stream),
    /// Detached (still non-blocking).
    DetachedTcp(std::net::TcpStream),
    /// Detached (still non-blocking).
    DetachedUnix(std::os::unix::net::UnixStream),
}

impl Accepted {
    fn new(stream: Stream, detach: bool) -> io::Result<Accepted> {
        Ok(match (stream, detach) {
            (stream, false) => Accepted::Registered(stream),
            (Stream::Tcp(s), true) => Accepted::DetachedTcp(s.into_std()?),
            (Stream::Unix(s), true) => Accepted::DetachedUnix(s.into_std()?),
        })
    }

    /// The stream, registered with the reactor of the runtime this is called on if it was
    /// detached.
    pub(crate) fn adopt(self) -> io::Result<Stream> {
        Ok(match self {
            Accepted::Registered(s) => s,
            Accepted::DetachedTcp(s) => Stream::Tcp(TcpStream::from_std(s)?),
            Accepted::DetachedUnix(s) => Stream::Unix(UnixStream::from_std(s)?),
        })
    }
}

impl lynn_service::Listener for Listener {
    type Accepted = Accepted;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Accepted, PeerAddr)>> {
        let (stream, peer) = match &self.socket {
            ListenSocket::Tcp(l) => {
                let (s, addr) = std::task::ready!(l.poll_accept(cx))?;
                (Stream::Tcp(s), PeerAddr::Tcp(addr))
            }
            ListenSocket::Unix(l) => {
                let (s, addr) = std::task::ready!(l.poll_accept(cx))?;
                let peer = PeerAddr::Unix(addr.as_pathname().map(|p| p.display().to_string()));
                (Stream::Unix(s), peer)
            }
        };
        Poll::Ready(Accepted::new(stream, self.detach).map(|a| (a, peer)))
    }

    fn local_addr(&self) -> io::Result<PeerAddr> {
        match &self.socket {
            ListenSocket::Tcp(l) => Ok(PeerAddr::Tcp(l.local_addr()?)),
            ListenSocket::Unix(l) => {
                let addr = l.local_addr()?;
                Ok(PeerAddr::Unix(
                    addr.as_pathname().map(|p| p.display().to_string()),
                ))
            }
        }
    }
}
