//! Faults stay local: bad frames, panicking handlers, silent peers, and a peer that never
//! reads each affect only their own connection.

mod common;

use std::time::{Duration, Instant};

use async_io::Timer;
use common::{Raw, config, frame, run, spawn, wait_until};

use futures_lite::{AsyncWriteExt, future};
use lynn_smol::{Client, ClientConfig, Context, Reply, Server};

async fn echo(ctx: Context) -> Reply {
    ctx.reply(ctx.body().clone())
}

#[test]
fn bad_frames_close_only_the_offending_connection() {
    let server = spawn(
        run(Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind())
        .unwrap(),
    );
    run(async {
        let good = Client::connect(server.addr()).await.unwrap();
        // A valid exchange, then a wrong header mark: the connection closes.
        let mut bad = Raw::connect(server.addr).await;
        bad.send(1, b"before").await;
        assert_eq!(&bad.frame().await.unwrap().body[..], b"before");
        bad.write(&[0xde, 0xad, 1, 2, 3]).await;
        assert!(bad.until_closed().await.is_empty());
        // A length field over the limit closes another one as soon as the header is in.
        let mut huge = Raw::connect(server.addr).await;
        huge.write(&[0xd9, 0x23, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
            .await;
        assert!(huge.until_closed().await.is_empty());
        let metrics = server.handle.metrics().clone();
        wait_until("two protocol closes", || {
            metrics.closed_with("protocol_error") == 2
        })
        .await;
        assert_eq!(good.request(1, "still here").await.unwrap(), "still here");
        assert!(good.is_connected());
    });
    server.stop();
}

#[test]
fn handler_panic_affects_only_its_request() {
    let server = Server::builder(config().build().unwrap())
        .route(1, |ctx: Context| async move {
            if ctx.body() == "boom" {
                panic!("handler panics on purpose");
            }
            ctx.reply(ctx.body().clone())
        })
        .bind();
    let server = spawn(run(server).unwrap());
    run(async {
        let mut raw = Raw::connect(server.addr).await;
        let mut burst = Vec::new();
        for body in ["one", "boom", "two"] {
            burst.extend_from_slice(&frame(1, body.as_bytes()));
        }
        raw.write(&burst).await;
        assert_eq!(&raw.frame().await.unwrap().body[..], b"one");
        assert_eq!(&raw.frame().await.unwrap().body[..], b"two");
        let other = Client::connect(server.addr()).await.unwrap();
        assert_eq!(other.request(1, "fine").await.unwrap(), "fine");
        assert_eq!(server.handle.metrics().handler_failures(), (0, 1));
        assert_eq!(server.handle.connection_count(), 2);
    });
    server.stop();
}

#[test]
fn silent_peer_is_evicted_and_busy_or_heartbeating_peers_are_not() {
    let timeout = Duration::from_millis(200);
    let cfg = config().heartbeat_timeout(Some(timeout)).build().unwrap();
    let server = spawn(run(Server::builder(cfg).route(1, echo).bind()).unwrap());
    run(async {
        // Heartbeats only, every 60 ms: alive past several timeouts.
        let beating = ClientConfig::builder()
            .addr(server.addr())
            .heartbeat_interval(Some(Duration::from_millis(60)))
            .reconnect(None)
            .build()
            .unwrap();
        let beating = Client::connect_with(beating).await.unwrap();
        // Traffic only (no heartbeats): any frame proves liveness.
        let busy = ClientConfig::builder()
            .addr(server.addr())
            .heartbeat_interval(None)
            .reconnect(None)
            .build()
            .unwrap();
        let busy = Client::connect_with(busy).await.unwrap();
        // Silent: evicted after the timeout.
        let started = Instant::now();
        let mut silent = Raw::connect(server.addr).await;
        let traffic = async {
            for _ in 0..12 {
                assert_eq!(busy.request(1, "tick").await.unwrap(), "tick");
                Timer::after(Duration::from_millis(50)).await; // pacing the traffic under test
            }
        };
        let eviction = async {
            assert!(silent.until_closed().await.is_empty());
            started.elapsed()
        };
        let ((), evicted_after) = future::zip(traffic, eviction).await;
        assert!(
            evicted_after >= timeout - Duration::from_millis(20),
            "{evicted_after:?}"
        );
        let metrics = server.handle.metrics().clone();
        wait_until("5 heartbeats", || {
            metrics.render().lines().any(|l| {
                l.strip_prefix("lynn_heartbeats_received_total ")
                    .is_some_and(|n| n.parse::<u64>().unwrap_or(0) >= 5)
            })
        })
        .await;
        assert_eq!(metrics.closed_with("idle_timeout"), 1);
        assert!(busy.is_connected() && beating.is_connected());
        assert_eq!(beating.request(1, "alive").await.unwrap(), "alive");
    });
    server.stop();
}

#[test]
fn a_peer_that_stops_reading_stops_being_read_while_others_are_served() {
    let cfg = config()
        .send_queue_limit(64 * 1024)
        .recv_buffer_size(64 * 1024)
        .send_buffer_size(64 * 1024)
        .build()
        .unwrap();
    let server = spawn(run(Server::builder(cfg).route(1, echo).bind()).unwrap());
    run(async {
        let mut hog = Raw::connect(server.addr).await;
        let big = frame(1, &vec![7u8; 32 * 1024]);
        // Write until the server stops reading: a write that makes no progress for 300 ms.
        let mut written = 0usize;
        loop {
            assert!(written < 4000, "the server kept reading {written} frames");
            let write = async { Some(hog.stream.write_all(&big).await) };
            let stall = async {
                Timer::after(Duration::from_millis(300)).await;
                None
            };
            match future::or(write, stall).await {
                Some(r) => {
                    r.unwrap();
                    written += 1;
                }
                None => break,
            }
        }
        let metrics = server.handle.metrics().clone();
        let before = metrics.messages_received();
        assert!(before < written as u64, "read {before} of {written}");
        let other = Client::connect(server.addr()).await.unwrap();
        for _ in 0..10 {
            assert_eq!(other.request(1, "served").await.unwrap(), "served");
        }
        // Only the other client's ten messages were read meanwhile.
        assert_eq!(metrics.messages_received(), before + 10);
        assert_eq!(server.handle.connection_count(), 2);
        // Once it reads again, the server's blocked writes resume (it waits for the socket
        // to become writable), and so do its reads: every whole request is answered.
        for i in 0..written {
            let reply = hog.frame().await;
            assert_eq!(reply.map(|f| f.body.len()), Some(32 * 1024), "reply {i}");
        }
    });
    server.stop();
}

/// The idle deadline moves later with every frame, but the server's timer is only re-armed
/// when it fires at an older deadline. A peer that is busy past the first deadline and then
/// goes silent is evicted one timeout after its last frame: not at the first deadline, and
/// not never.
#[test]
fn busy_then_silent_peer_is_evicted_one_timeout_after_its_last_frame() {
    let timeout = Duration::from_millis(200);
    let cfg = config().heartbeat_timeout(Some(timeout)).build().unwrap();
    let server = spawn(run(Server::builder(cfg).route(1, echo).bind()).unwrap());
    run(async {
        let mut raw = Raw::connect(server.addr).await;
        let mut last = Instant::now();
        for i in 0..6u8 {
            if i > 0 {
                Timer::after(Duration::from_millis(60)).await; // pacing the traffic under test
            }
            last = Instant::now();
            raw.send(1, &[i]).await;
            assert_eq!(raw.frame().await.unwrap().body[..], [i]);
        }
        raw.until_closed().await;
        let silent_for = last.elapsed();
        assert!(
            silent_for >= timeout - Duration::from_millis(20),
            "evicted {silent_for:?} after the last frame"
        );
        let metrics = server.handle.metrics().clone();
        wait_until("idle_timeout counted", || {
            metrics.closed_with("idle_timeout") == 1
        })
        .await;
    });
    server.stop();
}
