//! Peers that do not keep up: one that never reads, one that leaves mid-frame.

use std::time::Duration;

use crate::app::{App, ECHO};
use crate::raw::{RawPeer, message};
use crate::runtime::{Runtime, ServerUnderTest};
use crate::support::{counter, pattern, server_config, wait_for, wait_until};

/// What the never-reading peer may write before it must have been pushed back.
const WRITE_CAP: usize = 64 << 20;
/// What the server may have read from it: kernel buffers, the send queue, requests in
/// flight and queued events, with room to spare.
const READ_BOUND: u64 = 32 << 20;

/// A peer that sends 64 KiB echo requests and never reads the replies: the server stops
/// reading from it (its writes stall long before 64 MiB, the server's bytes_received
/// plateaus below 32 MiB), and another connection is served meanwhile.
pub fn reader_that_never_reads<R: Runtime>() {
    let config = server_config()
        .send_queue_limit(64 << 10)
        .recv_buffer_size(64 << 10)
        .send_buffer_size(64 << 10)
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let mut hog = RawPeer::connect_for::<R>(server.addr()).unwrap();
    hog.set_write_timeout(Duration::from_millis(500)).unwrap();
    let request = message(ECHO, &pattern(64 << 10, 7));
    let mut written = 0;
    while written < WRITE_CAP {
        match hog.write_some(&request) {
            Ok(n) => written += n,
            Err(_) => break, // stalled: the server stopped reading
        }
    }
    assert!(written < WRITE_CAP, "{}: never pushed back", R::name());
    let metrics = server.metrics();
    let mut last = u64::MAX;
    let plateau = wait_for("bytes_received to plateau", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = counter(&metrics, "lynn_network_bytes_received_total");
        let stable = now == last;
        last = now;
        stable.then_some(now)
    });
    assert!(plateau < READ_BOUND, "{}: read {plateau} bytes", R::name());
    let mut other = RawPeer::connect_for::<R>(server.addr()).unwrap();
    assert_eq!(
        other.request(ECHO, b"unaffected").unwrap().body,
        b"unaffected"
    );
    drop(hog);
    drop(other);
    server.stop();
}

/// Pushes to a peer that does not read fill the kernel buffers, its send queue and then
/// its outbound queue (`outbound_queue` commands): from then on a broadcast is refused
/// (counted 0). Once the peer reads, every accepted push arrives.
pub fn pushes_refused_at_the_outbound_bound<R: Runtime>() {
    const BODY: usize = 16 << 10;
    let config = server_config()
        .send_queue_limit(64 << 10)
        .send_buffer_size(64 << 10)
        .outbound_queue(4)
        .build()
        .unwrap();
    let server = R::start_server(config, App::default()).expect("server");
    let mut slow = RawPeer::connect_for::<R>(server.addr()).unwrap();
    wait_until("connected", || server.connection_count() == 1);
    // Kernel buffers (a few MiB on loopback), the 64 KiB send queue and 4 commands hold far
    // fewer than 2,000 pushes of 16 KiB. The connection takes commands between pushes, so
    // a refusal counts once it holds for 20 tries in a row.
    let (mut accepted, mut refused_in_a_row) = (0, 0);
    while refused_in_a_row < 20 {
        assert!(
            accepted < 2000,
            "{}: {accepted} pushes, none refused",
            R::name()
        );
        if server.broadcast(ECHO, pattern(BODY, 3).into()) == 1 {
            accepted += 1;
            refused_in_a_row = 0;
        } else {
            refused_in_a_row += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for i in 0..accepted {
        let pushed = slow.read_frame().unwrap();
        assert_eq!(pushed.body.len(), BODY, "{}: push {i}", R::name());
    }
    drop(slow);
    server.stop();
}

/// A peer that closes in the middle of a frame is counted as `peer_closed_mid_frame`; the
/// server carries on.
pub fn disconnect_mid_frame<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    assert_eq!(peer.request(ECHO, b"whole").unwrap().body, b"whole");
    peer.write(&message(ECHO, &pattern(100, 3))[..40]).unwrap();
    drop(peer);
    let metrics = server.metrics();
    wait_until("peer_closed_mid_frame", || {
        metrics.closed_with("peer_closed_mid_frame") == 1
    });
    let mut next = RawPeer::connect_for::<R>(server.addr()).unwrap();
    assert_eq!(next.request(ECHO, b"next").unwrap().body, b"next");
    drop(next);
    server.stop();
}
