//! Idle eviction: a silent peer is closed after the heartbeat timeout; one that sends
//! messages or heartbeats is not.

mod common;

use std::time::Duration;

use common::{Raw, Running, build, config, wait_until};
use lynn_blocking::{Client, ClientConfig, Context, Server};

const TIMEOUT: Duration = Duration::from_millis(300);

fn server() -> Running {
    Running::start(
        Server::builder(build(config().heartbeat_timeout(Some(TIMEOUT))))
            .route(1, |ctx: Context| {
                // The workload: each request takes a third of the timeout.
                std::thread::sleep(TIMEOUT / 3);
                ctx.reply(ctx.body().clone())
            })
            .bind()
            .unwrap(),
    )
}

#[test]
fn silent_peer_is_evicted() {
    let server = server();
    let mut raw = Raw::connect(&server.addr);
    raw.expect_closed();
    let m = server.handle.metrics();
    wait_until("idle close counted", || m.closed_with("idle_timeout") == 1);
    server.stop();
}

#[test]
fn traffic_keeps_a_connection_alive_past_the_timeout() {
    let server = server();
    let client = Client::connect_with(
        ClientConfig::builder()
            .addr(server.addr.clone())
            .heartbeat_interval(None)
            .build()
            .unwrap(),
    )
    .unwrap();
    let start = std::time::Instant::now();
    // Sequential requests only, no heartbeats, for three times the timeout.
    while start.elapsed() < TIMEOUT * 3 {
        assert_eq!(&client.request(1, "tick").unwrap()[..], b"tick");
    }
    assert_eq!(server.handle.metrics().closed_with("idle_timeout"), 0);
    assert!(client.is_connected());
    server.stop();
}

#[test]
fn client_heartbeats_keep_an_idle_client_alive() {
    let server = server();
    let client = Client::connect_with(
        ClientConfig::builder()
            .addr(server.addr.clone())
            .heartbeat_interval(Some(TIMEOUT / 4))
            .build()
            .unwrap(),
    )
    .unwrap();
    let m = server.handle.metrics();
    // At least 3 × 300 ms pass while the client only sends heartbeats.
    wait_until("a dozen heartbeats", || {
        m.render()
            .lines()
            .find_map(|l| l.strip_prefix("lynn_heartbeats_received_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n >= 12)
    });
    assert_eq!(m.closed_with("idle_timeout"), 0);
    assert_eq!(&client.request(1, "alive").unwrap()[..], b"alive");
    server.stop();
}
