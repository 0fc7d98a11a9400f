//! Beginnings and ends: graceful shutdown, reconnecting after a restart, request timeouts,
//! a server-side close seen by the client, and dropping the last client handle.

mod common;

use std::time::{Duration, Instant};

use async_io::Timer;
use common::{Raw, config, frame, run, spawn, wait_until};
use lynn_proto::reconnect::ReconnectConfig;
use lynn_smol::{Client, ClientConfig, ClientError, Context, Reply, Server};

async fn echo(ctx: Context) -> Reply {
    ctx.reply(ctx.body().clone())
}

#[test]
fn graceful_shutdown_answers_every_accepted_request() {
    let cfg = config()
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let server = Server::builder(cfg)
        .route(1, |ctx: Context| async move {
            Timer::after(Duration::from_millis(100)).await;
            ctx.reply(ctx.body().clone())
        })
        .bind();
    let server = spawn(run(server).unwrap());
    run(async {
        let mut peers = [
            Raw::connect(server.addr).await,
            Raw::connect(server.addr).await,
        ];
        for (p, peer) in peers.iter_mut().enumerate() {
            let mut burst = Vec::new();
            for i in 0..5u8 {
                burst.extend_from_slice(&frame(1, &[p as u8, i]));
            }
            peer.write(&burst).await;
        }
        let metrics = server.handle.metrics().clone();
        wait_until("10 requests accepted", || metrics.messages_received() == 10).await;
        server.handle.shutdown();
        for (p, peer) in peers.iter_mut().enumerate() {
            let replies: Vec<_> = peer
                .until_closed()
                .await
                .into_iter()
                .map(|f| f.body)
                .collect();
            let want: Vec<_> = (0..5u8)
                .map(|i| bytes::Bytes::from(vec![p as u8, i]))
                .collect();
            assert_eq!(replies, want, "peer {p}");
        }
        // The server lingers for the peers' end of stream before it counts the closes.
        drop(peers);
        wait_until("both closes counted", || metrics.closed_with("local") == 2).await;
    });
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn client_reconnects_after_a_server_restart_on_the_same_port() {
    let first = spawn(
        run(Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind())
        .unwrap(),
    );
    let addr = first.addr;
    let policy = ReconnectConfig {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_attempts: None,
        ..ReconnectConfig::default()
    };
    let cfg = ClientConfig::builder()
        .addr(addr.to_string())
        .reconnect(Some(policy))
        .build()
        .unwrap();
    let client = run(Client::connect_with(cfg)).unwrap();
    run(async {
        assert_eq!(client.request(1, "first").await.unwrap(), "first");
    });
    first.stop();
    run(wait_until("client noticed", || !client.is_connected()));
    let restarted = config().addr(addr.to_string()).build().unwrap();
    let second = spawn(run(Server::builder(restarted).route(1, echo).bind()).unwrap());
    run(async {
        wait_until("client reconnected", || client.is_connected()).await;
        assert_eq!(client.request(1, "second").await.unwrap(), "second");
    });
    second.stop();
}

#[test]
fn request_times_out_and_the_client_carries_on() {
    let server = Server::builder(config().build().unwrap())
        .route(1, |_ctx: Context| async { Reply::none() })
        .route(2, echo)
        .bind();
    let server = spawn(run(server).unwrap());
    run(async {
        let cfg = ClientConfig::builder()
            .addr(server.addr())
            .request_timeout(Some(Duration::from_millis(200)))
            // With ids a timeout ends only its own request; the connection stays.
            .correlation_ids(true)
            .build()
            .unwrap();
        let client = Client::connect_with(cfg).await.unwrap();
        let started = Instant::now();
        assert!(matches!(
            client.request(1, "void").await,
            Err(ClientError::Timeout)
        ));
        assert!(started.elapsed() >= Duration::from_millis(190));
        assert_eq!(client.request(2, "next").await.unwrap(), "next");
        assert!(client.is_connected());
    });
    server.stop();
}

#[test]
fn client_sees_a_server_close_and_ends_without_reconnect() {
    let server = spawn(
        run(Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind())
        .unwrap(),
    );
    run(async {
        let cfg = ClientConfig::builder()
            .addr(server.addr())
            .reconnect(None)
            .build()
            .unwrap();
        let client = Client::connect_with(cfg).await.unwrap();
        client.send(1, "push me back").await.unwrap();
        let echoed = client.recv().await.unwrap();
        assert_eq!((echoed.method, &echoed.body[..]), (1, &b"push me back"[..]));
        // The echo proves the server registered the connection.
        let (id, _) = server.handle.connections()[0].clone();
        assert!(server.handle.close(id));
        assert_eq!(client.recv().await, None);
        assert!(!client.is_connected());
        assert!(matches!(
            client.request(1, "late").await,
            Err(ClientError::Closed(_))
        ));
    });
    server.stop();
}

#[test]
fn dropping_the_last_client_handle_closes_the_connection() {
    let server = spawn(
        run(Server::builder(config().build().unwrap())
            .route(1, echo)
            .bind())
        .unwrap(),
    );
    run(async {
        let client = Client::connect(server.addr()).await.unwrap();
        let clone = client.clone();
        assert_eq!(clone.request(1, "x").await.unwrap(), "x");
        wait_until("connected", || server.handle.connection_count() == 1).await;
        drop(client);
        assert_eq!(
            clone.request(1, "y").await.unwrap(),
            "y",
            "a clone keeps it alive"
        );
        drop(clone);
        wait_until("closed on drop", || server.handle.connection_count() == 0).await;
    });
    server.stop();
}
