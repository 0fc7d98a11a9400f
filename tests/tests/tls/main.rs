//! TLS on every adapter: echo across every client × server pair, PEM files, mutual TLS
//! refusals and the client's identity in handlers, the handshake deadline, a bad peer
//! closed alone, 1 MiB bodies both ways, and a shutdown that does not wait for a stalled
//! handshake; the client's side in `client.rs`. Certificates are made at test time
//! (`lynn_tests::pki`).

mod client;
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lynn_proto::ClientError;
use lynn_service::tls::{ClientTls, ServerTls};
use lynn_tests::pki::{Pki, SERVER_NAME};
use lynn_tests::support::wait_until;
use support::{
    TokioServer, client_config, client_tls, read_to_close, server_config, server_tls, tls_client,
    tokio_rt,
};

/// An echo of method 1 over TLS on each adapter's server, each adapter's client to each.
#[test]
fn echo_across_every_client_and_server() {
    let pki = Pki::new();
    let rt = tokio_rt();
    let tokio_server = TokioServer::start(&rt, server_config(), server_tls(&pki));
    let smol_server = async_io::block_on(
        lynn_smol::Server::builder(server_config())
            .route(1, |ctx: lynn_smol::Context| async move {
                ctx.reply(ctx.body().clone())
            })
            .tls(server_tls(&pki))
            .bind(),
    )
    .expect("smol bind");
    let smol_addr = smol_server.tcp_addr().expect("TCP");
    let smol_handle = smol_server.handle();
    let smol_serving = std::thread::spawn(move || async_io::block_on(smol_server.serve()));
    let blocking_server = lynn_blocking::Server::builder(server_config())
        .route(1, |ctx: lynn_blocking::Context| {
            ctx.reply(ctx.body().clone())
        })
        .tls(server_tls(&pki))
        .bind()
        .expect("blocking bind");
    let blocking_addr = blocking_server.tcp_addr().expect("TCP");
    let blocking_handle = blocking_server.handle();
    let blocking_serving = std::thread::spawn(move || blocking_server.serve());

    for addr in [tokio_server.addr, smol_addr, blocking_addr] {
        let body = format!("to {addr}");
        let tokio_client = tls_client(&rt, addr, &pki);
        let reply = rt.block_on(tokio_client.request(1, body.clone()));
        assert_eq!(&reply.expect("tokio reply")[..], body.as_bytes());
        rt.block_on(tokio_client.close());
        let smol_client = async_io::block_on(lynn_smol::Client::connect_tls(
            client_config(addr),
            client_tls(&pki),
        ))
        .expect("smol client");
        let reply = async_io::block_on(smol_client.request(1, body.clone()));
        assert_eq!(&reply.expect("smol reply")[..], body.as_bytes());
        async_io::block_on(smol_client.close());
        let blocking_client =
            lynn_blocking::Client::connect_tls(client_config(addr), client_tls(&pki))
                .expect("blocking client");
        let reply = blocking_client.request(1, body.clone());
        assert_eq!(&reply.expect("blocking reply")[..], body.as_bytes());
        blocking_client.close();
    }
    assert_eq!(tokio_server.metrics().tls_handshake_failures("protocol"), 0);
    tokio_server.stop(&rt);
    smol_handle.shutdown();
    smol_serving
        .join()
        .expect("smol thread")
        .expect("smol serve");
    blocking_handle.shutdown();
    let served = blocking_serving.join().expect("blocking thread");
    served.expect("blocking serve");
}

/// Certificates and keys read from PEM files; the server verified by its DNS name.
#[test]
fn pem_files_and_a_server_name() {
    let pki = Pki::new();
    let files = pki.write();
    let rt = tokio_rt();
    let tls = ServerTls::from_pem_files(&files.server_cert, &files.server_key).expect("PEM");
    let server = TokioServer::start(&rt, server_config(), tls);
    let tls = ClientTls::from_ca_file(&files.ca)
        .and_then(|t| t.server_name(SERVER_NAME))
        .expect("client PEM");
    let client = rt.block_on(lynn_tokio::Client::connect_tls(
        client_config(server.addr),
        tls,
    ));
    let client = client.expect("connects by name");
    assert_eq!(
        &rt.block_on(client.request(2, "in place")).unwrap()[..],
        b"in place"
    );
    // A name the certificate does not carry is refused.
    let tls = ClientTls::from_ca_file(&files.ca).and_then(|t| t.server_name("other.test"));
    let refused = rt.block_on(lynn_tokio::Client::connect_tls(
        client_config(server.addr),
        tls.expect("client PEM"),
    ));
    assert!(
        matches!(refused, Err(ClientError::Connect(_))),
        "{refused:?}"
    );
    // A file that holds no certificate is an error, not a panic.
    assert!(ServerTls::from_pem_files(&files.server_key, &files.server_key).is_err());
    assert!(ClientTls::from_ca_file(files.dir().join("missing.pem")).is_err());
    server.stop(&rt);
}

