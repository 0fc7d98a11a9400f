//! Types every runtime crate shares: peer addresses, endpoints, a client's pushes, and the
//! errors a server or client returns. They are plain data; no IO happens here.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use thiserror::Error;

use crate::admission::AdmissionConfigError;
use crate::error::{CloseReason, ConfigError, EncodeError};
use crate::router::RouteError;

/// Where a connection comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix domain socket peer, with its path when it has one.
    Unix(Option<String>),
}

impl PeerAddr {
    /// The TCP address, for a TCP peer.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Tcp(a) => Some(*a),
            PeerAddr::Unix(_) => None,
        }
    }

    /// The address admission limits apply to. All Unix-socket peers share one entry (`::`):
    /// they are local processes, not network addresses.
    pub fn admission_ip(&self) -> IpAddr {
        match self {
            PeerAddr::Tcp(a) => a.ip(),
            PeerAddr::Unix(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => a.fmt(f),
            PeerAddr::Unix(Some(p)) => write!(f, "unix:{p}"),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

/// Where to connect or listen, parsed from an address string: `unix:/path` names a Unix
/// domain socket, anything else is a TCP `host:port`.
///
/// ```
/// use lynn_proto::Endpoint;
/// assert_eq!(Endpoint::parse("unix:/tmp/lynn.sock"), Endpoint::Unix("/tmp/lynn.sock".into()));
/// assert_eq!(Endpoint::parse("127.0.0.1:9177"), Endpoint::Tcp("127.0.0.1:9177".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A TCP `host:port`.
    Tcp(String),
    /// A Unix domain socket path.
    Unix(String),
}

impl Endpoint {
    /// Parses an address string.
    pub fn parse(addr: &str) -> Endpoint {
        match addr.strip_prefix("unix:") {
            Some(path) => Endpoint::Unix(path.to_string()),
            None => Endpoint::Tcp(addr.to_string()),
        }
    }
}

/// A message received by a client that is not the reply to one of its requests (a push).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Method id.
    pub method: u16,
    /// Body.
    pub body: Bytes,
}

/// Why a server could not queue a message for one connection.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendToError {
    /// No open connection has this id.
    #[error("{0} is not connected")]
    UnknownConnection(crate::ConnectionId),
    /// That connection's outbound queue is full (a slow consumer); nothing was queued.
    #[error("{0}: outbound queue full")]
    QueueFull(crate::ConnectionId),
    /// The body does not fit under the peer's frame limit.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Why a server could not be built, bound or run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The admission settings cannot work.
    #[error(transparent)]
    Admission(#[from] AdmissionConfigError),
    /// Two routes for one method.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Binding or accepting failed.
    #[error("server io: {0}")]
    Io(#[from] io::Error),
}

/// Why a client call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting failed.
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    /// Connecting took longer than `connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Not connected now (reconnecting, with no offline queue or a full one).
    #[error("not connected")]
    Disconnected,
    /// The reply did not come within `request_timeout`.
    #[error("request timed out")]
    Timeout,
    /// The reply did not come within `request_timeout` while the client had stopped
    /// reading because `unread` pushes waited for [`recv`] (`incoming_queue` full under
    /// [`PushFull::Wait`](crate::PushFull::Wait)): the reply is likely behind them. Call
    /// `recv`, or choose a dropping [`PushFull`](crate::PushFull) policy.
    ///
    /// [`recv`]: crate::client_calls#pushes
    #[error("request timed out while {unread} unread pushes held up reading (call recv)")]
    PushesUnread {
        /// Pushes waiting for `recv` when the request expired.
        unread: usize,
    },
    /// Another request on the connection timed out without correlation ids, so no later
    /// reply could be told from its late one: the client gave up the connection (and
    /// reconnects under its policy). Safe to retry. Correlation ids
    /// (`ClientConfig::correlation_ids`) avoid this.
    #[error("reply order lost after another request timed out; connection replaced")]
    CorrelationLost,
    /// `max_pending_requests` requests already await replies.
    #[error("too many requests awaiting replies")]
    TooManyPending,
    /// The send queue is full; the server is not reading fast enough.
    #[error("send queue full")]
    QueueFull,
    /// The message does not fit under the server's frame limit.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The connection closed and will not come back (closed by the user, reconnect off, or
    /// given up). Carries the last close reason when there was one.
    #[error("client closed{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<CloseReason>),
    /// Reconnecting gave up after this many consecutive failed attempts.
    #[error("gave up reconnecting after {attempts} attempts")]
    GaveUp {
        /// Failed attempts.
        attempts: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_peers_share_one_admission_entry() {
        let a = PeerAddr::Unix(Some("/tmp/a".into()));
        let b = PeerAddr::Unix(None);
        assert_eq!(a.admission_ip(), b.admission_ip());
        assert_eq!(a.to_string(), "unix:/tmp/a");
    }
}
