//! Certificates made at test time with rcgen, so no key is ever committed: a CA, a server
//! certificate it signed for `127.0.0.1` and `lynn.test`, and a client certificate it
//! signed; as PEM text, or written to files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The DNS name the server certificate carries besides `127.0.0.1`.
pub const SERVER_NAME: &str = "lynn.test";

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// A CA and what it signed.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca: String,
    /// The server's certificate, for `127.0.0.1` and [`SERVER_NAME`].
    pub server: Identity,
    /// A client's certificate (common name `lynn client`).
    pub client: Identity,
}

impl Pki {
    /// A new CA, server and client certificate, with fresh keys.
    pub fn new() -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "lynn test CA");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let sign = |names: Vec<String>, common_name: &str| {
            let mut params = CertificateParams::new(names).expect("params");
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &issuer).expect("certificate");
            Identity {
                cert: cert.pem(),
                key: key.serialize_pem(),
                der: cert.der().to_vec(),
            }
        };
        let server = sign(
            vec!["127.0.0.1".to_string(), SERVER_NAME.to_string()],
            SERVER_NAME,
        );
        let client = sign(Vec::new(), "lynn client");
        Pki {
            ca: ca_cert.pem(),
            server,
            client,
        }
    }

    /// Writes every PEM into a new directory under the system's temporary one (removed
    /// when the returned [`PemFiles`] is dropped).
    pub fn write(&self) -> PemFiles {
        let dir =
            std::env::temp_dir().join(format!("lynn-pki-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let put = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        PemFiles {
            ca: put("ca.pem", &self.ca),
            server_cert: put("server.pem", &self.server.cert),
            server_key: put("server.key", &self.server.key),
            client_cert: put("client.pem", &self.client.cert),
            client_key: put("client.key", &self.client.key),
            dir,
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// A number no other call in this process returns.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A [`Pki`] written to files; the directory is removed on drop.
#[derive(Debug)]
pub struct PemFiles {
    dir: PathBuf,
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// The client's certificate.
    pub client_cert: PathBuf,
    /// The client's key.
    pub client_key: PathBuf,
}

impl PemFiles {
    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PemFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
