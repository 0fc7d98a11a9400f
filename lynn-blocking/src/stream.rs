//! One byte stream type over TCP and Unix sockets, plus socket options.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use lynn_proto::{PeerAddr, SocketOptions};

/// A connected socket, TCP or Unix.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Another handle on the same socket (for the reader thread or a forced close).
    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            #[cfg(unix)]
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    /// Shuts both directions; unblocks a thread blocked reading this socket.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// `SO_SNDTIMEO`: how long one write may block.
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }

    /// The peer's address.
    pub(crate) fn peer(&self) -> PeerAddr {
        match self {
            Stream::Tcp(s) => match s.peer_addr() {
                Ok(a) => PeerAddr::Tcp(a),
                Err(_) => PeerAddr::Unix(None),
            },
            #[cfg(unix)]
            Stream::Unix(s) => PeerAddr::Unix(
                s.peer_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string())),
            ),
        }
    }

    /// Applies `opts` (TCP only; Unix sockets have none of these); a setting the OS
    /// refuses is logged and skipped.
    pub(crate) fn apply(&self, opts: &SocketOptions) {
        let Stream::Tcp(s) = self else { return };
        lynn_service::apply_socket_options(s, opts);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
