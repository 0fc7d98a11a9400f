//! Echo over TCP and Unix sockets, exact wire bytes, and the metrics endpoint.

mod common;

use std::io::{Read, Write};

use common::{Raw, Running, build, config};
use lynn_blocking::{Client, Context, PeerAddr, Server};

fn echo_server() -> Running {
    Running::start(
        Server::builder(build(config()))
            .fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
            .bind()
            .unwrap(),
    )
}

#[test]
fn client_request_echoes() -> Result<(), lynn_blocking::ClientError> {
    let server = echo_server();
    let reply = Client::connect(server.addr.clone())?.request(1, "hi")?;
    assert_eq!(&reply[..], b"hi");
    server.stop();
    Ok(())
}

#[test]
fn raw_peer_gets_exact_bytes_back() {
    let server = echo_server();
    let sample: [u8; 20] = [
        0xd9, 0x23, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
        0x27, 0x1e,
    ];
    let mut raw = Raw::connect(&server.addr);
    raw.write(&sample);
    let mut back = [0u8; 20];
    raw.stream.read_exact(&mut back).unwrap();
    assert_eq!(back, sample);
    // A heartbeat gets no answer; the next message still does.
    raw.write(&[
        0xd9, 0x23, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0x27, 0x1e,
    ]);
    raw.write(&common::frame(7, b"x"));
    let f = raw.read_frame().unwrap();
    assert_eq!((f.method, &f.body[..]), (7, &b"x"[..]));
    server.stop();
}

#[test]
fn unix_socket_echo() {
    let path = std::env::temp_dir().join(format!("lynn-blocking-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = Server::builder(build(config()))
        .route(1, |ctx: Context| ctx.reply(ctx.body().clone()))
        .bind_unix(&path)
        .unwrap();
    assert!(matches!(server.local_addr(), PeerAddr::Unix(Some(_))));
    let server = Running::start(server);
    assert!(server.addr.starts_with("unix:"));
    let client = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&client.request(1, "over unix").unwrap()[..], b"over unix");
    drop(client);
    server.stop();
    assert!(!path.exists(), "socket file removed when serve returns");
}

#[test]
fn metrics_endpoint_serves_counters() {
    let server = Server::builder(build(config().metrics_addr("127.0.0.1:0")))
        .route(1, |ctx: Context| ctx.reply("ok"))
        .bind()
        .unwrap();
    let metrics_addr = server.metrics_addr().unwrap();
    let server = Running::start(server);
    let client = Client::connect(server.addr.clone()).unwrap();
    client.request(1, "x").unwrap();
    let mut http = std::net::TcpStream::connect(metrics_addr).unwrap();
    http.set_read_timeout(Some(common::DEADLINE)).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    http.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("lynn_connections_active 1\n"), "{text}");
    assert!(text.contains("lynn_messages_received_total 1\n"), "{text}");
    server.stop();
}

#[test]
fn duplicate_route_fails_bind() {
    let err = Server::builder(build(config()))
        .route(1, |_: Context| ())
        .route(1, |_: Context| ())
        .bind()
        .unwrap_err();
    assert!(matches!(err, lynn_blocking::ServerError::Route(_)), "{err}");
}
