//! TLS as lynn_service::tls makes it (rustls, ring provider, TLS 1.3 only, rustls's
//! defaults otherwise: the same cipher suite, key exchange and session tickets), for the
//! TLS baseline and the loadgen; and the benchmark's certificates.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig, version};

/// Any error of these helpers.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// ring's default provider, as lynn's: rustls 0.23.48 deprecates it for lacking
/// post-quantum key exchange, which only aws-lc-rs (cmake to build) offers.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A server's configuration from its certificate chain and key (PEM files).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, BoxError> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// A client's configuration trusting the CA certificates in the PEM file `ca`. Without
/// `resume`, every connection makes a full handshake (no session resumption).
pub fn client_config(ca: &Path, resume: bool) -> Result<Arc<ClientConfig>, BoxError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// The files [`write_certs`] writes.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA certificate, for the loadgen's `--tls-ca`.
    pub ca: PathBuf,
    /// The server's certificate, for `--tls-cert`.
    pub cert: PathBuf,
    /// The server's key, for `--tls-key`.
    pub key: PathBuf,
}

impl CertFiles {
    /// The files' paths in `dir`.
    pub fn in_dir(dir: &Path) -> CertFiles {
        CertFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

/// Writes a new CA and a server certificate it signed, for `127.0.0.1` and `localhost`
/// (ECDSA P-256 keys, rcgen's default, as the tests'), into `dir`.
pub fn write_certs(dir: &Path) -> Result<CertFiles, BoxError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "lynn bench CA");
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "lynn bench server");
    let key = KeyPair::generate()?;
    let cert = server.signed_by(&key, &issuer)?;
    std::fs::create_dir_all(dir)?;
    let files = CertFiles::in_dir(dir);
    std::fs::write(&files.ca, ca_cert.pem())?;
    std::fs::write(&files.cert, cert.pem())?;
    std::fs::write(&files.key, key.serialize_pem())?;
    Ok(files)
}
