//! [`ServerTls`] and [`ClientTls`]: rustls configurations made from PEM files (TLS 1.3
//! only, the ring provider) or given ready, and the errors of making them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file or text could not be read or held nothing usable.
    #[error("{what} from {source_name}: {problem}")]
    Pem {
        /// What was being loaded: `"certificate chain"`, `"private key"`, `"CA
        /// certificates"`.
        what: &'static str,
        /// The file's path, or `"PEM text"`.
        source_name: String,
        /// What went wrong.
        problem: String,
    },
    /// rustls refused the material (a key that does not match its certificate, a CA that
    /// is not one, no usable protocol version).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// A client certificate verifier could not be made from the CA certificates.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    /// Not a DNS name or an IP address to verify the server against.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

/// Where PEM comes from (for error messages).
enum Pem<'a> {
    File(&'a Path),
    Text(&'a [u8]),
}

impl Pem<'_> {
    fn name(&self) -> String {
        match self {
            Pem::File(p) => p.display().to_string(),
            Pem::Text(_) => "PEM text".to_string(),
        }
    }

    fn error(&self, what: &'static str, problem: impl fmt::Display) -> TlsError {
        TlsError::Pem {
            what,
            source_name: self.name(),
            problem: problem.to_string(),
        }
    }

    fn certificates(&self, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certs: Result<Vec<_>, _> = match self {
            Pem::File(path) => match CertificateDer::pem_file_iter(path) {
                Ok(iter) => iter.collect(),
                Err(e) => return Err(self.error(what, e)),
            },
            Pem::Text(text) => CertificateDer::pem_slice_iter(text).collect(),
        };
        let certs = certs.map_err(|e| self.error(what, e))?;
        if certs.is_empty() {
            return Err(self.error(what, "no CERTIFICATE section"));
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let key = match self {
            Pem::File(path) => PrivateKeyDer::from_pem_file(path),
            Pem::Text(text) => PrivateKeyDer::from_pem_slice(text),
        };
        key.map_err(|e| self.error("private key", e))
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in self.certificates("CA certificates")? {
            roots.add(cert)?;
        }
        Ok(roots)
    }
}

/// rustls's *ring* provider (its key exchanges X25519, P-256, P-384, as lynn_tcp 2.2's).
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which only
/// aws-lc-rs offers; aws-lc-rs needs cmake to build, ring a C compiler alone.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How long a server waits for a connection's handshake by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's TLS: its certificate chain and key (and, for mutual TLS, the CA its clients'
/// certificates must chain to), or a ready [`rustls::ServerConfig`]; and how long a
/// handshake may take. Given to `ServerBuilder::tls`. Cheap to clone.
///
/// ```no_run
/// # fn main() -> Result<(), lynn_service::tls::TlsError> {
/// use lynn_service::tls::ServerTls;
///
/// let tls = ServerTls::from_pem_files("server.pem", "server.key")?
///     .client_ca_file("clients-ca.pem")? // mutual TLS
///     .handshake_timeout(std::time::Duration::from_secs(5));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    /// Kept to rebuild the config with a client verifier.
    identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    handshake_timeout: Duration,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The certificate chain (leaf first) and private key in the PEM files at `cert` and
    /// `key`; TLS 1.3, no client authentication.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let chain = Pem::File(cert.as_ref()).certificates("certificate chain")?;
        Self::with_identity(chain, Pem::File(key.as_ref()).private_key()?)
    }

    /// Like [`from_pem_files`](Self::from_pem_files), from PEM text.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain = Pem::Text(cert).certificates("certificate chain")?;
        Self::with_identity(chain, Pem::Text(key).private_key()?)
    }

    /// A ready rustls configuration, used as it is (its versions, verifier, ALPN...).
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        ServerTls {
            config,
            identity: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    fn with_identity(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())?;
        Ok(ServerTls {
            config: Arc::new(config),
            identity: Some((chain, Arc::new(key))),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Mutual TLS: every client must present a certificate that chains to a CA in the PEM
    /// file at `path`; a client without one, or with another, is refused in the handshake.
    /// Only for a `ServerTls` made from PEM (a ready config keeps its own verifier).
    pub fn client_ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let roots = Pem::File(path.as_ref()).roots()?;
        self.with_client_roots(roots)
    }

    /// Like [`client_ca_file`](Self::client_ca_file), from PEM text.
    pub fn client_ca_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        let roots = Pem::Text(pem).roots()?;
        self.with_client_roots(roots)
    }

    fn with_client_roots(mut self, roots: RootCertStore) -> Result<Self, TlsError> {
        let Some((chain, key)) = &self.identity else {
            return Err(TlsError::Verifier(
                "a ready ServerConfig keeps its own client verifier".into(),
            ));
        };
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        self.config = Arc::new(config);
        Ok(self)
    }

    /// How long a connection's handshake may take before it is closed (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake deadline's distance.
    pub fn timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The rustls configuration every connection's session is made from.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// A server session for one connection over `inner`, before its handshake.
    pub fn accept<T: crate::Transport>(
        &self,
        inner: T,
    ) -> Result<super::TlsStream<T, rustls::ServerConnection>, TlsError> {
        let session = rustls::ServerConnection::new(self.config.clone())?;
        Ok(super::TlsStream::new(inner, session))
    }
}

