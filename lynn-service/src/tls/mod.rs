//! TLS 1.3 and mutual TLS (feature `tls`), written once for every runtime and both sides.
//!
//! A [`TlsStream`] drives a rustls session sans-IO over any [`Transport`](crate::Transport)
//! and is a `Transport` itself, so the server's connection task and the client's task
//! drive plain and TLS streams with the same loop (each monomorphised over its stream
//! type: a plain connection pays nothing for TLS being there).
//!
//! - **Server**: `ServerBuilder::tls(`[`ServerTls`]`)`. Each accepted connection's task
//!   adopts its socket, then runs the [`handshake`] (bounded by
//!   [`ServerTls::handshake_timeout`], 10 s by default) before its protocol starts and
//!   before `ServerEvent::Connected`. A peer that stalls, sends something else than a
//!   ClientHello or fails verification is closed alone, its admission seat and table
//!   entry released, and counted in `lynn_tls_handshake_failures_total{reason}`. The
//!   client certificate chain verified under mutual TLS is
//!   `Context::peer_certificates()` to handlers.
//! - **Client**: `Client::connect_tls(config, `[`ClientTls`]`)`. Every dial, the first
//!   and each reconnect, connects and handshakes within `connect_timeout`.
//!
//! rustls runs with the *ring* crypto provider (it builds with a C compiler alone; the
//! aws-lc-rs provider would also need cmake) and, unless given a ready configuration, TLS
//! 1.3 only, as lynn_tcp 2.2. PEM files are read with `rustls-pki-types`' `PemObject`.

mod config;
mod handshake;
mod stream;
#[cfg(test)]
mod tests;

pub use config::{ClientTls, DEFAULT_HANDSHAKE_TIMEOUT, ServerTls, TlsError};
pub use handshake::{HandshakeError, handshake};
pub use stream::{Session, TLS_BUFFER_LIMIT, TlsStream};

/// rustls itself, to build a ready configuration ([`ServerTls::from_config`],
/// [`ClientTls::from_config`]) or name its types.
pub use rustls;
/// A DER certificate, as [`TlsStream::peer_certificates`] and a handler's
/// `Context::peer_certificates` give them.
pub use rustls::pki_types::CertificateDer;
