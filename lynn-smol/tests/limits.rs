//! Connection limits with slots given back on disconnect, and replies in request order
//! while handlers of one connection run concurrently.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::Timer;
use common::{Raw, config, frame, run, spawn, wait_until};
use lynn_smol::{Client, Context, Reply, Server};

async fn echo(ctx: Context) -> Reply {
    ctx.reply(ctx.body().clone())
}

/// Connects two peers, checks that a third is refused with `label`, drops one, and checks
/// that a new peer then gets in and is served.
fn limit_releases_slots(builder: lynn_proto::ServerConfigBuilder, label: &str) {
    let server = spawn(
        run(Server::builder(builder.build().unwrap())
            .route(1, echo)
            .bind())
        .unwrap(),
    );
    run(async {
        let first = Raw::connect(server.addr).await;
        let mut second = Raw::connect(server.addr).await;
        wait_until("two admitted", || server.handle.connection_count() == 2).await;
        let mut refused = Raw::connect(server.addr).await;
        assert!(
            refused.until_closed().await.is_empty(),
            "refused peer is closed at once"
        );
        assert_eq!(server.handle.metrics().rejected_with(label), 1);
        second.send(1, b"admitted").await;
        assert_eq!(&second.frame().await.unwrap().body[..], b"admitted");
        drop(first);
        wait_until("slot released", || server.handle.connection_count() == 1).await;
        let late = Client::connect(server.addr()).await.unwrap();
        assert_eq!(late.request(1, "got in").await.unwrap(), "got in");
        assert_eq!(server.handle.metrics().rejected_with(label), 1);
    });
    server.stop();
}

#[test]
fn max_connections_is_enforced_and_released() {
    limit_releases_slots(config().max_connections(2), "max_connections");
}

#[test]
fn max_connections_per_ip_is_enforced_and_released() {
    limit_releases_slots(config().max_connections_per_ip(2), "max_per_ip");
}

#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[test]
fn replies_keep_request_order_under_concurrent_handlers() {
    let cfg = config().max_in_flight(8).build().unwrap();
    let seen = Arc::new(Concurrency::default());
    let server = Server::builder(cfg)
        .state(Arc::clone(&seen))
        .route(1, |ctx: Context<Arc<Concurrency>>| async move {
            let c = ctx.state();
            let n = c.now.fetch_add(1, Ordering::SeqCst) + 1;
            c.max.fetch_max(n, Ordering::SeqCst);
            Timer::after(Duration::from_millis(fastrand::u64(0..15))).await;
            c.now.fetch_sub(1, Ordering::SeqCst);
            ctx.reply(ctx.body().clone())
        })
        .bind();
    let server = run(server).unwrap();
    let server = spawn(server);
    run(async {
        // Pipelined on a raw socket: replies come back exactly in request order.
        let mut raw = Raw::connect(server.addr).await;
        let mut burst = Vec::new();
        for i in 0..100u32 {
            burst.extend_from_slice(&frame(1, &i.to_le_bytes()));
        }
        raw.write(&burst).await;
        for i in 0..100u32 {
            assert_eq!(raw.frame().await.unwrap().body[..], i.to_le_bytes());
        }
        // Concurrent requests on one client each get their own reply.
        let client = Client::connect(server.addr()).await.unwrap();
        let calls = (0..40u32).map(|i| {
            let client = client.clone();
            async move { (i, client.request(1, i.to_string()).await.unwrap()) }
        });
        for (i, reply) in futures_util::future::join_all(calls).await {
            assert_eq!(reply, i.to_string());
        }
    });
    let max = seen.max.load(Ordering::SeqCst);
    assert!((2..=8).contains(&max), "handlers at once: {max}");
    server.stop();
}

/// `max_concurrent_handlers` holds for handlers that finish on their first poll (answered
/// inline by the connection task) as well as for those that wait, and a request that waits
/// for a free slot still gets its reply in order.
#[test]
fn concurrency_limit_covers_ready_and_waiting_handlers() {
    let cfg = config()
        .max_in_flight(16)
        .max_concurrent_handlers(Some(2))
        .build()
        .unwrap();
    let seen = Arc::new(Concurrency::default());
    let enter = |c: &Concurrency| {
        let n = c.now.fetch_add(1, Ordering::SeqCst) + 1;
        c.max.fetch_max(n, Ordering::SeqCst);
    };
    let server = Server::builder(cfg)
        .state(Arc::clone(&seen))
        .route(1, move |ctx: Context<Arc<Concurrency>>| async move {
            enter(ctx.state());
            Timer::after(Duration::from_millis(fastrand::u64(1..10))).await;
            ctx.state().now.fetch_sub(1, Ordering::SeqCst);
            ctx.reply(ctx.body().clone())
        })
        .route(2, move |ctx: Context<Arc<Concurrency>>| async move {
            enter(ctx.state());
            ctx.state().now.fetch_sub(1, Ordering::SeqCst);
            ctx.reply(ctx.body().clone())
        })
        .bind();
    let server = spawn(run(server).unwrap());
    run(async {
        let mut raw = Raw::connect(server.addr).await;
        let mut burst = Vec::new();
        for i in 0..60u32 {
            let method = if i % 3 == 0 { 2 } else { 1 };
            burst.extend_from_slice(&frame(method, &i.to_le_bytes()));
        }
        raw.write(&burst).await;
        for i in 0..60u32 {
            assert_eq!(raw.frame().await.unwrap().body[..], i.to_le_bytes());
        }
    });
    let max = seen.max.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "handlers at once: {max}");
    server.stop();
}
