//! Everyday use: echo over a client and over raw bytes, broadcast and groups, the event
//! stream, Unix sockets, the metrics endpoint, running under async-std, and where
//! connections run (smol's global executor, or one given with `SmolRuntime::on`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_io::Async;
use common::{Raw, config, run, spawn, wait_until};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use lynn_proto::codec::FrameKind;
use lynn_smol::{Client, ClientConfig, Context, Reply, Server, ServerEvent, SmolRuntime};

async fn echo(ctx: Context) -> Reply {
    ctx.reply(ctx.body().clone())
}

#[test]
fn echo_with_client_and_exact_bytes() {
    let server = run(Server::builder(config().build().unwrap())
        .route(1, echo)
        .bind())
    .unwrap();
    let server = spawn(server);
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        for i in 0..20u32 {
            let body = format!("message {i}");
            let reply = client.request(1, body.clone()).await.unwrap();
            assert_eq!(reply, body.as_bytes());
        }
        // The DESIGN.md sample frame, byte for byte, answered byte for byte.
        let sample = [
            0xd9, 0x23, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x00, b'h', b'e', b'l', b'l', b'o',
            0x27, 0x1e,
        ];
        let mut raw = Raw::connect(server.addr).await;
        raw.write(&sample).await;
        let mut back = [0u8; 20];
        raw.stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, sample);
        // A heartbeat gets no answer; the next message still does.
        raw.write(&[0xd9, 0x23, 5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0x27, 0x1e])
            .await;
        raw.send(1, b"after").await;
        let f = raw.frame().await.unwrap();
        assert_eq!(
            (f.kind, f.method, &f.body[..]),
            (FrameKind::Message, 1, &b"after"[..])
        );
        client.close().await;
        assert!(!client.is_connected());
    });
    server.stop();
}

#[test]
fn broadcast_reaches_all_and_group_members_exactly_once() {
    let server = run(Server::builder(config().build().unwrap())
        .route(1, |ctx: Context| async move {
            ctx.server().join("room", ctx.id()).unwrap();
            ctx.reply("joined")
        })
        .bind())
    .unwrap();
    let server = spawn(server);
    run(async {
        let mut peers = Vec::new();
        for _ in 0..4 {
            peers.push(Raw::connect(server.addr).await);
        }
        wait_until("4 connections", || server.handle.connection_count() == 4).await;
        // Two of the four join the group.
        for p in &mut peers[..2] {
            p.send(1, b"join").await;
            assert_eq!(&p.frame().await.unwrap().body[..], b"joined");
        }
        assert_eq!(server.handle.broadcast(7, "to all"), 4);
        assert_eq!(server.handle.broadcast_group("room", 8, "to room"), 2);
        assert_eq!(server.handle.broadcast_group("nobody", 9, "x"), 0);
        // A marker sent to each peer afterwards proves nothing else arrived in between.
        for (id, _) in server.handle.connections() {
            server.handle.send(id, 100, "end").unwrap();
        }
        for (i, p) in peers.iter_mut().enumerate() {
            let mut got = Vec::new();
            loop {
                let f = p.frame().await.unwrap();
                if f.method == 100 {
                    break;
                }
                got.push((f.method, f.body));
            }
            let mut want = vec![(7, bytes::Bytes::from("to all"))];
            if i < 2 {
                want.push((8, bytes::Bytes::from("to room")));
            }
            assert_eq!(got, want, "peer {i}");
        }
    });
    server.stop();
}

#[test]
fn event_stream_sees_connects_messages_and_closes() {
    let (builder, events) = Server::builder(config().build().unwrap()).event_stream(4);
    let server = spawn(run(builder.bind()).unwrap());
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        let id = match events.recv().await.unwrap() {
            ServerEvent::Connected { id, .. } => id,
            other => panic!("{other:?}"),
        };
        let ask = client.request(5, "ping");
        let answer = async {
            match events.recv().await.unwrap() {
                ServerEvent::Message { ctx, responder } => {
                    assert_eq!(
                        (ctx.id(), ctx.method(), &ctx.body()[..]),
                        (id, 5, &b"ping"[..])
                    );
                    responder.reply(ctx.reply("pong"));
                }
                other => panic!("{other:?}"),
            }
        };
        let (reply, ()) = futures_lite::future::zip(ask, answer).await;
        assert_eq!(reply.unwrap(), "pong");
        // A dropped responder completes the request with no reply; the next one still works.
        client.send(5, "ignored").await.unwrap();
        match events.recv().await.unwrap() {
            ServerEvent::Message { responder, .. } => drop(responder),
            other => panic!("{other:?}"),
        }
        client.close().await;
        match events.recv().await.unwrap() {
            ServerEvent::Closed { id: closed, .. } => assert_eq!(closed, id),
            other => panic!("{other:?}"),
        }
    });
    server.stop();
}

