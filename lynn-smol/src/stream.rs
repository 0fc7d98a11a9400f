//! The byte pipe under a [`Connection`]: a TCP or Unix stream registered with async-io, and
//! the two IO steps of the core's driving contract (read into its receive buffer, write its
//! queued output with one write, vectored when it is in several chunks).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::task::{Context, Poll};

use async_io::Async;
use lynn_proto::{Connection, Instant, SocketOptions};

#[cfg(target_os = "linux")]
use crate::edge::{Registered, Socket};
use crate::tasks::TaskSet;

/// Largest single read, even when the core asks for room for a bigger frame.
const MAX_READ: usize = 256 * 1024;
/// Chunks gathered into one vectored write. Small frames share one chunk (the send queue
/// copies them into one buffer); a large body is a chunk of its own. Both arrays are
/// initialised on every flush, so they are kept short: 64 cost ~400 instructions per write.
const WRITE_CHUNKS: usize = 16;

thread_local! {
    /// Zeroed once per thread and reused by every read on it (see [`Stream::read_into`]);
    /// it grows to the largest read the thread has made (at most [`MAX_READ`]).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A server's connected, non-blocking stream (on Linux always `Edge`: the server's own
/// epoll; the client uses `lynn_service::reactor`'s streams).
#[derive(Debug)]
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) enum Stream {
    /// TCP.
    Tcp(Async<TcpStream>),
    /// Unix domain socket.
    #[cfg(unix)]
    Unix(Async<UnixStream>),
    /// A server's connection, registered with its epoll instance (Linux).
    #[cfg(target_os = "linux")]
    Edge(Registered),
}

/// What a read did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Bytes were handed to the connection; `full` when the read filled all the room given,
    /// so more may be waiting in the kernel.
    Data {
        /// Whether the read filled the buffer.
        full: bool,
    },
    /// Nothing to read right now.
    WouldBlock,
    /// End of stream or an error, already reported to the connection.
    Done,
}

