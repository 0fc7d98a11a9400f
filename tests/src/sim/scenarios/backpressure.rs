//! Peers that do not keep up: a client that does not read its pushes (the server's
//! outbound queue fills), a raw peer that does not read its replies (the server stops
//! reading it), and a server that does not read (the client's send queue fills)
//! (`crate::scenarios::{slow_peer, backpressure}`).

use std::future::poll_fn;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::future::zip;
use lynn_proto::{ClientError, Endpoint, FrameBudget, PushFull};
use lynn_service::{Listener, Runtime, Transport};

use super::{client_config, connect, pattern, recv_within, server_config, settle, start};
use crate::app::{ECHO, PUSH};
use crate::raw::message;
use crate::sim::raw::RawSim;
use crate::sim::{SimRuntime, elapsed, idle, sleep, timeout};
use crate::support::counter;

const BODY: usize = 16 << 10;

/// A push of [`BODY`] bytes starting with its sequence number.
fn numbered(seq: u32) -> Vec<u8> {
    let mut body = pattern(BODY, seq as u8);
    body[..4].copy_from_slice(&seq.to_le_bytes());
    body
}

/// A client whose push queue (4, `PushFull::Wait`) is full stops reading (once 64 more
/// wait decoded in its connection). Pushes from the server handle fill all that, the
/// stream, the connection's 64 KiB send queue and its outbound queue (4 commands): from
/// then on a broadcast is refused (counted 0, and in `lynn_send_queue_full_total`) however
/// long the world runs. Once the client reads,
/// every accepted push arrives, in order, and no refused one; broadcasts are accepted
/// again.
pub async fn outbound_queue_full() {
    let server = start(server_config().send_queue_limit(64 << 10).outbound_queue(4)).await;
    let client = connect(
        client_config(server.addr())
            .incoming_queue(4)
            .push_full(PushFull::Wait),
    )
    .await;
    let handle = server.handle();
    let mut accepted = Vec::new();
    for seq in 0.. {
        assert!(seq < 1000, "{seq} pushes, none refused");
        idle().await;
        if handle.broadcast(PUSH, numbered(seq)) == 0 {
            break;
        }
        accepted.push(seq);
    }
    // The bound holds however long the world runs.
    sleep(Duration::from_secs(10)).await;
    assert_eq!(handle.broadcast(PUSH, numbered(u32::MAX)), 0, "still full");
    let n = accepted.len();
    // 4 + 1 held by the client, 64 decoded events, 4 in the stream, 4 in the send queue, 4
    // commands: 81, give or take a frame split across a buffer.
    assert!((75..=85).contains(&n), "{n} pushes of 16 KiB accepted");
    assert!(counter(&server.metrics(), "lynn_send_queue_full_total") >= 2);
    for &seq in &accepted {
        let push = recv_within(&client, Duration::from_secs(5)).await;
        let push = push.unwrap_or_else(|| panic!("push {seq} of {n} lost"));
        assert_eq!(push.body.len(), BODY);
        assert_eq!(push.body[..4], seq.to_le_bytes(), "pushes in order");
    }
    assert!(
        recv_within(&client, Duration::from_millis(100))
            .await
            .is_none()
    );
    assert_eq!(handle.broadcast(PUSH, numbered(7)), 1, "room again");
    let push = recv_within(&client, Duration::from_secs(5))
        .await
        .expect("push");
    assert_eq!(push.body[..4], 7u32.to_le_bytes());
    client.close().await;
    server.stop().await;
}

/// A peer that sends 64 KiB echo requests and never reads the replies: its writes stall
/// long before 64 MiB, the server's `bytes_received` stays put below 32 MiB, and another
/// connection is served meanwhile. Once its replies have made no progress for the 60 s
/// write timeout, the server closes it (`write_timeout`).
pub async fn reader_that_never_reads() {
    let server = start(server_config().send_queue_limit(64 << 10)).await;
    let mut hog = RawSim::connect(server.addr()).unwrap();
    let request = message(ECHO, &pattern(64 << 10, 7));
    let mut written = 0;
    while written < 64 << 20 {
        match timeout(Duration::from_secs(1), hog.write(&request)).await {
            Some(res) => res.unwrap(),
            None => break, // stalled: the server stopped reading
        }
        written += request.len();
    }
    assert!(written < 64 << 20, "never pushed back");
    // The last write that made progress.
    let stalled_at = elapsed() - Duration::from_secs(1);
    let metrics = server.metrics();
    let plateau = counter(&metrics, "lynn_network_bytes_received_total");
    sleep(Duration::from_secs(30)).await;
    assert_eq!(
        counter(&metrics, "lynn_network_bytes_received_total"),
        plateau
    );
    assert!(plateau < 32 << 20, "read {plateau} bytes");
    let mut other = RawSim::connect(server.addr()).unwrap();
    assert_eq!(
        other.request(ECHO, b"unaffected").await.unwrap().body,
        b"unaffected"
    );
    assert_eq!(metrics.closed_with("write_timeout"), 0, "not yet");
    settle("write_timeout", || {
        metrics.closed_with("write_timeout") == 1
    })
    .await;
    let after = elapsed() - stalled_at;
    assert!(
        after >= Duration::from_secs(60),
        "closed {after:?} after the stall"
    );
    assert!(hog.closed_by_peer().await);
    server.stop().await;
}

