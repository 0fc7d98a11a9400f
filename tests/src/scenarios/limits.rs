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
fn admitted<R: Runtime>(addr: SocketAddr) -> Option<RawPeer> {
    let mut peer = RawPeer::connect_for::<R>(addr).ok()?;
    served(&mut peer).then_some(peer)
}

/// With a limit of two, a third connection is refused and counted under `label`; once one
/// closes, a new one is admitted again.
fn third_refused<R: Runtime>(config: ServerConfig, label: &str) {
    let server = R::start_server(config, App::default()).expect("server");
    let addr = server.addr();
    let first = admitted::<R>(addr).expect("first admitted");
    let second = admitted::<R>(addr).expect("second admitted");
    assert!(
        admitted::<R>(addr).is_none(),
        "{}: third refused",
        R::name()
    );
    let metrics = server.metrics();
    wait_until(label, || metrics.rejected_with(label) >= 1);
    drop(first);
    let again = wait_for("a slot released by the close", || admitted::<R>(addr));
    assert_eq!(server.connection_count(), 2);
    drop((second, again));
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
    let mut peers: Vec<RawPeer> = (0..8)
        .map(|_| RawPeer::connect_for::<R>(addr).unwrap())
        .collect();
    let served_count = peers.iter_mut().map(served).filter(|&ok| ok).count();
    assert!(served_count >= 3, "{}: {served_count} served", R::name());
    assert!(served_count < 8, "{}: all eight served", R::name());
    let metrics = server.metrics();
    wait_until("rate_limited", || {
        metrics.rejected_with("rate_limited") >= 1
    });
    let later = wait_for("the bucket refills", || admitted::<R>(addr));
    drop((peers, later));
    server.stop();
}

/// Stalled large frames from one IP hold at most the frame budget: ten connections each
/// send the first 256 KiB of a frame of nearly 1 MiB and stall; with a per-IP budget of
/// 2 MiB two frames are budgeted (a frame is budgeted whole) and the other connections stop
/// reading, counted; once the stalled peers leave, every connection sees it, the memory is
/// released and a large frame is served again.
pub fn frame_budget_bounds_stalled_frames<R: Runtime>() {
    use lynn_proto::FrameBudget;

    use crate::support::counter;

    const MIB: usize = 1024 * 1024;
    let budget = FrameBudget {
        per_ip: 2 * MIB,
        total: 8 * MIB,
        ..FrameBudget::default()
    };
    let config = server_config()
        .max_frame_len(MIB as u64)
        .frame_budget(budget)
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let addr = server.addr();
    let stalled: Vec<_> = (0..10)
        .map(|_| {
            let mut peer = RawPeer::connect_for::<R>(addr).unwrap();
            let head = crate::raw::message(ECHO, &vec![1u8; MIB - 100]);
            let socket = peer.stream().try_clone().unwrap();
            // Blocks if the server stops reading; ends when the socket is shut down.
            let writing = std::thread::spawn(move || {
                let _ = peer.write(&head[..MIB / 4]);
                peer
            });
            (socket, writing)
        })
        .collect();
    let metrics = server.metrics();
    wait_until("connections stopped at the budget", || {
        counter(&metrics, "lynn_frame_budget_exceeded_total") >= 8
    });
    let held = counter(&metrics, "lynn_frame_bytes_held");
    assert!(
        held > 0 && held <= 2 * MIB as u64,
        "{}: {held} bytes held against a 2 MiB budget",
        R::name()
    );
    for (socket, writing) in stalled {
        let _ = socket.shutdown(std::net::Shutdown::Both);
        drop(writing.join().unwrap());
    }
    wait_until("the stalled frames' memory released", || {
        counter(&metrics, "lynn_frame_bytes_held") == 0 && server.connection_count() == 0
    });
    let mut peer = RawPeer::connect_for::<R>(addr).unwrap();
    let body = vec![2u8; MIB / 4];
    assert_eq!(peer.request(ECHO, &body).unwrap().body, body);
    drop(peer);
    server.stop();
}
