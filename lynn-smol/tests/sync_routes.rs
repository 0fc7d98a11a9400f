//! Synchronous routes (`route_sync`, `fallback_sync`): answered in place, in request order
//! behind async requests still in flight, failures counted and contained, and the server
//! handle usable from them.

mod common;

use bytes::Bytes;
use common::{Raw, config, frame, run, spawn, wait_until};
use lynn_proto::codec::FrameKind;
use lynn_smol::{Client, Context, Server, SyncContext};

/// The echo every test routes to method 1.
fn echo(ctx: &mut SyncContext<'_, '_>) {
    ctx.reply(ctx.body());
}

/// A metric's value in the Prometheus text, e.g. `lynn_messages_sent_total`.
fn metric(server: &common::Running, name: &str) -> u64 {
    let text = server.handle.metrics().render();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// A server with the sync echo on method 1, a sync route on 3 that fails on request
/// (`"boom"` panics, `"bad"` returns `Err`), and an async route on 2 that answers `"slow"`
/// once the test sends on the returned channel (and says on the other that it started).
fn server() -> (
    common::Running,
    async_channel::Sender<()>,
    async_channel::Receiver<()>,
) {
    let (release, released) = async_channel::unbounded::<()>();
    let (started_tx, started) = async_channel::unbounded::<()>();
    let server = Server::builder(config().build().unwrap())
        .route_sync(1, echo)
        .route(2, move |ctx: Context| {
            let (released, started) = (released.clone(), started_tx.clone());
            async move {
                started.send(()).await.unwrap();
                released.recv().await.unwrap();
                ctx.reply("slow")
            }
        })
        .route_sync(3, |ctx| match ctx.body() {
            b"boom" => panic!("sync handler panics on purpose"),
            b"bad" => Err("bad request"),
            body => {
                ctx.reply_with(4, body);
                Ok(())
            }
        })
        .bind();
    (spawn(run(server).unwrap()), release, started)
}

/// Reads the next frame and checks its method and body.
async fn expect(raw: &mut Raw, method: u16, body: &[u8]) {
    let f = raw.frame().await.expect("a reply");
    assert_eq!(
        (f.kind, f.method, &f.body[..]),
        (FrameKind::Message, method, body),
        "expected method {method} {:?}",
        String::from_utf8_lossy(body)
    );
}

#[test]
fn sync_route_echoes_small_and_64k_bodies() {
    let (server, _release, _started) = server();
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        for i in 0..20u32 {
            let body = format!("message {i}");
            assert_eq!(client.request(1, body.clone()).await.unwrap(), body);
        }
        let big: Bytes = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        assert_eq!(client.request(1, big.clone()).await.unwrap(), big);
        // Many in one write: each answered from the receive buffer, in order.
        let mut raw = Raw::connect(server.addr).await;
        let mut burst = Vec::new();
        for i in 0..100u32 {
            burst.extend_from_slice(&frame(1, format!("burst {i}").as_bytes()));
        }
        burst.extend_from_slice(&frame(1, &big));
        raw.write(&burst).await;
        for i in 0..100u32 {
            expect(&mut raw, 1, format!("burst {i}").as_bytes()).await;
        }
        expect(&mut raw, 1, &big).await;
        // Counted like any other request: received, sent, never in flight.
        wait_until("every reply counted", || {
            metric(&server, "lynn_messages_sent_total") == 122
        })
        .await;
        assert_eq!(server.handle.metrics().messages_received(), 122);
        assert_eq!(metric(&server, "lynn_system_queue_size"), 0);
        assert_eq!(server.handle.metrics().handler_failures(), (0, 0));
    });
    server.stop();
}

#[test]
fn sync_replies_wait_behind_an_async_request_in_flight() {
    let (server, release, started) = server();
    run(async {
        let mut raw = Raw::connect(server.addr).await;
        let mut burst = Vec::new();
        burst.extend_from_slice(&frame(1, b"before"));
        burst.extend_from_slice(&frame(2, b"wait"));
        for body in ["a", "b", "c"] {
            burst.extend_from_slice(&frame(1, body.as_bytes()));
        }
        burst.extend_from_slice(&frame(3, b"d"));
        raw.write(&burst).await;
        // The message before the async one is answered while that one still waits.
        expect(&mut raw, 1, b"before").await;
        started.recv().await.unwrap();
        wait_until("all six received", || {
            server.handle.metrics().messages_received() == 6
        })
        .await;
        release.send(()).await.unwrap();
        expect(&mut raw, 2, b"slow").await;
        for body in ["a", "b", "c"] {
            expect(&mut raw, 1, body.as_bytes()).await;
        }
        expect(&mut raw, 4, b"d").await;
        // Once nothing is in flight, messages are answered in place again.
        raw.send(1, b"after").await;
        expect(&mut raw, 1, b"after").await;
        assert_eq!(metric(&server, "lynn_system_queue_size"), 0);
    });
    server.stop();
}

