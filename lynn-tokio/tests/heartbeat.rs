//! Idle eviction: silent peers go, busy peers and heartbeating clients stay.

mod common;

use std::time::Duration;

use common::*;
use lynn_proto::ClientConfig;
use lynn_tokio::{Client, Server};

fn short_timeout() -> lynn_proto::ServerConfig {
    config()
        .heartbeat_timeout(Some(Duration::from_millis(200)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn silent_peer_is_evicted() {
    bounded(async {
        let server = Server::builder(short_timeout())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let mut sock = raw(srv.addr, &[]).await;
        assert_eq!(read_to_eof(&mut sock).await, b"");
        wait_until("idle close counted", || {
            srv.handle.metrics().closed_with("idle_timeout") == 1
        })
        .await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn steady_traffic_and_heartbeats_keep_peers_alive() {
    bounded(async {
        let server = Server::builder(short_timeout())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        // A busy client that never sends heartbeats (any frame proves liveness).
        let busy = ClientConfig::builder()
            .addr(srv.addr.to_string())
            .heartbeat_interval(None)
            .build()
            .unwrap();
        let busy = Client::connect_with(busy).await.unwrap();
        // An idle client whose heartbeats come from the core's timer.
        let quiet = ClientConfig::builder()
            .addr(srv.addr.to_string())
            .heartbeat_interval(Some(Duration::from_millis(50)))
            .build()
            .unwrap();
        let quiet = Client::connect_with(quiet).await.unwrap();
        let mut tick = tokio::time::interval(Duration::from_millis(40));
        // Three times the timeout of traffic: 15 requests paced 40 ms apart.
        for i in 0..15u32 {
            tick.tick().await;
            let body = i.to_le_bytes().to_vec();
            assert_eq!(busy.request(1, body.clone()).await.unwrap(), body);
        }
        wait_until("heartbeats arrive", || {
            server_metric(&srv.handle, "lynn_heartbeats_received_total") >= 5
        })
        .await;
        assert_eq!(srv.handle.metrics().closed_with("idle_timeout"), 0);
        assert!(busy.is_connected() && quiet.is_connected());
        assert_eq!(srv.handle.connection_count(), 2);
        srv.stop().await;
    })
    .await;
}
