//! The public API shared by the three adapters: `try_send`, client metrics, `tcp_addr`,
//! `unix:` addresses, the state-before-routes rule, event streams replacing fallbacks.

mod common;

use common::*;
use lynn_proto::{ClientConfig, ServerError};
use lynn_tokio::{Client, Context, Server, ServerEvent};

async fn echo(ctx: Context) -> lynn_tokio::Reply {
    ctx.reply(ctx.body().clone())
}

#[tokio::test]
async fn try_send_and_client_metrics() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        client.try_send(2, "one").await.unwrap();
        client.send(2, "two").await.unwrap();
        assert_eq!(&client.request(1, "x").await.unwrap()[..], b"x");
        let text = client.metrics().render();
        assert!(text.contains("lynn_messages_sent_total 3"), "{text}");
        assert_eq!(client.metrics().active_connections(), 1);
        client.close().await;
        assert!(client.try_send(2, "late").await.is_err());
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn state_after_routes_fails_bind() {
    bounded(async {
        let err = Server::builder(config().build().unwrap())
            .route(1, echo)
            .state(5u32)
            .bind()
            .await
            .unwrap_err();
        assert!(matches!(err, ServerError::Config(e) if e.field == "state"));
    })
    .await;
}

#[tokio::test]
async fn event_stream_replaces_a_later_fallback() {
    bounded(async {
        let (builder, events) = Server::builder(config().build().unwrap()).event_stream(8);
        let server = builder
            .fallback(|ctx: Context| async move { ctx.reply("fallback") })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        let answer = tokio::spawn(async move {
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
        });
        assert_eq!(&client.request(7, "?").await.unwrap()[..], b"stream");
        answer.await.unwrap();
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unix_address_in_config_binds_a_unix_listener() {
    bounded(async {
        let path = std::env::temp_dir().join(format!("lynn-tokio-api-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let addr = format!("unix:{}", path.display());
        let server = Server::builder(config().addr(addr.clone()).build().unwrap())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        assert_eq!(server.tcp_addr(), None);
        let handle = server.handle();
        let task = tokio::spawn(server.serve());
        let client = Client::connect_with(ClientConfig::builder().addr(addr).build().unwrap())
            .await
            .unwrap();
        assert_eq!(&client.request(1, "u").await.unwrap()[..], b"u");
        client.close().await;
        handle.shutdown();
        task.await.unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
    })
    .await;
}

#[tokio::test]
async fn send_waits_for_room_and_try_send_fails_at_once() {
    use tokio::io::AsyncReadExt;
    bounded(async {
        // A peer that accepts and reads nothing until told to.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connection = lynn_proto::ConnectionConfig::client();
        connection.send_queue_limit = 64 * 1024;
        let config = ClientConfig::builder()
            .addr(addr.to_string())
            .connection(connection)
            .build()
            .unwrap();
        let client = Client::connect_with(config).await.unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        let body = bytes::Bytes::from(vec![7u8; 32 * 1024]);
        let mut refused = false;
        for _ in 0..20_000 {
            match client.try_send(1, body.clone()).await {
                Ok(()) => {}
                Err(lynn_proto::ClientError::QueueFull) => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(refused, "the send queue never filled");
        let waiting = tokio::spawn({
            let client = client.clone();
            let body = body.clone();
            async move { client.send(1, body).await }
        });
        // The peer reads now: room comes back and the waiting send goes out.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            while peer.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        waiting.await.unwrap().unwrap();
        client.close().await;
        reader.await.unwrap();
    })
    .await;
}
