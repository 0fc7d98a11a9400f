//! lynn's TLS against lynn_tcp 2.2's: a lynn_tcp TLS client (with and without a client
//! certificate) gets replies from a lynn TLS server, and a lynn TLS client from a lynn_tcp
//! TLS server. lynn_tcp's client verifies the server as its IP address unless given a
//! server name: the certificate carries `127.0.0.1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lynn_tcp::lynn_client::{LynnClient, LynnClientConfigBuilder};
use lynn_tcp::lynn_server::{LynnServer, LynnServerConfigBuilder};
use lynn_tcp::lynn_tcp_dependents::*;
use lynn_tcp::lynn_tls::TlsClientConfigBuilder;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const DEADLINE: Duration = Duration::from_secs(10);

/// A CA, a server certificate for `127.0.0.1` and a client certificate it signed, as PEM
/// files in a directory of their own (removed on drop).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("lynn-interop-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        for (name, sans) in [
            ("server", vec!["127.0.0.1".to_string()]),
            ("client", vec![]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &issuer);
            std::fs::write(dir.join(format!("{name}.pem")), cert.unwrap().pem()).unwrap();
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn file(&self, name: &str) -> PathBuf {
        Path::new(&self.dir).join(name)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A lynn TLS server answering method 1 with its body, and method 2 with the number of
/// certificates the client presented.
async fn lynn_server(pki: &Pki, mutual: bool) -> (String, lynn_tokio::ServerHandle) {
    let mut tls =
        lynn_tokio::ServerTls::from_pem_files(pki.file("server.pem"), pki.file("server.key"))
            .unwrap();
    if mutual {
        tls = tls.client_ca_file(pki.file("ca.pem")).unwrap();
    }
    let config = lynn_tokio::ServerConfig::builder()
        .addr("127.0.0.1:0")
        .build()
        .unwrap();
    let server = lynn_tokio::Server::builder(config)
        .route_sync(1, |ctx| ctx.reply(ctx.body()))
        .route_sync(2, |ctx| {
            let n = ctx.peer_certificates().map_or(0, <[_]>::len);
            ctx.reply(n.to_string().as_bytes());
        })
        .tls(tls)
        .bind()
        .await
        .unwrap();
    let addr = server.tcp_addr().unwrap().to_string();
    let handle = server.handle();
    tokio::spawn(server.serve());
    (addr, handle)
}

/// Sends `body` for method `method` from a lynn_tcp client and returns the reply's body.
async fn lynn_tcp_request(client: &mut LynnClient<'_>, method: u16, body: &str) -> String {
    let msg = HandlerResult::new_with_send_to_server(method, body.to_string().into());
    client.send_data(msg).await.unwrap();
    let reply = tokio::time::timeout(DEADLINE, client.get_receive_data()).await;
    let reply = reply.expect("a reply in time").expect("a reply");
    String::from_utf8_lossy(&reply.get_all_bytes()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lynn_tcp_client_gets_replies_from_a_lynn_server() {
    let pki = Pki::new("server");
    let (addr, handle) = lynn_server(&pki, false).await;
    let tls = TlsClientConfigBuilder::new()
        .with_ca_cert_path(pki.path("ca.pem"))
        .build();
    let config = LynnClientConfigBuilder::new()
        .with_server_addr(&addr)
        .unwrap()
        .with_tls(tls)
        .build();
    let mut client = LynnClient::new_with_config(config).await.start().await;
    assert_eq!(
        lynn_tcp_request(&mut client, 1, "from lynn_tcp").await,
        "from lynn_tcp"
    );
    let big = "x".repeat(200_000);
    assert!(lynn_tcp_request(&mut client, 1, &big).await == big);
    let metrics = handle.metrics();
    for reason in ["timeout", "protocol", "certificate", "io"] {
        assert_eq!(metrics.tls_handshake_failures(reason), 0, "{reason}");
    }
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lynn_tcp_client_certificate_is_seen_by_a_lynn_server() {
    let pki = Pki::new("mutual");
    let (addr, _handle) = lynn_server(&pki, true).await;
    let tls = TlsClientConfigBuilder::new()
        .with_ca_cert_path(pki.path("ca.pem"))
        .with_client_auth(pki.path("client.pem"), pki.path("client.key"))
        .build();
    let config = LynnClientConfigBuilder::new()
        .with_server_addr(&addr)
        .unwrap()
        .with_tls(tls)
        .build();
    let mut client = LynnClient::new_with_config(config).await.start().await;
    assert_eq!(lynn_tcp_request(&mut client, 2, "").await, "1");
}

async fn echo(input: InputBufVO) -> HandlerResult {
    let addr = input.get_input_addr().expect("the sender's address");
    HandlerResult::new_with_send(1, input.get_all_bytes().freeze(), vec![addr])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lynn_client_gets_replies_from_a_lynn_tcp_server() {
    let pki = Pki::new("client");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = LynnServerConfigBuilder::new()
        .with_addr(&addr)
        .unwrap()
        .with_tls_cert_paths(pki.path("server.pem"), pki.path("server.key"))
        .build();
    tokio::spawn(async move {
        let _server = LynnServer::new_with_config(config)
            .await
            .add_router(1, echo)
            .start()
            .await;
    });
    // lynn_tcp's server says nowhere that it listens: dial until it does.
    let started = Instant::now();
    let client = loop {
        let config = lynn_tokio::ClientConfig::builder()
            .addr(addr.clone())
            .build()
            .unwrap();
        let tls = lynn_tokio::ClientTls::from_ca_file(pki.file("ca.pem")).unwrap();
        match lynn_tokio::Client::connect_tls(config, tls).await {
            Ok(client) => break client,
            Err(e) => assert!(started.elapsed() < DEADLINE, "never connected: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reply = client.request(1, "from lynn").await.unwrap();
    assert_eq!(&reply[..], b"from lynn");
    let big = vec![b'y'; 200_000];
    assert!(client.request(1, big.clone()).await.unwrap()[..] == big[..]);
    client.close().await;
}