impl Stream {
    /// A TCP connection accepted by a server running `tasks`.
    pub(crate) fn accepted_tcp(s: TcpStream, tasks: &TaskSet) -> io::Result<Stream> {
        #[cfg(target_os = "linux")]
        return Ok(Stream::Edge(tasks.epoll().register(Socket::Tcp(s))?));
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tasks;
            Ok(Stream::Tcp(Async::new(s)?))
        }
    }

    /// A Unix connection accepted by a server running `tasks`.
    #[cfg(unix)]
    pub(crate) fn accepted_unix(s: UnixStream, tasks: &TaskSet) -> io::Result<Stream> {
        #[cfg(target_os = "linux")]
        return Ok(Stream::Edge(tasks.epoll().register(Socket::Unix(s))?));
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tasks;
            Ok(Stream::Unix(Async::new(s)?))
        }
    }

    /// Applies `opts` (TCP only; Unix sockets have no such options); a setting the OS
    /// refuses is logged and skipped.
    pub(crate) fn apply(&self, opts: &SocketOptions) {
        let tcp = match self {
            Stream::Tcp(s) => s.get_ref(),
            #[cfg(target_os = "linux")]
            Stream::Edge(s) => match s.tcp() {
                Some(s) => s,
                None => return,
            },
            #[cfg(unix)]
            Stream::Unix(_) => return,
        };
        lynn_service::apply_socket_options(tcp, opts);
    }

    /// Polls for readability (async-io semantics: ready once per reactor event).
    #[inline]
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_readable(cx),
            #[cfg(unix)]
            Stream::Unix(s) => s.poll_readable(cx),
            #[cfg(target_os = "linux")]
            Stream::Edge(s) => s.poll_readable(cx),
        }
    }

    /// Polls for writability.
    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_writable(cx),
            #[cfg(unix)]
            Stream::Unix(s) => s.poll_writable(cx),
            #[cfg(target_os = "linux")]
            Stream::Edge(s) => s.poll_writable(cx),
        }
    }

    #[inline]
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.get_ref().read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().read(buf),
            #[cfg(target_os = "linux")]
            Stream::Edge(s) => s.read(buf),
        }
    }

    #[inline]
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.get_ref().write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().write(buf),
            #[cfg(target_os = "linux")]
            Stream::Edge(s) => s.write(buf),
        }
    }

    #[inline]
    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.get_ref().write_vectored(bufs),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().write_vectored(bufs),
            #[cfg(target_os = "linux")]
            Stream::Edge(s) => s.write_vectored(bufs),
        }
    }

    /// Sends FIN after the last byte; errors are irrelevant at that point.
    pub(crate) fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.get_ref().shutdown(Shutdown::Write),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().shutdown(Shutdown::Write),
            #[cfg(target_os = "linux")]
            Stream::Edge(s) => s.shutdown_write(),
        };
    }

    /// One non-blocking read into the connection's receive buffer.
    ///
    /// Safe code cannot read into uninitialised memory, and zeroing the buffer's free room
    /// before every read (16 KiB or more) cost two thirds of the server's instructions with
    /// one request per read. So the read goes into a per-thread scratch buffer that is
    /// zeroed once, and only the bytes received are copied over.
    ///
    /// Bytes received are handed to the connection by `received` (`handle_received`, or a
    /// server's `handle_received_inline`, which answers messages in place); end of stream
    /// and errors are reported to it here.
    ///
    /// Returns how the read went and the time read from the clock after it.
    #[inline]
    pub(crate) fn read_into(
        &self,
        conn: &mut Connection,
        received: impl FnOnce(&mut Connection, Instant),
    ) -> (ReadOutcome, Instant) {
        let buf = conn.receive_buffer();
        let room = (buf.capacity() - buf.len()).clamp(1, MAX_READ);
        let result = SCRATCH.with_borrow_mut(|scratch| {
            if scratch.len() < room {
                scratch.resize(room, 0);
            }
            let result = self.try_read(&mut scratch[..room]);
            if let Ok(n) = result {
                buf.extend_from_slice(&scratch[..n]);
            }
            result
        });
        let now = Instant::now();
        let outcome = match result {
            Ok(0) => {
                conn.handle_eof(now);
                ReadOutcome::Done
            }
            Ok(n) => {
                received(conn, now);
                ReadOutcome::Data { full: n == room }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Data { full: true },
            Err(e) => {
                tracing::debug!(error = %e, "read failed");
                conn.handle_transport_error(e.kind(), now);
                ReadOutcome::Done
            }
        };
        (outcome, now)
    }

    /// Writes queued output until it is gone or the socket would block. Returns whether the
    /// socket would block with output still queued (wait for writability then). `now` is the
    /// time of the caller's loop turn (write progress is timed for the write timeout; a clock
    /// read per write would cost more than the precision is worth).
    pub(crate) fn write_from(&self, conn: &mut Connection, now: Instant) -> bool {
        while conn.wants_write() {
            // Most output is one chunk (small replies share one): two slots tell. One chunk
            // goes out with a plain write (`send`), whose path through the kernel is shorter
            // than `writev`'s.
            let mut probe: [&[u8]; 2] = [&[]; 2];
            let result = if conn.transmit_chunks(&mut probe) == 1 {
                self.try_write(probe[0])
            } else {
                self.write_chunks(conn)
            };
            match result {
                Ok(0) => {
                    conn.handle_transport_error(io::ErrorKind::WriteZero, now);
                    return false;
                }
                Ok(n) => conn.handle_written(n, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(error = %e, "write failed");
                    conn.handle_transport_error(e.kind(), now);
                    return false;
                }
            }
        }
        false
    }

    /// Writes up to [`WRITE_CHUNKS`] chunks of queued output with one vectored write.
    fn write_chunks(&self, conn: &Connection) -> io::Result<usize> {
        let mut chunks: [&[u8]; WRITE_CHUNKS] = [&[]; WRITE_CHUNKS];
        let n = conn.transmit_chunks(&mut chunks);
        let mut slices = [IoSlice::new(&[]); WRITE_CHUNKS];
        for (slice, chunk) in slices.iter_mut().zip(&chunks[..n]) {
            *slice = IoSlice::new(chunk);
        }
        self.try_write_vectored(&slices[..n])
    }
}
