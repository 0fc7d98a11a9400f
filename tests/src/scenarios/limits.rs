//! Admission: max connections, per-IP limit, connection rate; slots come back on close.

use std::net::SocketAddr;

use lynn_proto::ServerConfig;

use crate::app::{App, ECHO};
use crate::raw::RawPeer;
use crate::runtime::{Runtime, ServerUnderTest};
use crate::support::{server_config, wait_for, wait_until};

/// Whether `peer` is served: an echo round trip succeeds (a refused connection is closed
/// by the server at once, so the read fails).
fn served(peer: &mut RawPeer) -> bool {
    matches!(peer.request(ECHO, b"admitted?"), Ok(f) if f.body == b"admitted?")
}

/// A connection to `addr` if the server serves it.
fn admitted(addr: SocketAddr) -> Option<RawPeer> {
    let mut peer = RawPeer::connect(addr).ok()?;
    served(&mut peer).then_some(peer)
}

/// With a limit of two, a third connection is refused and counted under `label`; once one
/// closes, a new one is admitted again.
fn third_refused<R: Runtime>(config: ServerConfig, label: &str) {
    let server = R::start_server(config, App::default()).expect("server");
    let addr = server.addr();
    let first = admitted(addr).expect("first admitted");
    let _second = admitted(addr).expect("second admitted");
    assert!(admitted(addr).is_none(), "{}: third refused", R::name());
    let metrics = server.metrics();
    wait_until(label, || metrics.rejected_with(label) >= 1);
    drop(first);
    let _again = wait_for("a slot released by the close", || admitted(addr));
    assert_eq!(server.connection_count(), 2);
    server.stop();
}

/// `max_connections(2)`.
pub fn max_connections<R: Runtime>() {
    let config = server_config().max_connections(2).build().unwrap();
    third_refused::<R>(config, "max_connections");
}

/// `max_connections_per_ip(2)` (every test peer is 127.0.0.1).
pub fn per_ip_limit<R: Runtime>() {
    let config = server_config().max_connections_per_ip(2).build().unwrap();
    third_refused::<R>(config, "max_per_ip");
}

/// `connection_rate(3)`: of eight connections opened back to back, at least three are
/// admitted and at least one refused (`rate_limited`); later the bucket refills.
pub fn connection_rate_limit<R: Runtime>() {
    let config = server_config().connection_rate(3).build().unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let addr = server.addr();
    let mut peers: Vec<RawPeer> = (0..8).map(|_| RawPeer::connect(addr).unwrap()).collect();
    let served_count = peers.iter_mut().map(served).filter(|&ok| ok).count();
    assert!(served_count >= 3, "{}: {served_count} served", R::name());
    assert!(served_count < 8, "{}: all eight served", R::name());
    let metrics = server.metrics();
    wait_until("rate_limited", || {
        metrics.rejected_with("rate_limited") >= 1
    });
    let _later = wait_for("the bucket refills", || admitted(addr));
    server.stop();
}
