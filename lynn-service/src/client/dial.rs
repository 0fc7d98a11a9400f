//! How the client's task gets a stream, the first time and on every reconnect: a plain
//! connection ([`Plain`]), or a connection and a TLS handshake (`Tls`, feature `tls`),
//! both within `connect_timeout`. Each is a type of its own, so the task is monomorphised
//! over the stream it drives.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use lynn_proto::{ClientConfig, ClientError, Endpoint, Instant};

use crate::runtime::{Runtime, Timer, Transport};

/// Dials the server for the client's task.
pub(crate) trait Dial<R: Runtime>: Send + Sync + 'static {
    /// The stream the client's task drives.
    type Stream: Transport;

    /// One attempt, bounded by `config.connect_timeout`.
    fn dial(
        &self,
        rt: &R,
        config: &ClientConfig,
    ) -> impl Future<Output = Result<Self::Stream, ClientError>> + Send + 'static;
}

/// A plain connection.
pub(crate) struct Plain;

impl<R: Runtime> Dial<R> for Plain {
    type Stream = R::Stream;

    fn dial(
        &self,
        rt: &R,
        config: &ClientConfig,
    ) -> impl Future<Output = Result<R::Stream, ClientError>> + Send + 'static {
        let (rt, config) = (rt.clone(), config.clone());
        async move {
            let mut timer = rt.timer();
            let deadline = rt.now() + config.connect_timeout;
            connect(&rt, &config, &mut timer, deadline).await
        }
    }
}

/// Connects to `config.addr`, or fails at `deadline` (on `timer`).
async fn connect<R: Runtime>(
    rt: &R,
    config: &ClientConfig,
    timer: &mut R::Timer,
    deadline: Instant,
) -> Result<R::Stream, ClientError> {
    let mut connecting = pin!(rt.connect(Endpoint::parse(&config.addr), config.socket.clone()));
    timer.reset(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(res) = connecting.as_mut().poll(cx) {
            return Poll::Ready(res.map_err(ClientError::Connect));
        }
        timer
            .poll_elapsed(cx)
            .map(|()| Err(ClientError::ConnectTimeout))
    })
    .await
}

#[cfg(feature = "tls")]
pub(crate) use tls::Tls;

#[cfg(feature = "tls")]
mod tls {
    use std::future::Future;

    use lynn_proto::{ClientConfig, ClientError, ConfigError, Endpoint};
    use rustls::ClientConnection;
    use rustls::pki_types::ServerName;

    use super::{Dial, connect};
    use crate::runtime::Runtime;
    use crate::tls::{ClientTls, HandshakeError, TlsStream, handshake};

    /// A connection, then a TLS handshake with the server named `name`.
    pub(crate) struct Tls {
        tls: ClientTls,
        name: ServerName<'static>,
    }

    impl Tls {
        /// The TLS dial of `config.addr`: the server name is resolved now, so that a bad
        /// one fails `connect_tls` rather than every dial.
        pub(crate) fn new(tls: ClientTls, config: &ClientConfig) -> Result<Self, ClientError> {
            let name = match Endpoint::parse(&config.addr) {
                Endpoint::Tcp(addr) => tls.server_name_for(&addr),
                // No host to take a name from: only an explicit one.
                Endpoint::Unix(_) => tls.server_name_for(""),
            };
            let name = name.map_err(|e| ConfigError {
                field: "tls",
                problem: format!("{e} (set one with ClientTls::server_name)"),
            })?;
            Ok(Tls { tls, name })
        }
    }

    impl<R: Runtime> Dial<R> for Tls {
        type Stream = TlsStream<R::Stream, ClientConnection>;

        fn dial(
            &self,
            rt: &R,
            config: &ClientConfig,
        ) -> impl Future<Output = Result<Self::Stream, ClientError>> + Send + 'static {
            let (rt, config) = (rt.clone(), config.clone());
            let (tls, name) = (self.tls.clone(), self.name.clone());
            async move {
                let mut timer = rt.timer();
                let deadline = rt.now() + config.connect_timeout;
                let stream = connect(&rt, &config, &mut timer, deadline).await?;
                let mut stream = tls
                    .connect(stream, name)
                    .map_err(|e| ClientError::Connect(std::io::Error::other(e)))?;
                match handshake(&mut stream, &mut timer, deadline).await {
                    Ok(()) => Ok(stream),
                    Err(HandshakeError::Timeout) => Err(ClientError::ConnectTimeout),
                    Err(e) => Err(ClientError::Connect(e.into_io())),
                }
            }
        }
    }
}
