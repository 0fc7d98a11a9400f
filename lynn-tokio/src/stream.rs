//! One socket type for TCP and Unix streams, plus the read and write steps every drive loop
//! shares: read straight into the connection's receive buffer, write all ready output with
//! one vectored write.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::task::{Context, Poll};

use lynn_proto::{Connection, Endpoint, Instant, PeerAddr, SocketOptions};
use tokio::net::{TcpSocket, TcpStream, UnixStream};

/// Most chunks handed to one vectored write. Small: both arrays are initialised on every
/// vectored write, and small frames share one chunk (only bodies of 1 KiB or more get their
/// own).
const MAX_CHUNKS: usize = 16;

/// A connected stream socket: the [`Transport`](lynn_service::Transport) of
/// [`TokioRuntime`](crate::TokioRuntime).
#[derive(Debug)]
pub enum Stream {
    /// A TCP socket.
    Tcp(TcpStream),
    /// A Unix socket.
    Unix(UnixStream),
}

impl Stream {
    /// Polls until the socket may have bytes (or EOF) to read.
    ///
    /// Through `poll_read_ready`, which keeps the one waker of the socket's reader slot,
    /// rather than `readable()`, whose future links itself into the socket's waiter list
    /// and unlinks on drop (a lock each way, on every loop turn). Only the connection's
    /// own task waits on its socket, so the single slot is enough.
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
        }
    }

    /// Whether the reactor reported the socket readable and no read has found it empty
    /// since: tokio's readiness bit, read without a waker or the task's cooperative budget
    /// (a caller that loops on it bounds its own turns).
    pub(crate) fn read_ready(&self) -> bool {
        let seen = || Ok(());
        match self {
            Stream::Tcp(s) => s.try_io(tokio::io::Interest::READABLE, seen),
            Stream::Unix(s) => s.try_io(tokio::io::Interest::READABLE, seen),
        }
        .is_ok()
    }

    /// Polls until the socket may accept bytes (`poll_write_ready`, as for reads).
    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_write_ready(cx),
            Stream::Unix(s) => s.poll_write_ready(cx),
        }
    }

    /// Reads once into `buf`. A read that leaves spare room in `buf` drained the socket, so
    /// the socket's read readiness is cleared (as tokio's own `AsyncRead` does): the next
    /// `readable()` waits for the reactor instead of costing a read that would block.
    pub(crate) fn read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        let spare = buf.capacity() - buf.len();
        let mut got = None;
        let mut read = || {
            let n = match self {
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
        };
        let res = match self {
            Stream::Tcp(s) => s.try_io(tokio::io::Interest::READABLE, &mut read),
            Stream::Unix(s) => s.try_io(tokio::io::Interest::READABLE, &mut read),
        };
        match got {
            Some(n) => Ok(n),
            None => res,
        }
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(bufs),
            Stream::Unix(s) => s.try_write_vectored(bufs),
        }
    }

    /// Ends the write side (FIN), best effort.
    pub(crate) fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write),
        };
    }

    /// Connects to `endpoint`, applying `opts` to a TCP socket.
    pub(crate) async fn connect(endpoint: Endpoint, opts: &SocketOptions) -> io::Result<Stream> {
        match endpoint {
            Endpoint::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            Endpoint::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                apply_options(&stream, opts);
                Ok(Stream::Tcp(stream))
            }
        }
    }
}

/// A connected stream socket detached from any runtime, to be registered with another
/// runtime's reactor ([`Stream::from_std`]).
#[derive(Debug)]
pub(crate) enum StdStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    /// Detaches the socket from the current runtime's reactor (it stays non-blocking).
    pub(crate) fn into_std(self) -> io::Result<StdStream> {
        Ok(match self {
            Stream::Tcp(s) => StdStream::Tcp(s.into_std()?),
            Stream::Unix(s) => StdStream::Unix(s.into_std()?),
        })
    }

    /// Registers a detached socket with the reactor of the runtime this is called on.
    pub(crate) fn from_std(stream: StdStream) -> io::Result<Stream> {
        Ok(match stream {
            StdStream::Tcp(s) => Stream::Tcp(TcpStream::from_std(s)?),
            StdStream::Unix(s) => Stream::Unix(UnixStream::from_std(s)?),
        })
    }
}