/// Stalled large frames from one IP hold at most the frame budget: ten connections each
/// send the first 256 KiB of a frame of nearly 1 MiB and stall; with a per-IP budget of
/// 2 MiB two frames are budgeted (a frame is budgeted whole) and the other connections stop
/// reading, counted; once the stalled peers leave, the memory is released and a large
/// frame is served again.
pub async fn frame_budget_bounds_stalled_frames() {
    const MIB: usize = 1 << 20;
    let budget = FrameBudget {
        per_ip: 2 * MIB,
        total: 8 * MIB,
        ..FrameBudget::default()
    };
    let config = server_config()
        .max_frame_len(MIB as u64)
        .frame_budget(budget);
    let server = start(config).await;
    let head = message(ECHO, &vec![1u8; MIB - 100]);
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut peer = RawSim::connect(server.addr()).unwrap();
        // Left where it stalls once the server stops reading.
        let _ = timeout(Duration::from_secs(1), peer.write(&head[..MIB / 4])).await;
        stalled.push(peer);
    }
    let metrics = server.metrics();
    settle("connections stopped at the budget", || {
        counter(&metrics, "lynn_frame_budget_exceeded_total") >= 8
    })
    .await;
    let held = counter(&metrics, "lynn_frame_bytes_held");
    assert!(
        held > 0 && held <= 2 * MIB as u64,
        "{held} bytes held against a 2 MiB budget"
    );
    drop(stalled);
    settle("the stalled frames' memory released", || {
        counter(&metrics, "lynn_frame_bytes_held") == 0 && server.handle().connection_count() == 0
    })
    .await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let body = vec![2u8; MIB / 4];
    assert_eq!(peer.request(ECHO, &body).await.unwrap().body, body);
    server.stop().await;
}

/// Against a listener that accepts and does not read, `try_send` of 16 KiB bodies fails
/// with `QueueFull` before 64 MiB; a `send` made then waits until the peer reads (1 s of
/// virtual time later); `try_send` works again; every byte accepted arrives, once.
pub async fn client_backpressure() {
    let listener = SimRuntime
        .bind(Endpoint::Tcp(super::SERVER_ADDR.into()), 16)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = client_config(&addr)
        .send_queue_limit(64 << 10)
        .heartbeat_interval(None);
    let client = connect(config).await;
    let (mut socket, _) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
    let body = pattern(BODY, 7);
    let mut accepted = 0usize;
    loop {
        match client.try_send(ECHO, body.clone()).await {
            Ok(()) => accepted += 1,
            Err(ClientError::QueueFull) => break,
            Err(e) => panic!("try_send failed with {e}"),
        }
        assert!(accepted * BODY < 64 << 20, "the queue never filled");
    }
    let reads_from = elapsed() + Duration::from_secs(1);
    let reader = async {
        sleep(Duration::from_secs(1)).await;
        let mut total = 0;
        loop {
            let mut buf = BytesMut::new();
            match poll_fn(|cx| socket.poll_read(cx, &mut buf)).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    };
    let writer = async {
        client
            .send(ECHO, body.clone())
            .await
            .expect("send completes");
        let sent_at = elapsed();
        while let Err(e) = client.try_send(ECHO, body.clone()).await {
            assert!(matches!(e, ClientError::QueueFull), "{e}");
            sleep(Duration::from_millis(1)).await;
        }
        client.close().await;
        sent_at
    };
    let (received, sent_at) = zip(reader, writer).await;
    assert!(
        sent_at >= reads_from,
        "send waited for the reader: {sent_at:?}"
    );
    assert_eq!(received, (accepted + 2) * (BODY + 15), "bytes on the wire");
}
