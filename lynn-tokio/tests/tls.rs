//! TLS over tokio: echo on async and in-place routes, on worker threads, over a Unix
//! socket (with a server name), the client's certificate in handlers under mutual TLS, and
//! a plain client refused by a TLS server. Certificates are made at test time.

mod common;

use common::*;
use lynn_tokio::{
    Client, ClientConfig, ClientError, ClientTls, Context, Server, ServerTls, TokioRuntime,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA's PEM, and a certificate and key it signed for `127.0.0.1` and `lynn.test`.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let names = vec!["127.0.0.1".to_string(), "lynn.test".to_string()];
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer);
    Pki {
        ca: ca_pem,
        cert: cert.unwrap().pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    fn server(&self) -> ServerTls {
        ServerTls::from_pem(self.cert.as_bytes(), self.key.as_bytes()).unwrap()
    }

    fn client(&self) -> ClientTls {
        ClientTls::from_ca_pem(self.ca.as_bytes()).unwrap()
    }
}

fn client_config(addr: impl Into<String>) -> ClientConfig {
    ClientConfig::builder().addr(addr).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_on_async_and_in_place_routes_and_on_workers() {
    bounded(async {
        let pki = pki();
        for workers in [false, true] {
            let builder = Server::builder(config().build().unwrap());
            let builder = if workers {
                builder.runtime(TokioRuntime::with_workers(2).unwrap())
            } else {
                builder
            };
            let server = builder
                .route(1, echo)
                .route_sync(2, |ctx| ctx.reply(ctx.body()))
                .tls(pki.server())
                .bind()
                .await
                .unwrap();
            let srv = spawn(server);
            let config = client_config(srv.addr.to_string());
            let client = Client::connect_tls(config, pki.client()).await.unwrap();
            for method in [1, 2, 1] {
                let reply = client.request(method, "secret").await.unwrap();
                assert_eq!(&reply[..], b"secret");
            }
            assert_eq!(srv.handle.metrics().messages_received(), 3);
            client.close().await;
            srv.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_unix_socket_needs_a_server_name() {
    bounded(async {
        let pki = pki();
        let path = std::env::temp_dir().join(format!("lynn-tls-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .tls(pki.server())
            .bind_unix(&path)
            .await
            .unwrap();
        let handle = server.handle();
        let serving = tokio::spawn(server.serve());
        let addr = format!("unix:{}", path.display());
        let nameless = Client::connect_tls(client_config(addr.clone()), pki.client()).await;
        assert!(
            matches!(nameless, Err(ClientError::Config(_))),
            "{nameless:?}"
        );
        let tls = pki.client().server_name("lynn.test").unwrap();
        let client = Client::connect_tls(client_config(addr), tls).await.unwrap();
        assert_eq!(&client.request(1, "local").await.unwrap()[..], b"local");
        handle.shutdown();
        serving.await.unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
    })
    .await;
}

#[tokio::test]
async fn handlers_see_the_client_certificate_under_mutual_tls() {
    bounded(async {
        let (pki, client_pki) = (pki(), pki());
        let tls = pki
            .server()
            .client_ca_pem(client_pki.ca.as_bytes())
            .unwrap();
        let server = Server::builder(config().build().unwrap())
            .route(1, |ctx: Context| async move {
                let certs = ctx.peer_certificates().unwrap_or_default();
                ctx.reply(certs.first().map(|c| c.to_vec()).unwrap_or_default())
            })
            .tls(tls)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let tls = pki.client();
        let tls = tls.client_cert_pem(client_pki.cert.as_bytes(), client_pki.key.as_bytes());
        let config = client_config(srv.addr.to_string());
        let client = Client::connect_tls(config, tls.unwrap()).await.unwrap();
        let der = client.request(1, "who am I").await.unwrap();
        let expected = rustls_pem_der(&client_pki.cert);
        assert_eq!(&der[..], &expected[..]);
        srv.stop().await;
    })
    .await;
}

/// The DER of the first certificate in `pem`.
fn rustls_pem_der(pem: &str) -> Vec<u8> {
    use lynn_tokio::tls::CertificateDer;
    use lynn_tokio::tls::rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_plain_client_is_refused_by_a_tls_server() {
    bounded(async {
        let pki = pki();
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .tls(pki.server())
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        assert!(client.request(1, "in the clear").await.is_err());
        let metrics = srv.handle.metrics().clone();
        wait_until("the refusal to be counted", || {
            metrics.tls_handshake_failures("protocol") == 1
        })
        .await;
        let text = metrics.render();
        let line = "lynn_tls_handshake_failures_total{reason=\"protocol\"} 1";
        assert!(text.contains(line), "{text}");
        assert_eq!(metrics.messages_received(), 0);
        srv.stop().await;
    })
    .await;
}
