//! The public API shared by the three adapters: `try_send`, client metrics, `tcp_addr`,
//! `unix:` addresses, the state-before-routes rule, event streams replacing fallbacks.

mod common;

use common::*;
use lynn_smol::{Client, ClientConfig, Context, Reply, Server, ServerError, ServerEvent};

async fn echo(ctx: Context) -> Reply {
    ctx.reply(ctx.body().clone())
}

#[test]
fn try_send_and_client_metrics() {
    let server = run(Server::builder(config().build().unwrap())
        .route(1, echo)
        .bind())
    .unwrap();
    assert!(server.tcp_addr().is_some());
    let server = spawn(server);
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        client.try_send(2, "one").await.unwrap();
        client.send(2, "two").await.unwrap();
        assert_eq!(client.request(1, "x").await.unwrap(), "x");
        let text = client.metrics().render();
        assert!(text.contains("lynn_messages_sent_total 3"), "{text}");
        assert_eq!(client.metrics().active_connections(), 1);
        client.close().await;
        assert!(client.try_send(2, "late").await.is_err());
    });
    server.stop();
}

#[test]
fn state_after_routes_fails_bind() {
    let err = run(Server::builder(config().build().unwrap())
        .route(1, echo)
        .state(5u32)
        .bind())
    .unwrap_err();
    assert!(matches!(err, ServerError::Config(e) if e.field == "state"));
}

#[test]
fn event_stream_replaces_a_later_fallback() {
    let (builder, events) = Server::builder(config().build().unwrap()).event_stream(8);
    let builder = builder.fallback(|ctx: Context| async move { ctx.reply("fallback") });
    let server = spawn(run(builder.bind()).unwrap());
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        let answer = async {
            loop {
                match events.recv().await {
                    Some(ServerEvent::Message { ctx, responder }) => {
                        responder.reply(ctx.reply("stream"));
                        break;
                    }
                    Some(_) => {}
                    None => panic!("event stream ended"),
                }
            }
        };
        let (reply, ()) = futures_lite::future::zip(client.request(7, "?"), answer).await;
        assert_eq!(reply.unwrap(), "stream");
    });
    server.stop();
}

#[cfg(unix)]
#[test]
fn unix_address_in_config_binds_a_unix_listener() {
    let path = std::env::temp_dir().join(format!("lynn-smol-api-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let addr = format!("unix:{}", path.display());
    let server = run(
        Server::builder(config().addr(addr.clone()).build().unwrap())
            .route(1, echo)
            .bind(),
    )
    .unwrap();
    assert_eq!(server.tcp_addr(), None);
    let handle = server.handle();
    let thread = std::thread::spawn(move || async_io::block_on(server.serve()));
    run(async {
        let config = ClientConfig::builder().addr(addr).build().unwrap();
        let client = Client::connect_with(config).await.unwrap();
        assert_eq!(client.request(1, "u").await.unwrap(), "u");
        client.close().await;
    });
    handle.shutdown();
    thread.join().unwrap().unwrap();
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
    run(async {
        let client = Client::connect_with(config).await.unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let body = bytes::Bytes::from(vec![7u8; 32 * 1024]);
        let mut refused = false;
        for _ in 0..20_000 {
            match client.try_send(1, body.clone()).await {
                Ok(()) => {}
                Err(lynn_smol::ClientError::QueueFull) => {
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
        client.send(1, body).await.unwrap();
        client.close().await;
        reader.join().unwrap();
    });
}
