//! Synchronous routes (`route_sync`, `fallback_sync`): answered in place, in request order
//! with async routes, failures isolated, fanout from inside.

mod common;

use std::sync::Arc;

use common::*;
use lynn_tokio::{Client, Context, Server};
use tokio::sync::Semaphore;

#[tokio::test]
async fn a_sync_route_echoes_byte_for_byte_and_large_bodies() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route_sync(1, |ctx| ctx.reply(ctx.body()))
            .fallback_sync(|ctx| ctx.reply_with(7, b"fallback"))
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let mut sock = raw(srv.addr, &HELLO).await;
        assert_eq!(read_exact(&mut sock, HELLO.len()).await, HELLO);

        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        assert_eq!(&client.request(1, big.clone()).await.unwrap()[..], &big[..]);
        // The fallback replies with another method: a client request matches by order, so
        // check the frame on a raw socket.
        let mut sock = raw(srv.addr, &frame(9, b"x")).await;
        assert_eq!(read_exact(&mut sock, 23).await, frame(7, b"fallback"));
        wait_until("three messages counted", || {
            srv.handle.metrics().messages_received() == 3
        })
        .await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sync_replies_wait_behind_an_earlier_async_request() {
    bounded(async {
        let gate = Arc::new(Semaphore::new(0));
        let held = gate.clone();
        let server = Server::builder(config().max_in_flight(64).build().unwrap())
            .route_sync(1, |ctx| ctx.reply(ctx.body()))
            .route(2, move |ctx: Context| {
                let gate = held.clone();
                async move {
                    let _permit = gate.acquire().await.unwrap();
                    ctx.reply(ctx.body().clone())
                }
            })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        // One async request held at the gate, then sync ones, then another async one and
        // more sync ones, all pipelined on one connection.
        let mut sent = Vec::new();
        for n in 0u8..40 {
            let method = if n == 0 || n == 20 { 2 } else { 1 };
            sent.extend(frame(method, &[n]));
        }
        let mut sock = raw(srv.addr, &sent).await;
        wait_until("the first async request is in flight", || {
            server_metric(&srv.handle, "lynn_system_queue_size") >= 1
        })
        .await;
        gate.add_permits(2);
        let got = read_exact(&mut sock, sent.len()).await;
        assert_eq!(got, sent, "every reply, in request order");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failing_sync_handler_is_counted_and_isolated() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route_sync(1, |ctx| ctx.reply(ctx.body()))
            // Both reply first: a failed handler's reply is withdrawn.
            .route_sync(3, |ctx| -> () {
                ctx.reply(b"lost");
                panic!("sync handler panics (expected in tests)")
            })
            .route_sync(4, |ctx| {
                ctx.reply(b"lost");
                Err::<(), _>("refused")
            })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        let other = Client::connect(srv.addr.to_string()).await.unwrap();
        // 3 and 4 are answered by nothing: send them, then check that the next reply on
        // the same connection is the next request's (the client matches replies in order).
        client.send(3, "boom").await.unwrap();
        client.send(4, "no").await.unwrap();
        assert_eq!(
            &client.request(1, "still here").await.unwrap()[..],
            b"still here"
        );
        assert_eq!(
            &other.request(1, "and here").await.unwrap()[..],
            b"and here"
        );
        wait_until("one error and one panic counted", || {
            srv.handle.metrics().handler_failures() == (1, 1)
        })
        .await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_sync_handler_reaches_other_connections() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route_sync(5, |ctx| {
                let n = ctx.server().broadcast(10, ctx.body().to_vec());
                ctx.reply(&(n as u64).to_le_bytes());
            })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let listener = Client::connect(srv.addr.to_string()).await.unwrap();
        let sender = Client::connect(srv.addr.to_string()).await.unwrap();
        wait_until("both connected", || srv.handle.connection_count() == 2).await;
        let count = sender.request(5, "news").await.unwrap();
        assert_eq!(u64::from_le_bytes(count[..].try_into().unwrap()), 2);
        let push = listener.recv().await.expect("a push");
        assert_eq!((push.method, &push.body[..]), (10, &b"news"[..]));
        srv.stop().await;
    })
    .await;
}
