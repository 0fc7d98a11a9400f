//! What a connection's task does between adopting its socket and starting its protocol:
//! nothing on a plain server ([`Plain`]), the TLS handshake on a TLS one (`Tls`, feature
//! `tls`). Each is a type of its own, chosen once at accept, so the task is monomorphised
//! over the stream it drives: a plain connection has no TLS branch on any read or write.

use std::future::Future;

use lynn_proto::CloseReason;

use super::App;
use super::context::Scope;
use super::inbox::Inbox;
use crate::runtime::{Runtime, Transport};

/// Why a connection ended before its protocol started.
pub(crate) enum NotUpgraded {
    /// The handshake failed (counted in the metrics by its reason).
    #[cfg(feature = "tls")]
    Handshake(crate::tls::HandshakeError),
    /// The server asked the connection to end (shutdown) before the handshake completed.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Ended,
}

impl NotUpgraded {
    /// Logs and counts the failure.
    pub(crate) fn report(&self, metrics: &crate::Metrics, peer: &lynn_proto::PeerAddr) {
        match self {
            #[cfg(feature = "tls")]
            NotUpgraded::Handshake(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                metrics.tls_handshake_failed(e.reason());
            }
            NotUpgraded::Ended => {
                let _ = metrics;
                tracing::debug!(%peer, "connection ended before its handshake completed");
            }
        }
    }

    /// The close reason the connection's registration records.
    pub(crate) fn reason(&self) -> CloseReason {
        match self {
            #[cfg(feature = "tls")]
            NotUpgraded::Handshake(e) => CloseReason::Transport(e.kind()),
            NotUpgraded::Ended => CloseReason::Local,
        }
    }
}

/// Turns an adopted socket into the stream a connection's protocol runs over.
pub(crate) trait Upgrade<S, R: Runtime>: 'static {
    /// The stream the connection's task drives.
    type Stream: Transport;

    /// Upgrades `stream`; ends early when `inbox` is told to close or abort. A failure gives
    /// the socket back, for the caller to close after it updated the server (so a peer
    /// that sees the close sees the server updated).
    fn upgrade<'a>(
        app: &'a App<S, R>,
        stream: R::Stream,
        inbox: &'a Inbox,
    ) -> impl Future<Output = Result<Self::Stream, (NotUpgraded, R::Stream)>> + Send + 'a;

    /// Adds what the upgrade learnt about the peer to the connection's scope.
    #[inline]
    fn annotate(_stream: &Self::Stream, _scope: &mut Scope<S>) {}
}

/// The socket as it is.
pub(crate) struct Plain;

impl<S: Send + Sync + 'static, R: Runtime> Upgrade<S, R> for Plain {
    type Stream = R::Stream;

    #[inline]
    fn upgrade<'a>(
        _app: &'a App<S, R>,
        stream: R::Stream,
        _inbox: &'a Inbox,
    ) -> impl Future<Output = Result<R::Stream, (NotUpgraded, R::Stream)>> + Send + 'a {
        std::future::ready(Ok(stream))
    }
}

#[cfg(feature = "tls")]
pub(crate) use tls::Tls;

#[cfg(feature = "tls")]
mod tls {
    use std::collections::VecDeque;
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::task::Poll;

    use rustls::ServerConnection;

    use super::{NotUpgraded, Upgrade};
    use crate::runtime::Runtime;
    use crate::server::App;
    use crate::server::context::Scope;
    use crate::server::inbox::Inbox;
    use crate::tls::{HandshakeError, TlsStream, handshake};

    /// The server's TLS handshake, bounded by its handshake timeout.
    pub(crate) struct Tls;

    impl<S: Send + Sync + 'static, R: Runtime> Upgrade<S, R> for Tls {
        type Stream = TlsStream<R::Stream, ServerConnection>;

        async fn upgrade(
            app: &App<S, R>,
            stream: R::Stream,
            inbox: &Inbox,
        ) -> Result<Self::Stream, (NotUpgraded, R::Stream)> {
            let Some(tls) = app.tls.as_ref() else {
                return Err((NotUpgraded::Ended, stream));
            };
            let session = match ServerConnection::new(tls.config().clone()) {
                Ok(session) => session,
                Err(e) => {
                    let e = HandshakeError::Io(std::io::Error::other(e));
                    return Err((NotUpgraded::Handshake(e), stream));
                }
            };
            let mut stream = TlsStream::new(stream, session);
            let mut timer = app.rt.timer();
            let deadline = app.rt.now() + tls.timeout();
            let ended = {
                let mut shaking = pin!(handshake(&mut stream, &mut timer, deadline));
                // Never filled: only the close and abort orders are looked for.
                let mut none = VecDeque::new();
                poll_fn(|cx| {
                    if let Poll::Ready(res) = shaking.as_mut().poll(cx) {
                        return Poll::Ready(res.map_err(NotUpgraded::Handshake));
                    }
                    inbox
                        .poll_next(cx, &mut none, false, false)
                        .map(|_| Err(NotUpgraded::Ended))
                })
                .await
            };
            match ended {
                Ok(()) => Ok(stream),
                Err(e) => Err((e, stream.into_parts().0)),
            }
        }

        fn annotate(stream: &Self::Stream, scope: &mut Scope<S>) {
            scope.set_peer_certificates(stream.peer_certificates());
        }
    }
}