/// Under mutual TLS a client without a certificate, or with one from another CA, is
/// refused in the handshake (no handler runs, counted as `certificate`); one with a
/// certificate from the configured CA is served, and handlers see that certificate.
#[test]
fn mutual_tls_refuses_unknown_clients_and_shows_the_known_one() {
    let (pki, other) = (Pki::new(), Pki::new());
    let rt = tokio_rt();
    let tls = server_tls(&pki)
        .client_ca_pem(pki.ca.as_bytes())
        .expect("CA");
    let server = TokioServer::start(&rt, server_config(), tls);
    let anonymous = client_tls(&pki);
    let foreign = anonymous
        .clone()
        .client_cert_pem(other.client.cert.as_bytes(), other.client.key.as_bytes())
        .expect("foreign identity");
    for (n, tls) in [anonymous.clone(), foreign].into_iter().enumerate() {
        let refused = rt.block_on(async {
            match lynn_tokio::Client::connect_tls(client_config(server.addr), tls).await {
                // TLS 1.3: the client's side completes before the server verifies it.
                Ok(client) => client.request(1, "let me in").await.is_err(),
                Err(_) => true,
            }
        });
        assert!(refused);
        wait_until("the refusal to be counted", || {
            server.metrics().tls_handshake_failures("certificate") == n as u64 + 1
        });
    }
    assert_eq!(server.served.load(Ordering::SeqCst), 0);
    let known = anonymous
        .client_cert_pem(pki.client.cert.as_bytes(), pki.client.key.as_bytes())
        .expect("identity");
    let client = rt.block_on(lynn_tokio::Client::connect_tls(
        client_config(server.addr),
        known,
    ));
    let client = client.expect("a known client connects");
    assert_eq!(&rt.block_on(client.request(1, "in")).unwrap()[..], b"in");
    let der = rt.block_on(client.request(3, "")).unwrap();
    assert_eq!(
        &der[..],
        &pki.client.der[..],
        "the handler sees the client's certificate"
    );
    server.stop(&rt);
}

/// A peer that connects and says nothing is closed at the handshake deadline, its seat
/// released, and counted as `timeout`.
#[test]
fn a_stalled_handshake_is_closed_at_its_deadline() {
    let pki = Pki::new();
    let rt = tokio_rt();
    let timeout = Duration::from_millis(300);
    let server = TokioServer::start(
        &rt,
        server_config(),
        server_tls(&pki).handshake_timeout(timeout),
    );
    let started = Instant::now();
    let mut sock = TcpStream::connect(server.addr).expect("connect");
    read_to_close(&mut sock);
    assert!(started.elapsed() >= timeout, "closed before its deadline");
    // Counted and released before the socket closed.
    assert_eq!(server.metrics().tls_handshake_failures("timeout"), 1);
    assert_eq!(server.handle.connection_count(), 0);
    server.stop(&rt);
}

/// Garbage instead of a ClientHello closes that connection (counted as `protocol`) while
/// a TLS connection opened before carries on.
#[test]
fn garbage_instead_of_a_client_hello_closes_only_that_connection() {
    let pki = Pki::new();
    let rt = tokio_rt();
    let server = TokioServer::start(&rt, server_config(), server_tls(&pki));
    let client = tls_client(&rt, server.addr, &pki);
    assert_eq!(
        &rt.block_on(client.request(1, "before")).unwrap()[..],
        b"before"
    );
    let mut sock = TcpStream::connect(server.addr).expect("connect");
    sock.write_all(b"GET / HTTP/1.1\r\nHost: lynn\r\n\r\n")
        .expect("write");
    let alert = read_to_close(&mut sock);
    assert_eq!(
        alert.first(),
        Some(&21),
        "a TLS alert record before the close"
    );
    assert_eq!(server.metrics().tls_handshake_failures("protocol"), 1);
    assert_eq!(
        &rt.block_on(client.request(1, "after")).unwrap()[..],
        b"after"
    );
    assert!(client.is_connected());
    server.stop(&rt);
}

/// A 1 MiB body crosses TLS intact in both directions.
#[test]
fn a_mebibyte_crosses_both_ways() {
    let pki = Pki::new();
    let rt = tokio_rt();
    let server = TokioServer::start(&rt, server_config(), server_tls(&pki));
    let client = tls_client(&rt, server.addr, &pki);
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    for method in [1, 2] {
        let reply = rt
            .block_on(client.request(method, body.clone()))
            .expect("reply");
        assert!(
            reply[..] == body[..],
            "method {method}: the body came back intact"
        );
    }
    server.stop(&rt);
}

/// A shutdown ends a connection still in its handshake at once, not at its deadline.
#[test]
fn shutdown_does_not_wait_for_a_stalled_handshake() {
    let pki = Pki::new();
    let rt = tokio_rt();
    let tls = server_tls(&pki).handshake_timeout(Duration::from_secs(3600));
    let server = TokioServer::start(&rt, server_config(), tls);
    let mut sock = TcpStream::connect(server.addr).expect("connect");
    wait_until("the connection to be admitted", || {
        server.handle.connection_count() == 1
    });
    let started = Instant::now();
    server.stop(&rt);
    // Well before the shutdown timeout (5 s), when what is left would be aborted.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited for the handshake"
    );
    read_to_close(&mut sock);
}
