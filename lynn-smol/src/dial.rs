//! Opening a client's connection: address parsing, the connect timeout, socket options.

use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;

use async_io::{Async, Timer};
use futures_lite::future;
use lynn_proto::{ClientConfig, ClientError, Endpoint};

use crate::server::resolve;
use crate::stream::Stream;

/// One connection attempt to `config.addr` (`host:port` or `unix:/path`), bounded by
/// `config.connect_timeout`.
pub(crate) async fn dial(config: &ClientConfig) -> Result<Stream, ClientError> {
    let attempt = async {
        match Endpoint::parse(&config.addr) {
            #[cfg(unix)]
            Endpoint::Unix(path) => Async::<UnixStream>::connect(path).await.map(Stream::Unix),
            #[cfg(not(unix))]
            Endpoint::Unix(_) => Err(std::io::ErrorKind::Unsupported.into()),
            Endpoint::Tcp(addr) => {
                let addr = resolve(&addr).await?;
                Async::<TcpStream>::connect(addr).await.map(Stream::Tcp)
            }
        }
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
