//! Idle eviction, heartbeats and the read timeout, in virtual time: a 180 s idle timeout
//! passes in milliseconds (`crate::scenarios::liveness`).

use std::time::Duration;

use super::{client_config, connect, server_config, settle, start};
use crate::app::ECHO;
use crate::raw::{SAMPLE_HEARTBEAT, message};
use crate::sim::raw::RawSim;
use crate::sim::{elapsed, sleep};
use crate::support::counter;

/// The server's heartbeat (idle) timeout here.
const IDLE: Duration = Duration::from_secs(180);

/// A silent peer is closed once the 180 s heartbeat timeout has passed (not before, and not
/// much later), counted as `idle_timeout`.
pub async fn idle_peer_evicted() {
    let server = start(server_config().heartbeat_timeout(Some(IDLE))).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    peer.set_read_timeout(IDLE * 10);
    let started = elapsed();
    assert!(peer.closed_by_peer().await, "the silent peer is evicted");
    let after = elapsed() - started;
    assert!(
        (IDLE..IDLE + Duration::from_secs(1)).contains(&after),
        "evicted after {after:?}"
    );
    let metrics = server.metrics();
    settle("idle_timeout counted", || {
        metrics.closed_with("idle_timeout") == 1
    })
    .await;
    server.stop().await;
}

/// A peer that sends a heartbeat or a request every 60 s outlives a 180 s heartbeat timeout
/// for half an hour.
pub async fn traffic_keeps_peer_alive() {
    let server = start(server_config().heartbeat_timeout(Some(IDLE))).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    for i in 0..30u32 {
        sleep(Duration::from_secs(60)).await;
        if i % 2 == 0 {
            peer.write(SAMPLE_HEARTBEAT).await.unwrap();
        } else {
            let body = i.to_le_bytes();
            assert_eq!(
                peer.request(ECHO, &body).await.expect("connected").body,
                body
            );
        }
    }
    let metrics = server.metrics();
    assert_eq!(metrics.closed_with("idle_timeout"), 0);
    assert_eq!(counter(&metrics, "lynn_heartbeats_received_total"), 15);
    assert_eq!(server.handle().connection_count(), 1);
    server.stop().await;
}

/// A client sending heartbeats every 60 s stays connected to a server with a 180 s
/// heartbeat timeout for an hour while it sends nothing else: the server counts its
/// heartbeats, evicts no one, and a request afterwards works.
pub async fn client_heartbeats_keep_connection() {
    let server = start(server_config().heartbeat_timeout(Some(IDLE))).await;
    let client =
        connect(client_config(server.addr()).heartbeat_interval(Some(Duration::from_secs(60))))
            .await;
    sleep(Duration::from_secs(3600)).await;
    let metrics = server.metrics();
    let beats = counter(&metrics, "lynn_heartbeats_received_total");
    assert!((55..=61).contains(&beats), "{beats} heartbeats in an hour");
    assert_eq!(metrics.closed_with("idle_timeout"), 0, "nobody evicted");
    assert!(client.is_connected());
    assert_eq!(client.request(ECHO, "alive").await.unwrap(), "alive");
    client.close().await;
    server.stop().await;
}

/// A client with the default settings, quiet for a minute (past `release_buffers_after`,
/// 5 s), is still connected and answers; its task waits meanwhile.
///
/// Fails (the simulation reports the client's task spinning at 5 s): the client's turn
/// (`lynn_service::client::io::poll_read_into`) takes the receive buffer
/// (`Connection::receive_buffer`, which allocates a freed one) before it knows the stream
/// has bytes; the release timer, due again at once, frees it, which counts as progress, so
/// the turn runs again without ever waiting.
pub async fn quiet_client_yields() {
    let server = start(server_config()).await;
    let client = connect(client_config(server.addr())).await;
    sleep(Duration::from_secs(60)).await;
    assert!(client.is_connected());
    assert_eq!(client.request(ECHO, "awake").await.unwrap(), "awake");
    client.close().await;
    server.stop().await;
}

/// A frame that stops halfway is closed once the 30 s read timeout has passed, counted as
/// `read_timeout`; an idle connection with no partial frame is not affected.
pub async fn stalled_partial_frame_times_out() {
    let read_timeout = Duration::from_secs(30);
    let server = start(server_config().read_timeout(Some(read_timeout))).await;
    let mut idle = RawSim::connect(server.addr()).unwrap();
    assert_eq!(idle.request(ECHO, b"idle").await.unwrap().body, b"idle");
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let started = elapsed();
    peer.write(&message(ECHO, b"stalled frame")[..12])
        .await
        .unwrap();
    assert!(peer.closed_by_peer().await, "the stalled frame closes");
    let after = elapsed() - started;
    let late = read_timeout + Duration::from_secs(1);
    assert!(
        (read_timeout..late).contains(&after),
        "closed after {after:?}"
    );
    let metrics = server.metrics();
    settle("read_timeout counted", || {
        metrics.closed_with("read_timeout") == 1
    })
    .await;
    assert_eq!(idle.request(ECHO, b"still").await.unwrap().body, b"still");
    server.stop().await;
}