#[cfg(unix)]
#[test]
fn unix_socket_echo() {
    let dir = std::env::temp_dir().join(format!(
        "lynn-smol-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let server = run(Server::builder(config().build().unwrap())
        .route(1, echo)
        .bind_unix(&path))
    .unwrap();
    assert_eq!(
        server.local_addr().to_string(),
        format!("unix:{}", path.display())
    );
    let handle = server.handle();
    let thread = std::thread::spawn(move || async_io::block_on(server.serve()));
    run(async {
        let client = Client::connect(format!("unix:{}", path.display()))
            .await
            .unwrap();
        assert_eq!(client.request(1, "over unix").await.unwrap(), "over unix");
        let peers = handle.connections();
        assert!(
            matches!(peers[0].1, lynn_smol::PeerAddr::Unix(_)),
            "{peers:?}"
        );
    });
    handle.shutdown();
    thread.join().unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let cfg = config().metrics_addr("127.0.0.1:0").build().unwrap();
    let server = run(Server::builder(cfg).route(1, echo).bind()).unwrap();
    let metrics_addr = server.metrics_addr().unwrap();
    let server = spawn(server);
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        client.request(1, "x").await.unwrap();
        let mut http = Async::<std::net::TcpStream>::connect(metrics_addr)
            .await
            .unwrap();
        http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        http.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("lynn_connections_active 1\n"), "{text}");
        assert!(text.contains("lynn_messages_received_total 1\n"), "{text}");
    });
    server.stop();
}

#[test]
fn runs_under_async_std() {
    async_std::task::block_on(async {
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        let addr = server.local_addr().to_string();
        let handle = server.handle();
        let serving = async_std::task::spawn(server.serve());
        let config = ClientConfig::builder()
            .addr(addr)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let talk = async {
            let client = Client::connect_with(config).await.unwrap();
            for _ in 0..10 {
                assert_eq!(client.request(1, "std").await.unwrap(), "std");
            }
            client.close().await;
        };
        async_std::future::timeout(Duration::from_secs(20), talk)
            .await
            .expect("in time");
        handle.shutdown();
        async_std::future::timeout(Duration::from_secs(20), serving)
            .await
            .expect("in time")
            .unwrap();
    });
}

/// Answers with the name of the thread the handler runs on.
async fn thread_name(ctx: Context) -> Reply {
    let name = std::thread::current().name().unwrap_or_default().to_owned();
    ctx.reply(name)
}

/// The thread names four requests of one connection were answered on.
fn answered_on(server: &common::Running) -> Vec<String> {
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        let mut names = Vec::new();
        for _ in 0..4 {
            let name = client.request(1, "").await.unwrap();
            names.push(String::from_utf8_lossy(&name).into_owned());
        }
        client.close().await;
        names
    })
}

#[test]
fn connections_run_on_smols_global_executor_by_default() {
    let server = run(Server::builder(config().build().unwrap())
        .route(1, thread_name)
        .bind())
    .unwrap();
    // The accept loop runs on the test's server thread; connections do not.
    let server = spawn(server);
    for name in answered_on(&server) {
        assert!(name.starts_with("smol-"), "answered on {name:?}");
    }
    server.stop();
}

#[test]
fn connections_run_on_the_executor_given_to_the_runtime() {
    let executor = Arc::new(smol::Executor::new());
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (executor, stopped) = (executor.clone(), stopped.clone());
            std::thread::Builder::new()
                .name(format!("own-executor-{i}"))
                .spawn(move || async_io::block_on(executor.run(stopped.recv())))
                .unwrap()
        })
        .collect();
    let server = run(Server::builder(config().build().unwrap())
        .runtime(SmolRuntime::on(executor))
        .route(1, thread_name)
        .bind())
    .unwrap();
    let server = spawn(server);
    for name in answered_on(&server) {
        assert!(name.starts_with("own-executor-"), "answered on {name:?}");
    }
    server.stop();
    drop(stop);
    for t in threads {
        let _ = t.join().unwrap();
    }
}
