//! The handshake: driven to completion over a [`Transport`] before the connection's
//! protocol starts, with a runtime [`Timer`] as its deadline.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};

use lynn_proto::Instant;
use rustls::AlertDescription;

use super::stream::{Pull, Session, TlsStream};
use crate::runtime::{Timer, Transport};

/// Why a TLS handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// It did not complete by its deadline (a stalled or slow peer).
    #[error("TLS handshake timed out")]
    Timeout,
    /// A certificate was refused: the peer's by this side, or this side's by the peer (its
    /// alert), or none was presented where one is required.
    #[error("TLS certificate refused: {0}")]
    Certificate(#[source] rustls::Error),
    /// The peer broke the protocol: garbage instead of a TLS record, an unexpected message,
    /// no common version or cipher suite, or an alert.
    #[error("TLS handshake failed: {0}")]
    Protocol(#[source] rustls::Error),
    /// The transport failed or ended before the handshake completed.
    #[error("TLS handshake interrupted: {0}")]
    Io(#[source] io::Error),
}

impl HandshakeError {
    /// The metric label of this failure: `"timeout"`, `"certificate"`, `"protocol"` or
    /// `"io"` (see [`Metrics::tls_handshake_failed`](crate::Metrics::tls_handshake_failed)).
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => "timeout",
            HandshakeError::Certificate(_) => "certificate",
            HandshakeError::Protocol(_) => "protocol",
            HandshakeError::Io(_) => "io",
        }
    }

    /// The `io::ErrorKind` that stands for this failure where one is needed (a close reason,
    /// a client's connect error).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            HandshakeError::Timeout => io::ErrorKind::TimedOut,
            HandshakeError::Certificate(_) | HandshakeError::Protocol(_) => {
                io::ErrorKind::InvalidData
            }
            HandshakeError::Io(e) => e.kind(),
        }
    }

    /// Sorts an error met during the handshake.
    fn from_io(e: io::Error) -> Self {
        if e.kind() != io::ErrorKind::InvalidData {
            return HandshakeError::Io(e);
        }
        match e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            Some(Ok(tls)) => HandshakeError::from_tls(*tls),
            Some(Err(other)) => {
                HandshakeError::Io(io::Error::new(io::ErrorKind::InvalidData, other))
            }
            None => HandshakeError::Io(io::ErrorKind::InvalidData.into()),
        }
    }

    fn from_tls(e: rustls::Error) -> Self {
        use rustls::Error as E;
        let certificate = match &e {
            E::InvalidCertificate(_)
            | E::NoCertificatesPresented
            | E::InvalidCertRevocationList(_)
            | E::UnsupportedNameType => true,
            E::AlertReceived(alert) => matches!(
                alert,
                AlertDescription::BadCertificate
                    | AlertDescription::UnsupportedCertificate
                    | AlertDescription::CertificateRevoked
                    | AlertDescription::CertificateExpired
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::UnknownCA
                    | AlertDescription::CertificateRequired
                    | AlertDescription::AccessDenied
            ),
            _ => false,
        };
        if certificate {
            HandshakeError::Certificate(e)
        } else {
            HandshakeError::Protocol(e)
        }
    }

    /// This failure as an `io::Error` (for a client's [`ClientError::Connect`]), with this
    /// error inside.
    ///
    /// [`ClientError::Connect`]: lynn_proto::ClientError::Connect
    pub fn into_io(self) -> io::Error {
        match self {
            HandshakeError::Io(e) => e,
            other => io::Error::new(other.kind(), other),
        }
    }
}

impl<T: Transport, C: Session> TlsStream<T, C> {
    /// Drives the handshake as far as it goes now: ready once it completed and its last
    /// flight is written, or when it failed; pending with the inner stream's readiness
    /// registered otherwise.
    pub fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), HandshakeError>> {
        loop {
            let write_blocked = match self.flush_records() {
                Ok(()) => false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
                Err(e) => return Poll::Ready(Err(HandshakeError::Io(e))),
            };
            if !self.is_handshaking() {
                if !write_blocked {
                    return Poll::Ready(Ok(()));
                }
            } else {
                match self.pull() {
                    Ok(Pull::Progress) => continue,
                    Ok(Pull::Eof) => {
                        let eof = io::ErrorKind::UnexpectedEof.into();
                        return Poll::Ready(Err(HandshakeError::Io(eof)));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(HandshakeError::from_io(e))),
                }
            }
            if write_blocked {
                match self.poll_inner_write_ready(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(HandshakeError::Io(e))),
                    Poll::Pending => {}
                }
            }
            if self.is_handshaking() {
                match self.poll_inner_read_ready(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(HandshakeError::Io(e))),
                    Poll::Pending => {}
                }
            }
            return Poll::Pending;
        }
    }
}

/// Drives `stream`'s handshake to completion, or fails it at `deadline` (on `timer`) with
/// [`HandshakeError::Timeout`]. Plaintext that arrived with the peer's last flight stays
/// buffered in the stream, readable at once.
pub async fn handshake<T: Transport, C: Session>(
    stream: &mut TlsStream<T, C>,
    timer: &mut impl Timer,
    deadline: Instant,
) -> Result<(), HandshakeError> {
    timer.reset(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(res) = stream.poll_handshake(cx) {
            return Poll::Ready(res);
        }
        timer
            .poll_elapsed(cx)
            .map(|()| Err(HandshakeError::Timeout))
    })
    .await
}
