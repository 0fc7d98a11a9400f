//! Opening a client's connection: address parsing, the connect timeout, socket options, and
//! a distinct reconnect jitter seed per client.

use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_io::{Async, Timer};
use futures_lite::future;
use lynn_proto::{ClientConfig, ClientError};

use crate::server::resolve;
use crate::stream::Stream;

/// The Unix socket path in `addr` (`unix:/path` or an absolute path), if it is one.
fn unix_path(addr: &str) -> Option<&str> {
    addr.strip_prefix("unix:")
        .or_else(|| addr.starts_with('/').then_some(addr))
}

/// One connection attempt, bounded by `config.connect_timeout`.
pub(crate) async fn dial(config: &ClientConfig) -> Result<Stream, ClientError> {
    let attempt = async {
        #[cfg(unix)]
        if let Some(path) = unix_path(&config.addr) {
            return Async::<UnixStream>::connect(path).await.map(Stream::Unix);
        }
        let addr = resolve(&config.addr).await?;
        Async::<TcpStream>::connect(addr).await.map(Stream::Tcp)
    };
    let timeout = async {
        Timer::after(config.connect_timeout).await;
        None
    };
    match future::or(async { Some(attempt.await) }, timeout).await {
        None => Err(ClientError::ConnectTimeout),
        Some(Err(e)) => Err(ClientError::Connect(e)),
        Some(Ok(stream)) => {
            stream.apply(&config.socket);
            Ok(stream)
        }
    }
}

/// `base` mixed with a process-wide counter, the clock and the process id, so clients
/// started together do not retry together.
pub(crate) fn seed(base: u64) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = base
        ^ nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ NEXT
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses() {
        assert_eq!(unix_path("unix:/tmp/x"), Some("/tmp/x"));
        assert_eq!(unix_path("/tmp/x"), Some("/tmp/x"));
        assert_eq!(unix_path("127.0.0.1:9177"), None);
    }

    #[test]
    fn seeds_differ_per_client() {
        assert_ne!(seed(7), seed(7));
    }
}
