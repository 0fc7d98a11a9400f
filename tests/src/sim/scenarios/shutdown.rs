//! Graceful shutdown with requests in flight, and the shutdown timeout
//! (`crate::scenarios::shutdown`).

use std::io;
use std::time::Duration;

use futures_lite::future::zip;

use super::{client_config, connect, server_config, settle, start};
use crate::app::{DELAY, delay_body};
use crate::raw::message;
use crate::sim::raw::RawSim;
use crate::sim::{elapsed, idle};

const PEERS: usize = 3;
const REQUESTS: usize = 4;
const DELAYED: Duration = Duration::from_millis(300);

/// Three raw peers with four 300 ms requests in flight each, and a client with one, when
/// the server is shut down: every request is answered, in order, before its connection
/// ends; the peers, reading meanwhile, see the end of the stream after their replies and
/// leave; `serve` returns once they have (after 300 ms, not the 5 s timeout); the address
/// then refuses connections.
pub async fn graceful_shutdown_answers_in_flight() {
    let server = start(server_config()).await;
    let addr = server.addr().to_string();
    let payload = |p: usize, r: usize| format!("peer {p} request {r}").into_bytes();
    let mut peers = Vec::new();
    for p in 0..PEERS {
        let mut peer = RawSim::connect(&addr).unwrap();
        let bytes: Vec<u8> = (0..REQUESTS)
            .flat_map(|r| message(DELAY, &delay_body(DELAYED, &payload(p, r))))
            .collect();
        peer.write(&bytes).await.unwrap();
        peers.push(peer);
    }
    let client = connect(client_config(&addr)).await;
    let metrics = server.metrics();
    let in_flight = client.request(DELAY, delay_body(DELAYED, b"client"));
    let stopping = async {
        settle("every request received", || {
            metrics.messages_received() == (PEERS * REQUESTS + 1) as u64
        })
        .await;
        let started = elapsed();
        server.stop().await;
        elapsed() - started
    };
    let reading = async move {
        for (p, mut peer) in peers.into_iter().enumerate() {
            for r in 0..REQUESTS {
                let reply = peer.read_frame().await;
                let reply = reply.unwrap_or_else(|e| panic!("reply {r} to peer {p}: {e}"));
                assert_eq!(reply.body, payload(p, r));
            }
            assert!(
                peer.closed_by_peer().await,
                "peer {p}: the end after its replies"
            );
        }
    };
    let ((reply, took), ()) = zip(zip(in_flight, stopping), reading).await;
    assert_eq!(reply.expect("the client's request is answered"), "client");
    let most = DELAYED + Duration::from_millis(50);
    assert!(took <= most, "stopped after {took:?}");
    let refused = RawSim::connect(&addr).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}

/// A connection whose request takes ten minutes does not hold the shutdown past its 5 s
/// timeout: `serve` returns then, that connection is stopped without its reply, while a
/// request that took 1 s was answered.
pub async fn shutdown_timeout_stops_a_stuck_connection() {
    let limit = Duration::from_secs(5);
    let server = start(server_config().shutdown_timeout(limit)).await;
    let mut stuck = RawSim::connect(server.addr()).unwrap();
    let stuck_body = delay_body(Duration::from_secs(600), b"never");
    stuck.write(&message(DELAY, &stuck_body)).await.unwrap();
    let mut quick = RawSim::connect(server.addr()).unwrap();
    let quick_body = delay_body(Duration::from_secs(1), b"in time");
    quick.write(&message(DELAY, &quick_body)).await.unwrap();
    let metrics = server.metrics();
    settle("both received", || metrics.messages_received() == 2).await;
    idle().await;
    let started = elapsed();
    server.stop().await;
    let took = elapsed() - started;
    assert!(
        (limit..limit + Duration::from_millis(50)).contains(&took),
        "after {took:?}"
    );
    assert_eq!(quick.read_frame().await.unwrap().body, b"in time");
    assert!(quick.is_closed());
    assert!(stuck.is_closed(), "the stuck connection is stopped");
    let reply = stuck.read_frame().await;
    assert!(
        reply.is_err(),
        "no reply on the stopped connection: {reply:?}"
    );
}
