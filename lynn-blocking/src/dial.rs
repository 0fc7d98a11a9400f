//! Opening a client connection, and the per-client reconnect jitter seed.

use std::hash::{BuildHasher, Hasher};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};

use lynn_proto::{ClientConfig, ClientError};

use crate::stream::Stream;

/// Opens a connection per `config`: `unix:/path`, or every address of `host:port` in turn,
/// each bounded by `connect_timeout`.
pub(crate) fn dial(config: &ClientConfig) -> Result<Stream, ClientError> {
    #[cfg(unix)]
    if let Some(path) = config.addr.strip_prefix("unix:") {
        let s = std::os::unix::net::UnixStream::connect(path).map_err(ClientError::Connect)?;
        return Ok(Stream::Unix(s));
    }
    let addrs = config
        .addr
        .to_socket_addrs()
        .map_err(ClientError::Connect)?;
    let mut last = ClientError::Connect(std::io::ErrorKind::AddrNotAvailable.into());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, config.connect_timeout) {
            Ok(s) => {
                let s = Stream::Tcp(s);
                if let Err(e) = s.apply(&config.socket) {
                    log::debug!("socket options for {addr}: {e}");
                }
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = ClientError::ConnectTimeout;
            }
            Err(e) => last = ClientError::Connect(e),
        }
    }
    Err(last)
}

/// A seed no other client in this process (or, very likely, any other) shares.
pub(crate) fn distinct_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}
