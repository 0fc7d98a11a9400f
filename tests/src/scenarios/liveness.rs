//! Heartbeat (idle) eviction, its absence under traffic or heartbeats, and the read timeout
//! of a stalled partial frame.

use std::time::{Duration, Instant};

use crate::app::{App, ECHO};
use crate::raw::{RawPeer, SAMPLE_HEARTBEAT, message};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{client_config, counter, server_config, wait_until};

/// A silent peer is closed after the 300 ms heartbeat timeout (not before), counted as
/// `idle_timeout`.
pub fn idle_peer_evicted<R: Runtime>() {
    let timeout = Duration::from_millis(300);
    let config = server_config()
        .heartbeat_timeout(Some(timeout))
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let started = Instant::now();
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    peer.set_read_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        peer.closed_by_peer(),
        "{}: the silent peer is evicted",
        R::name()
    );
    assert!(
        started.elapsed() >= timeout - Duration::from_millis(50),
        "evicted after {:?}, before the timeout",
        started.elapsed()
    );
    let metrics = server.metrics();
    wait_until("idle_timeout counted", || {
        metrics.closed_with("idle_timeout") == 1
    });
    server.stop();
}

/// A peer that sends a heartbeat or a request every 100 ms outlives a 600 ms heartbeat
/// timeout several times over.
pub fn traffic_keeps_peer_alive<R: Runtime>() {
    let config = server_config()
        .heartbeat_timeout(Some(Duration::from_millis(600)))
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let started = Instant::now();
    let mut i = 0u32;
    while started.elapsed() < Duration::from_millis(1800) {
        // The traffic pattern under test, not a synchronisation stand-in.
        std::thread::sleep(Duration::from_millis(100));
        if i % 2 == 0 {
            peer.write(SAMPLE_HEARTBEAT).unwrap();
        } else {
            let body = i.to_le_bytes();
            assert_eq!(
                peer.request(ECHO, &body).expect("still connected").body,
                body
            );
        }
        i += 1;
    }
    let metrics = server.metrics();
    assert_eq!(metrics.closed_with("idle_timeout"), 0);
    assert!(counter(&metrics, "lynn_heartbeats_received_total") > 0);
    assert_eq!(server.connection_count(), 1);
    drop(peer);
    server.stop();
}

/// A frame that stops halfway is closed after the 300 ms read timeout, counted as
/// `read_timeout`; an idle connection with no partial frame is not affected.
pub fn stalled_partial_frame_times_out<R: Runtime>() {
    let config = server_config()
        .read_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let mut idle = RawPeer::connect_for::<R>(server.addr()).unwrap();
    assert_eq!(idle.request(ECHO, b"idle").unwrap().body, b"idle");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    peer.set_read_timeout(Duration::from_secs(20)).unwrap();
    let started = Instant::now();
    peer.write(&message(ECHO, b"stalled frame")[..12]).unwrap();
    assert!(
        peer.closed_by_peer(),
        "{}: the stalled frame closes",
        R::name()
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    let metrics = server.metrics();
    wait_until("read_timeout counted", || {
        metrics.closed_with("read_timeout") == 1
    });
    assert_eq!(idle.request(ECHO, b"still").unwrap().body, b"still");
    drop((peer, idle));
    server.stop();
}

/// A client sending heartbeats every 100 ms stays connected to a server with a 500 ms
/// heartbeat timeout while it sends nothing else: the server counts its heartbeats, evicts
/// no one, and a request afterwards works.
pub fn client_heartbeats_keep_connection<C: Runtime, S: Runtime>() {
    let config = server_config()
        .heartbeat_timeout(Some(Duration::from_millis(500)))
        .build()
        .unwrap();
    let server = S::start_server(config, App::default()).expect("server");
    let client = C::connect(
        client_config(server.addr())
            .heartbeat_interval(Some(Duration::from_millis(100)))
            .build()
            .unwrap(),
    )
    .expect("client connects");
    let metrics = server.metrics();
    // Eight heartbeats take at least 800 ms, longer than the timeout.
    wait_until("eight heartbeats", || {
        counter(&metrics, "lynn_heartbeats_received_total") >= 8
    });
    assert_eq!(metrics.closed_with("idle_timeout"), 0, "nobody evicted");
    assert!(client.is_connected());
    assert_eq!(&client.request(ECHO, "alive".into()).unwrap()[..], b"alive");
    client.close();
    server.stop();
}
