//! Broadcast to all and to groups, event-stream mode, Unix sockets, metrics endpoint.

mod common;

use common::*;
use lynn_proto::{CloseReason, Message};
use lynn_tokio::{Client, Context, Server, ServerEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn next(client: &Client) -> (u16, Vec<u8>) {
    let Message { method, body } = client.recv().await.expect("a push");
    (method, body.to_vec())
}

#[tokio::test]
async fn broadcast_reaches_every_recipient_exactly_once() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route(1, |ctx: Context| async move {
                let group = String::from_utf8_lossy(ctx.body()).into_owned();
                ctx.server().join(&group, ctx.id()).unwrap();
                ctx.reply("joined")
            })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(Client::connect(srv.addr.to_string()).await.unwrap());
        }
        for c in &clients[..2] {
            assert_eq!(&c.request(1, "room").await.unwrap()[..], b"joined");
        }
        assert_eq!(srv.handle.broadcast_group("room", 7, "g"), 2);
        assert_eq!(srv.handle.broadcast(8, "all"), 3);
        assert_eq!(srv.handle.broadcast(9, "end"), 3);
        for c in &clients[..2] {
            assert_eq!(next(c).await, (7, b"g".to_vec()));
        }
        for c in &clients {
            assert_eq!(next(c).await, (8, b"all".to_vec()));
            // A duplicate would arrive before the end marker.
            assert_eq!(next(c).await, (9, b"end".to_vec()));
        }
        // Direct send to one connection; groups forget who left.
        let ids: Vec<_> = srv
            .handle
            .connections()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        for id in &ids {
            srv.handle.send(*id, 5, "direct").unwrap();
        }
        for c in &clients {
            assert_eq!(next(c).await, (5, b"direct".to_vec()));
        }
        let left = ids
            .iter()
            .filter(|id| srv.handle.leave("room", **id))
            .count();
        assert_eq!(left, 2);
        assert_eq!(srv.handle.broadcast_group("room", 7, "nobody"), 0);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn event_stream_mode() {
    bounded(async {
        let (builder, events) = Server::builder(config().build().unwrap()).event_stream(16);
        let srv = spawn(builder.bind().await.unwrap());
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        let Some(ServerEvent::Connected { id, .. }) = events.recv().await else {
            panic!("expected Connected");
        };
        let asking = tokio::spawn({
            let client = client.clone();
            async move { client.request(5, "question").await }
        });
        let Some(ServerEvent::Message { ctx, responder }) = events.recv().await else {
            panic!("expected Message");
        };
        assert_eq!(
            (ctx.id(), ctx.method(), &ctx.body()[..]),
            (id, 5, &b"question"[..])
        );
        responder.reply(ctx.reply("answer"));
        assert_eq!(&asking.await.unwrap().unwrap()[..], b"answer");
        client.close().await;
        match events.recv().await {
            Some(ServerEvent::Closed { id: closed, reason }) => {
                assert_eq!(closed, id);
                assert_eq!(reason, CloseReason::PeerClosed);
            }
            other => panic!("expected Closed, got {other:?}"),
        }
        srv.stop().await;
    })
    .await;
}

/// A `Closed` event that finds the event stream full is not lost: it arrives once the
/// application takes the events before it, and the server's shutdown waits for it.
#[tokio::test]
async fn closed_event_waits_for_a_full_event_stream() {
    bounded(async {
        let (builder, events) = Server::builder(config().build().unwrap()).event_stream(1);
        let srv = spawn(builder.bind().await.unwrap());
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        // `Connected` fills the stream (capacity 1) and stays there while the connection
        // closes: its table entry is gone before its `Closed` is sent.
        client.close().await;
        while !srv.handle.connections().is_empty() {
            tokio::task::yield_now().await;
        }
        let Some(ServerEvent::Connected { id, .. }) = events.recv().await else {
            panic!("expected Connected");
        };
        match events.recv().await {
            Some(ServerEvent::Closed { id: closed, reason }) => {
                assert_eq!((closed, reason), (id, CloseReason::PeerClosed));
            }
            other => panic!("expected Closed, got {other:?}"),
        }
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unix_socket_server_and_client() {
    bounded(async {
        let path = std::env::temp_dir().join(format!("lynn-tokio-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind_unix(&path)
            .await
            .unwrap();
        let handle = server.handle();
        let task = tokio::spawn(server.serve());
        let client = Client::connect(format!("unix:{}", path.display()))
            .await
            .unwrap();
        assert_eq!(&client.request(1, "local").await.unwrap()[..], b"local");
        assert!(matches!(
            handle.connections()[0].1,
            lynn_proto::PeerAddr::Unix(_)
        ));
        handle.shutdown();
        task.await.unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
    })
    .await;
}

#[tokio::test]
async fn metrics_endpoint_serves_prometheus_text() {
    bounded(async {
        let config = config().metrics_addr("127.0.0.1:0").build().unwrap();
        let server = Server::builder(config).route(1, echo).bind().await.unwrap();
        let metrics_addr = server.metrics_addr().unwrap();
        let srv = spawn(server);
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        assert_eq!(&client.request(1, "x").await.unwrap()[..], b"x");
        let mut sock = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
        sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        sock.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("\nlynn_connections_active 1\n"), "{text}");
        assert!(
            text.contains("\nlynn_messages_received_total 1\n"),
            "{text}"
        );
        srv.stop().await;
    })
    .await;
}
