//! Graceful shutdown with requests in flight.

use std::time::Duration;

use crate::app::{self, App, DELAY};
use crate::raw::{RawPeer, message};
use crate::runtime::{Runtime, ServerUnderTest};
use crate::support::{counter, server_config, wait_until};

const PEERS: usize = 3;
const REQUESTS: usize = 4;

/// Three peers each have four 300 ms requests in flight when the server is shut down:
/// every request is answered, in order, before the connection closes, and the server
/// accepts nobody afterwards.
pub fn graceful_shutdown_answers_in_flight<R: Runtime>() {
    let config = server_config().build().unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let addr = server.addr();
    let payload = |p: usize, r: usize| format!("peer {p} request {r}").into_bytes();
    let mut peers: Vec<RawPeer> = (0..PEERS)
        .map(|p| {
            let mut peer = RawPeer::connect_for::<R>(addr).unwrap();
            peer.set_read_timeout(Duration::from_secs(20)).unwrap();
            let bytes: Vec<u8> = (0..REQUESTS)
                .flat_map(|r| {
                    message(
                        DELAY,
                        &app::delay_body(Duration::from_millis(300), &payload(p, r)),
                    )
                })
                .collect();
            peer.write(&bytes).unwrap();
            peer
        })
        .collect();
    let metrics = server.metrics();
    wait_until("every request received", || {
        counter(&metrics, "lynn_messages_received_total") == (PEERS * REQUESTS) as u64
    });
    server.stop();
    for (p, peer) in peers.iter_mut().enumerate() {
        for r in 0..REQUESTS {
            let reply = peer
                .read_frame()
                .unwrap_or_else(|e| panic!("{}: reply {r} to peer {p}: {e}", R::name()));
            assert_eq!(reply.body, payload(p, r));
        }
        assert!(peer.closed_by_peer(), "peer {p} closed after its replies");
    }
    assert!(
        RawPeer::connect_for::<R>(addr).map_or(true, |mut p| p.closed_by_peer()),
        "no connection accepted after shutdown"
    );
}
