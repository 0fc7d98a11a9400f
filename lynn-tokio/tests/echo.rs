//! Request/reply: echo over the wire, order under concurrency, failing handlers.

mod common;

use std::time::Duration;

use common::*;
use lynn_tokio::{Client, Context, Server};
use lynn_tokio::{HandlerError, Reply};

#[tokio::test]
async fn raw_sample_frame_is_echoed_byte_for_byte() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let mut sock = raw(srv.addr, &HELLO).await;
        assert_eq!(read_exact(&mut sock, HELLO.len()).await, HELLO);
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        assert_eq!(&client.request(1, "hi").await.unwrap()[..], b"hi");
        assert_eq!(srv.handle.metrics().messages_received(), 2);
        srv.stop().await;
    })
    .await;
}

/// Cheap deterministic "random" delay from the request number.
fn delay_for(n: u32) -> Duration {
    let x = n.wrapping_mul(2_654_435_761) >> 16;
    Duration::from_millis(u64::from(x % 20))
}

#[tokio::test]
async fn replies_keep_request_order_with_concurrent_slow_handlers() {
    bounded(async {
        let config = config().max_in_flight(8).build().unwrap();
        let server = Server::builder(config)
            .route(1, |ctx: Context| async move {
                let n = u32::from_le_bytes(ctx.body()[..4].try_into().unwrap());
                tokio::time::sleep(delay_for(n)).await;
                ctx.reply(ctx.body().clone())
            })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        // Pipeline 200 requests from several tasks on one connection; the raw order check
        // uses a socket so replies are seen exactly as the server wrote them.
        let mut bytes = Vec::new();
        for n in 0u32..200 {
            bytes.extend(frame(1, &n.to_le_bytes()));
        }
        let mut sock = raw(srv.addr, &bytes).await;
        let got = read_exact(&mut sock, bytes.len()).await;
        assert_eq!(got, bytes, "replies came back in request order");
        // And through the client: concurrent requests each get their own answer.
        let mut tasks = Vec::new();
        for n in 0u32..50 {
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                let r = c.request(1, n.to_le_bytes().to_vec()).await.unwrap();
                assert_eq!(&r[..], n.to_le_bytes());
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn handler_panic_and_error_affect_only_their_request() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .route(2, |ctx: Context| async move {
                if ctx.body().as_ref() == b"boom" {
                    panic!("handler panic (expected by the test)");
                }
                ctx.reply("fine")
            })
            .route(3, |_ctx: Context| async move {
                Err::<Reply, _>(HandlerError("nope".into()))
            })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        // On one raw connection: panic, error, then echo. Only the echo is answered, and
        // the connection stays open.
        let mut bytes = frame(2, b"boom");
        bytes.extend(frame(3, b""));
        bytes.extend(frame(1, b"after"));
        let mut sock = raw(srv.addr, &bytes).await;
        assert_eq!(read_exact(&mut sock, 20).await, frame(1, b"after"));
        let other = Client::connect(srv.addr.to_string()).await.unwrap();
        assert_eq!(&other.request(2, "ok").await.unwrap()[..], b"fine");
        assert_eq!(srv.handle.metrics().handler_failures(), (1, 1));
        assert_eq!(srv.handle.connection_count(), 2);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_method_is_ignored_and_counted() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let mut bytes = frame(9, b"x");
        bytes.extend(frame(1, b"y"));
        let mut sock = raw(srv.addr, &bytes).await;
        assert_eq!(read_exact(&mut sock, 16).await, frame(1, b"y"));
        assert!(
            srv.handle
                .metrics()
                .render()
                .contains("lynn_unknown_methods_total 1")
        );
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn duplicate_route_fails_bind() {
    let res = Server::builder(config().build().unwrap())
        .route(1, echo)
        .route(1, echo)
        .bind()
        .await;
    assert!(matches!(res, Err(lynn_proto::ServerError::Route(_))));
}