/// A client's TLS: the CA certificates the server's must chain to (or a ready
/// [`rustls::ClientConfig`]), the name to verify the server against, and for mutual TLS
/// the client's own certificate and key. Given to `Client::connect_tls`. Cheap to clone.
///
/// The server name (sent as SNI, and matched against the server's certificate) is by
/// default the host of the address the client connects to: a DNS name, or an IP address
/// (then the certificate needs that IP address among its subject alternative names).
///
/// ```no_run
/// # fn main() -> Result<(), lynn_service::tls::TlsError> {
/// use lynn_service::tls::ClientTls;
///
/// let tls = ClientTls::from_ca_file("ca.pem")?
///     .server_name("lynn.example")?
///     .client_cert_files("client.pem", "client.key")?; // mutual TLS
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    /// Kept to rebuild the config with a client certificate.
    roots: Option<Arc<RootCertStore>>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Verifies servers against the CA certificates in the PEM file at `path`; TLS 1.3.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::with_roots(Pem::File(path.as_ref()).roots()?)
    }

    /// Like [`from_ca_file`](Self::from_ca_file), from PEM text.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, TlsError> {
        Self::with_roots(Pem::Text(pem).roots()?)
    }

    /// A ready rustls configuration, used as it is.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        ClientTls {
            config,
            roots: None,
            server_name: None,
        }
    }

    fn with_roots(roots: RootCertStore) -> Result<Self, TlsError> {
        let roots = Arc::new(roots);
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(ClientTls {
            config: Arc::new(config),
            roots: Some(roots),
            server_name: None,
        })
    }

    /// Verifies the server as `name` (a DNS name or an IP address) instead of the host of
    /// the address; also what is sent as SNI.
    pub fn server_name(mut self, name: impl Into<String>) -> Result<Self, TlsError> {
        let name = name.into();
        let parsed = ServerName::try_from(name.as_str())
            .map_err(|_| TlsError::ServerName(name.clone()))?
            .to_owned();
        self.server_name = Some(parsed);
        Ok(self)
    }

    /// Mutual TLS: presents the certificate chain and key in the PEM files at `cert` and
    /// `key`. Only for a `ClientTls` made from CA certificates.
    pub fn client_cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let chain = Pem::File(cert.as_ref()).certificates("certificate chain")?;
        self.with_identity(chain, Pem::File(key.as_ref()).private_key()?)
    }

    /// Like [`client_cert_files`](Self::client_cert_files), from PEM text.
    pub fn client_cert_pem(self, cert: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain = Pem::Text(cert).certificates("certificate chain")?;
        self.with_identity(chain, Pem::Text(key).private_key()?)
    }

    fn with_identity(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let Some(roots) = &self.roots else {
            return Err(TlsError::Verifier(
                "a ready ClientConfig keeps its own client certificate".into(),
            ));
        };
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain, key)?;
        self.config = Arc::new(config);
        Ok(self)
    }

    /// The rustls configuration every connection's session is made from.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name the server is verified against when connecting to `addr` (`host:port`):
    /// the one set with [`server_name`](Self::server_name), else `addr`'s host.
    pub fn server_name_for(&self, addr: &str) -> Result<ServerName<'static>, TlsError> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        if let Ok(sock) = addr.parse::<SocketAddr>() {
            return Ok(ServerName::IpAddress(sock.ip().into()));
        }
        let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host)
            .map(|n| n.to_owned())
            .map_err(|_| TlsError::ServerName(host.to_string()))
    }

    /// A client session for a connection over `inner` to the server named `name`, before
    /// its handshake.
    pub fn connect<T: crate::Transport>(
        &self,
        inner: T,
        name: ServerName<'static>,
    ) -> Result<super::TlsStream<T, rustls::ClientConnection>, TlsError> {
        let session = rustls::ClientConnection::new(self.config.clone(), name)?;
        Ok(super::TlsStream::new(inner, session))
    }
}
