//! The public API shared by the three adapters: `try_send`, client metrics, `tcp_addr`,
//! `unix:` addresses, the state-before-routes rule, event streams replacing fallbacks.

mod common;

use common::*;
use lynn_blocking::{Client, ClientConfig, Context, Server, ServerError, ServerEvent};

fn echo(ctx: Context) -> lynn_blocking::Reply {
    ctx.reply(ctx.body().clone())
}

#[test]
fn try_send_and_client_metrics() {
    let server = Server::builder(build(config()))
        .route(1, echo)
        .bind()
        .unwrap();
    assert!(server.tcp_addr().is_some());
    let server = Running::start(server);
    let client = Client::connect(server.addr.clone()).unwrap();
    client.try_send(2, "one").unwrap();
    client.send(2, "two").unwrap();
    assert_eq!(client.request(1, "x").unwrap(), "x");
    let text = client.metrics().render();
    assert!(text.contains("lynn_messages_sent_total 3"), "{text}");
    assert_eq!(client.metrics().active_connections(), 1);
    client.close();
    assert!(client.try_send(2, "late").is_err());
    server.stop();
}

#[test]
fn state_after_routes_fails_bind() {
    let err = Server::builder(build(config()))
        .route(1, echo)
        .state(5u32)
        .bind()
        .unwrap_err();
    assert!(matches!(err, ServerError::Config(e) if e.field == "state"));
}

#[test]
fn event_stream_replaces_a_later_fallback() {
    let (builder, events) = Server::builder(build(config())).event_stream(8);
    let server = builder
        .fallback(|ctx: Context| ctx.reply("fallback"))
        .bind()
        .unwrap();
    let server = Running::start(server);
    let answer = std::thread::spawn(move || {
        loop {
            match events.recv_timeout(DEADLINE) {
                Ok(ServerEvent::Message { ctx, responder }) => {
                    responder.reply(ctx.reply("stream"));
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("no message event: {e}"),
            }
        }
    });
    let client = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(client.request(7, "?").unwrap(), "stream");
    answer.join().unwrap();
    server.stop();
}

#[cfg(unix)]
#[test]
fn unix_address_in_config_binds_a_unix_listener() {
    let path = std::env::temp_dir().join(format!("lynn-blocking-api-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let addr = format!("unix:{}", path.display());
    let server = Server::builder(build(config().addr(addr.clone())))
        .route(1, echo)
        .bind()
        .unwrap();
    assert_eq!(server.tcp_addr(), None);
    let server = Running::start(server);
    let client = Client::connect_with(ClientConfig::builder().addr(addr).build().unwrap()).unwrap();
    assert_eq!(client.request(1, "u").unwrap(), "u");
    client.close();
    server.stop();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn send_waits_for_room_and_try_send_fails_at_once() {
    use std::io::Read;
    // A peer that accepts and reads nothing until told to.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut connection = lynn_proto::ConnectionConfig::client();
    connection.send_queue_limit = 64 * 1024;
    let config = ClientConfig::builder()
        .addr(addr.to_string())
        .connection(connection)
        .build()
        .unwrap();
    let client = Client::connect_with(config).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let body = bytes::Bytes::from(vec![7u8; 32 * 1024]);
    let mut refused = false;
    for _ in 0..20_000 {
        match client.try_send(1, body.clone()) {
            Ok(()) => {}
            Err(lynn_blocking::ClientError::QueueFull) => {
                refused = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused, "the send queue never filled");
    // The peer reads now: room comes back and the waiting send goes out.
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        while peer.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    client.send(1, body).unwrap();
    client.close();
    reader.join().unwrap();
}
