//! Many connections at once.

use std::time::Duration;

use crate::app::{App, ECHO};
use crate::raw::{RawPeer, message};
use crate::runtime::{Runtime, ServerUnderTest};
use crate::support::{server_config, wait_until};

/// Connections in the load scenario.
pub const CONNECTIONS: usize = 1_000;
/// Threads driving them (each drives `CONNECTIONS / THREADS` raw sockets).
const THREADS: usize = 4;
/// Pipelined requests per connection.
const REQUESTS: usize = 3;

/// 1,000 connections, each with 3 pipelined requests: every reply arrives, complete and in
/// order; afterwards every connection is counted closed.
pub fn thousand_connections<R: Runtime>() {
    let config = server_config()
        .max_connections_per_ip(2 * CONNECTIONS)
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let addr = server.addr();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let body = |c: usize, r: usize| format!("t{t} c{c} r{r}").into_bytes();
                let mut peers = Vec::new();
                for c in 0..CONNECTIONS / THREADS {
                    let mut peer = RawPeer::connect_for::<R>(addr).expect("connect");
                    peer.set_read_timeout(Duration::from_secs(30)).unwrap();
                    let bytes: Vec<u8> = (0..REQUESTS)
                        .flat_map(|r| message(ECHO, &body(c, r)))
                        .collect();
                    peer.write(&bytes).expect("write requests");
                    peers.push(peer);
                }
                for (c, peer) in peers.iter_mut().enumerate() {
                    for r in 0..REQUESTS {
                        let reply = peer.read_frame().expect("a reply");
                        assert_eq!(reply.body, body(c, r), "reply {r} of connection {c}");
                    }
                }
                peers.len()
            })
        })
        .collect();
    let answered: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(answered, CONNECTIONS);
    wait_until("every connection counted closed", || {
        server.metrics().active_connections() == 0 && server.connection_count() == 0
    });
    server.stop();
}

/// Threads that connect at the same instant in [`connect_burst`].
const BURST_THREADS: usize = 50;

/// 1,000 connects at once (50 threads released together, 20 connects each, before any is
/// accepted): the listen backlog queues them all, none is reset, and every one is served.
pub fn connect_burst<R: Runtime>() {
    let config = server_config()
        .max_connections_per_ip(2 * CONNECTIONS)
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let addr = server.addr();
    let start = std::sync::Arc::new(std::sync::Barrier::new(BURST_THREADS));
    let workers: Vec<_> = (0..BURST_THREADS)
        .map(|t| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let peers: Vec<RawPeer> = (0..CONNECTIONS / BURST_THREADS)
                    .map(|_| RawPeer::connect_for::<R>(addr).expect("connect"))
                    .collect();
                for (c, mut peer) in peers.into_iter().enumerate() {
                    peer.set_read_timeout(Duration::from_secs(30)).unwrap();
                    let body = format!("t{t} c{c}").into_bytes();
                    let reply = peer.request(ECHO, &body).expect("served, not reset");
                    assert_eq!(reply.body, body);
                }
                CONNECTIONS / BURST_THREADS
            })
        })
        .collect();
    let served: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(served, CONNECTIONS);
    server.stop();
}
