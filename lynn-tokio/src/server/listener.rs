//! The listening socket: TCP or Unix.

use std::io;

use lynn_proto::PeerAddr;
use tokio::net::{TcpListener, UnixListener};

use crate::stream::{self, Stream};

/// A bound listener.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The next connection and where it comes from.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                Ok((Stream::Tcp(s), PeerAddr::Tcp(addr)))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                let peer = stream::unix_peer(&s);
                Ok((Stream::Unix(s), peer))
            }
        }
    }

    /// The address peers connect to.
    pub(crate) fn local_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Listener::Tcp(l) => Ok(PeerAddr::Tcp(l.local_addr()?)),
            Listener::Unix(l) => {
                let addr = l.local_addr()?;
                Ok(PeerAddr::Unix(
                    addr.as_pathname().map(|p| p.display().to_string()),
                ))
            }
        }
    }
}