#[test]
fn sync_handler_panic_or_error_gets_no_reply_and_is_counted() {
    let (server, release, started) = server();
    run(async {
        let mut raw = Raw::connect(server.addr).await;
        // Answered in place.
        let mut burst = Vec::new();
        for body in ["one", "boom", "two", "bad", "three"] {
            burst.extend_from_slice(&frame(3, body.as_bytes()));
        }
        raw.write(&burst).await;
        for body in ["one", "two", "three"] {
            expect(&mut raw, 4, body.as_bytes()).await;
        }
        assert_eq!(server.handle.metrics().handler_failures(), (1, 1));
        // Answered in turn behind an async request.
        let mut burst = Vec::new();
        burst.extend_from_slice(&frame(2, b"wait"));
        for body in ["boom", "four", "bad", "five"] {
            burst.extend_from_slice(&frame(3, body.as_bytes()));
        }
        raw.write(&burst).await;
        started.recv().await.unwrap();
        release.send(()).await.unwrap();
        expect(&mut raw, 2, b"slow").await;
        expect(&mut raw, 4, b"four").await;
        expect(&mut raw, 4, b"five").await;
        assert_eq!(server.handle.metrics().handler_failures(), (2, 2));
        // The connection and others keep working.
        raw.send(1, b"still here").await;
        expect(&mut raw, 1, b"still here").await;
        let other = Client::connect(server.addr()).await.unwrap();
        assert_eq!(other.request(1, "fine").await.unwrap(), "fine");
        assert_eq!(server.handle.connection_count(), 2);
        assert_eq!(metric(&server, "lynn_system_queue_size"), 0);
    });
    server.stop();
}

#[test]
fn sync_handler_broadcasts_and_joins_groups_through_the_server_handle() {
    let server = Server::builder(config().build().unwrap())
        .route_sync(5, |ctx| {
            let joined = ctx
                .server()
                .join("room", ctx.id())
                .map_err(|e| e.to_string())?;
            ctx.reply(if joined { b"joined" } else { b"member" });
            Ok::<_, String>(())
        })
        .route_sync(6, |ctx| {
            let n = ctx
                .server()
                .broadcast(7, Bytes::copy_from_slice(ctx.body()));
            ctx.reply(n.to_string().as_bytes());
        })
        .fallback_sync(|ctx| {
            let body = Bytes::copy_from_slice(ctx.body());
            let n = ctx.server().broadcast_group("room", 8, body);
            ctx.reply(n.to_string().as_bytes());
        })
        .bind();
    let server = spawn(run(server).unwrap());
    run(async {
        let mut peers = Vec::new();
        for _ in 0..3 {
            peers.push(Raw::connect(server.addr).await);
        }
        wait_until("3 connections", || server.handle.connection_count() == 3).await;
        for p in &mut peers[..2] {
            p.send(5, b"join").await;
            expect(p, 5, b"joined").await;
        }
        // The outsider sends to all (itself included) and to the room, and sees both
        // replies (the counts reached), whenever its copy of the broadcast comes.
        let mut burst = frame(6, b"to all").to_vec();
        burst.extend_from_slice(&frame(9, b"to room"));
        peers[2].write(&burst).await;
        let mut outsider = Vec::new();
        while outsider.iter().filter(|(m, _)| *m != 7).count() < 2 {
            let f = peers[2].frame().await.unwrap();
            outsider.push((f.method, f.body));
        }
        // A marker sent to each peer afterwards proves nothing else arrived in between.
        for (id, _) in server.handle.connections() {
            server.handle.send(id, 100, "end").unwrap();
        }
        for (i, p) in peers.iter_mut().enumerate() {
            let mut got = if i == 2 {
                std::mem::take(&mut outsider)
            } else {
                Vec::new()
            };
            loop {
                let f = p.frame().await.unwrap();
                if f.method == 100 {
                    break;
                }
                got.push((f.method, f.body));
            }
            got.sort();
            let mut want = vec![(7, Bytes::from("to all"))];
            if i < 2 {
                want.push((8, Bytes::from("to room")));
            } else {
                want.push((6, Bytes::from("3")));
                want.push((9, Bytes::from("2")));
            }
            want.sort();
            assert_eq!(got, want, "peer {i}");
        }
    });
    server.stop();
}
