//! The client's side of TLS: reconnect and the offline queue, the handshake deadline.

use std::net::TcpListener;
use std::time::Duration;

use lynn_proto::reconnect::ReconnectConfig;
use lynn_proto::{ClientConfig, ClientError, ServerConfig};
use lynn_tests::pki::Pki;
use lynn_tests::support::{wait_for, wait_until};

use super::support::{TokioServer, client_tls, server_config, server_tls, tokio_rt};

/// The server restarts on the same port: the client reconnects over TLS (handshaking
/// again) and delivers what it queued while offline.
#[test]
fn reconnect_and_the_offline_queue_over_tls() {
    let pki = Pki::new();
    let rt = tokio_rt();
    let server = TokioServer::start(&rt, server_config(), server_tls(&pki));
    let addr = server.addr;
    let policy = ReconnectConfig {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_attempts: None,
        ..ReconnectConfig::default()
    };
    let config = ClientConfig::builder()
        .addr(addr.to_string())
        .connect_timeout(Duration::from_secs(5))
        .reconnect(Some(policy))
        .offline_queue(8)
        .build()
        .expect("config");
    let client = rt
        .block_on(lynn_tokio::Client::connect_tls(config, client_tls(&pki)))
        .expect("client");
    assert_eq!(&rt.block_on(client.request(1, "one")).unwrap()[..], b"one");
    server.stop(&rt);
    wait_until("the client to notice", || !client.is_connected());
    let queued = rt.spawn({
        let client = client.clone();
        async move { client.request(1, "queued").await }
    });
    let config = ServerConfig::builder()
        .addr(addr.to_string())
        .build()
        .expect("config");
    let restarted = wait_for("the port to be free again", || {
        TokioServer::try_start(&rt, config.clone(), server_tls(&pki)).ok()
    });
    let reply = rt
        .block_on(queued)
        .expect("task")
        .expect("the queued request");
    assert_eq!(&reply[..], b"queued");
    assert!(client.is_connected());
    restarted.stop(&rt);
}

/// A server that accepts and never answers the ClientHello: the client's dial fails at
/// its connect timeout.
#[test]
fn a_client_handshake_is_bounded_by_the_connect_timeout() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = ClientConfig::builder()
        .addr(addr.to_string())
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("config");
    let res = lynn_blocking::Client::connect_tls(config, client_tls(&pki));
    assert!(matches!(res, Err(ClientError::ConnectTimeout)), "{res:?}");
    drop(listener);
}