/// Applies `opts` to an accepted or connected TCP socket; a setting the OS refuses is
/// logged and skipped.
pub(crate) fn apply_options(stream: &TcpStream, opts: &SocketOptions) {
    lynn_service::apply_socket_options(stream, opts);
}

/// A TCP listener with `SO_REUSEADDR`, so a restarted server can take its port back at once.
pub(crate) fn listen_tcp(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The peer address of a Unix stream.
pub(crate) fn unix_peer(stream: &UnixStream) -> PeerAddr {
    let path = stream
        .peer_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()));
    PeerAddr::Unix(path)
}

/// Reads once (after readiness) straight into the connection's receive buffer and feeds the
/// result to the connection: bytes, end of stream, or a transport error. Returns the time
/// read from the clock after the read.
pub(crate) fn read_into(stream: &Stream, conn: &mut Connection) -> Instant {
    read_into_with(stream, conn, |conn, now| conn.handle_received(now))
}

/// [`read_into`] with `received` in place of `Connection::handle_received` (a server
/// answers messages in place with `handle_received_inline`).
#[inline]
pub(crate) fn read_into_with(
    stream: &Stream,
    conn: &mut Connection,
    received: impl FnOnce(&mut Connection, Instant),
) -> Instant {
    let fresh = conn.stats().bytes_received == 0;
    let buf = conn.receive_buffer();
    let res = stream.read_buf(buf);
    if fresh && buf.is_empty() && matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        // Readiness fires once with nothing to read on a new connection: give the reserved
        // chunk back, so a connection that never sent anything holds no receive buffer.
        // (Only before the first byte: releasing it on every empty read would cost two
        // allocations per request.)
        *buf = bytes::BytesMut::new();
    }
    let now = Instant::now();
    match res {
        Ok(0) => conn.handle_eof(now),
        Ok(_) => received(conn, now),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => conn.handle_transport_error(e.kind(), now),
    }
    now
}

/// Writes queued output until it is all written or the socket would block. Returns `true`
/// when output remains and the caller must wait for writability. `now` is the time of the
/// caller's loop turn (write progress is timed for the write timeout; a clock read per
/// write would cost more than the precision is worth).
pub(crate) fn flush(stream: &Stream, conn: &mut Connection, now: Instant) -> bool {
    while conn.wants_write() {
        // Most output is one chunk (small replies share one): two slots tell, and cost less
        // to initialise than `MAX_CHUNKS` (~35 instructions per write).
        let mut probe: [&[u8]; 2] = [&[]; 2];
        let res = if conn.transmit_chunks(&mut probe) == 1 {
            stream.try_write(probe[0])
        } else {
            write_chunks(stream, conn)
        };
        match res {
            Ok(0) => conn.handle_transport_error(io::ErrorKind::WriteZero, now),
            Ok(n) => conn.handle_written(n, now),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => conn.handle_transport_error(e.kind(), now),
        }
    }
    false
}

/// Writes up to `MAX_CHUNKS` chunks of queued output with one vectored write.
fn write_chunks(stream: &Stream, conn: &Connection) -> io::Result<usize> {
    let mut chunks: [&[u8]; MAX_CHUNKS] = [&[]; MAX_CHUNKS];
    let n = conn.transmit_chunks(&mut chunks);
    let mut slices = [IoSlice::new(&[]); MAX_CHUNKS];
    for (slot, chunk) in slices.iter_mut().zip(&chunks[..n]) {
        *slot = IoSlice::new(chunk);
    }
    stream.try_write_vectored(&slices[..n])
}
