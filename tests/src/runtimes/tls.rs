//! The suite over TLS: [`Tls<R>`] is adapter `R` with every server serving mutual TLS and
//! every client connecting with `connect_tls`, on certificates made once per process
//! ([`SuiteTls`]); the scenarios' raw peers see [`Runtime::tls`] and speak TLS too.

use std::marker::PhantomData;
use std::sync::OnceLock;

use lynn_proto::{ClientConfig, ClientError, ServerConfig, ServerError};
use lynn_service::tls::{ClientTls, ServerTls};

use crate::app::App;
use crate::pki::Pki;
use crate::runtime::Runtime;

/// An adapter that serves and connects over TLS too: what [`Tls<R>`] needs of `R`.
pub trait TlsRuntime: Runtime {
    /// The name of `Tls<Self>`, for messages.
    const TLS_NAME: &'static str;

    /// Like [`Runtime::start_server`], with `ServerBuilder::tls(tls)`.
    fn start_tls_server(
        config: ServerConfig,
        app: App,
        tls: ServerTls,
    ) -> Result<Self::Server, ServerError>;

    /// Like [`Runtime::connect`], with `Client::connect_tls(config, tls)`.
    fn connect_tls(config: ClientConfig, tls: ClientTls) -> Result<Self::Client, ClientError>;
}

/// Adapter `R` over mutual TLS 1.3: servers require a client certificate from the suite's
/// CA, clients and raw peers present one. Its servers and clients are `R`'s.
#[derive(Debug)]
pub struct Tls<R>(PhantomData<R>);

impl<R: TlsRuntime> Runtime for Tls<R> {
    type Server = R::Server;
    type Client = R::Client;

    fn name() -> &'static str {
        R::TLS_NAME
    }

    fn tls() -> Option<&'static SuiteTls> {
        Some(SuiteTls::get())
    }

    fn start_server(config: ServerConfig, app: App) -> Result<R::Server, ServerError> {
        R::start_tls_server(config, app, SuiteTls::get().server.clone())
    }

    fn connect(config: ClientConfig) -> Result<R::Client, ClientError> {
        R::connect_tls(config, SuiteTls::get().client.clone())
    }
}

/// The TLS every [`Tls`] runtime uses: one test CA for the process, a server certificate
/// for `127.0.0.1`, and a client certificate the servers require (mutual TLS).
#[derive(Debug)]
pub struct SuiteTls {
    pki: Pki,
    server: ServerTls,
    client: ClientTls,
}

impl SuiteTls {
    /// The process's suite TLS, made on first use.
    pub fn get() -> &'static SuiteTls {
        static TLS: OnceLock<SuiteTls> = OnceLock::new();
        TLS.get_or_init(|| {
            let pki = Pki::new();
            let server = ServerTls::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
                .and_then(|tls| tls.client_ca_pem(pki.ca.as_bytes()))
                .expect("the suite's server TLS");
            let client = ClientTls::from_ca_pem(pki.ca.as_bytes())
                .and_then(|tls| {
                    tls.client_cert_pem(pki.client.cert.as_bytes(), pki.client.key.as_bytes())
                })
                .expect("the suite's client TLS");
            SuiteTls {
                pki,
                server,
                client,
            }
        })
    }

    /// The certificates.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// What servers serve with: the server certificate, client certificates required.
    pub fn server(&self) -> &ServerTls {
        &self.server
    }

    /// What clients connect with: the CA, and the client certificate.
    pub fn client(&self) -> &ClientTls {
        &self.client
    }
}
