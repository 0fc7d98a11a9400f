//! Opening a client connection.

use std::net::{TcpStream, ToSocketAddrs};

use lynn_proto::{ClientConfig, ClientError, Endpoint};

use crate::stream::Stream;

/// Opens a connection per `config`: `unix:/path`, or every address of `host:port` in turn,
/// each bounded by `connect_timeout`.
pub(crate) fn dial(config: &ClientConfig) -> Result<Stream, ClientError> {
    let addr = match Endpoint::parse(&config.addr) {
        Endpoint::Tcp(addr) => addr,
        #[cfg(unix)]
        Endpoint::Unix(path) => {
            let s = std::os::unix::net::UnixStream::connect(path).map_err(ClientError::Connect)?;
            return Ok(Stream::Unix(s));
        }
        #[cfg(not(unix))]
        Endpoint::Unix(_) => {
            return Err(ClientError::Connect(std::io::ErrorKind::Unsupported.into()));
        }
    };
    let addrs = addr.to_socket_addrs().map_err(ClientError::Connect)?;
    let mut last = ClientError::Connect(std::io::ErrorKind::AddrNotAvailable.into());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, config.connect_timeout) {
            Ok(s) => {
                let s = Stream::Tcp(s);
                s.apply(&config.socket);
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
