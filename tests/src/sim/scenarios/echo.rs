//! Echo through async and synchronous routes: bodies up to 1 MiB from the shared client,
//! and raw frames coalesced, split byte by byte, or interleaved between connections
//! (`crate::scenarios::{echo, framing, sync_routes}`).

use std::time::Duration;

use lynn_proto::ClientError;

use super::{client_config, connect, pattern, server_config, settle, start};
use crate::app::{DELAY, ECHO, SYNC_ECHO, delay_body};
use crate::raw::{SAMPLE_HEARTBEAT, SAMPLE_HELLO, message};
use crate::sim::idle;
use crate::sim::raw::RawSim;

/// Bodies of 0 bytes to 1 MiB come back byte for byte from [`ECHO`] and [`SYNC_ECHO`], in
/// either correlation mode; a body over the frame limit is refused by the client, which
/// carries on.
pub async fn echo_all_sizes(ids: bool) {
    const LIMIT: u64 = 2 << 20;
    let server = start(server_config().max_frame_len(LIMIT)).await;
    let client = connect(
        client_config(server.addr())
            .max_frame_len(LIMIT)
            .correlation_ids(ids),
    )
    .await;
    for method in [ECHO, SYNC_ECHO] {
        for (i, len) in [0, 1, 127, 128, 4 << 10, 64 << 10, 1 << 20]
            .into_iter()
            .enumerate()
        {
            let body = pattern(len, i as u8);
            let reply = client.request(method, body.clone()).await;
            let reply = reply.unwrap_or_else(|e| panic!("method {method}, {len} bytes: {e}"));
            assert!(reply == body, "method {method}: echo of {len} bytes");
        }
    }
    let too_big = vec![0u8; LIMIT as usize];
    let refused = client.request(ECHO, too_big).await;
    assert!(
        matches!(refused, Err(ClientError::Encode(_))),
        "{refused:?}"
    );
    assert_eq!(
        client.request(ECHO, "still fine").await.unwrap(),
        "still fine"
    );
    client.close().await;
    server.stop().await;
}

/// 200 requests in one write (the reads split them where the seed says), most through the
/// synchronous route, some async ([`ECHO`]) and some slow ([`DELAY`]): every reply comes,
/// in request order.
pub async fn many_small_frames() {
    let server = start(server_config()).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for n in 0..200u16 {
        let payload = n.to_le_bytes().to_vec();
        let (method, body) = match n {
            _ if n % 50 == 0 => (
                DELAY,
                delay_body(Duration::from_millis(20), &payload).to_vec(),
            ),
            _ if n % 7 == 0 => (ECHO, payload.clone()),
            _ => (SYNC_ECHO, payload.clone()),
        };
        bytes.extend(message(method, &body));
        expected.push((method, payload));
    }
    peer.write(&bytes).await.unwrap();
    for (i, (method, body)) in expected.into_iter().enumerate() {
        let reply = peer
            .read_frame()
            .await
            .unwrap_or_else(|e| panic!("reply {i}: {e}"));
        assert_eq!(
            (reply.kind, reply.method, reply.body),
            (1, method, body),
            "reply {i}"
        );
    }
    server.stop().await;
}

/// The DESIGN.md samples, a heartbeat then `hello`, written one byte at a time with the
/// server running in between (so it reads them byte by byte): `hello` comes back exactly.
/// Then two frames the same way, the first 300 bytes long.
pub async fn bytewise_frames() {
    let server = start(server_config()).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let mut bytes = SAMPLE_HEARTBEAT.to_vec();
    bytes.extend_from_slice(SAMPLE_HELLO);
    for b in &bytes {
        peer.write(std::slice::from_ref(b)).await.unwrap();
        idle().await;
    }
    assert_eq!(
        peer.read_bytes(SAMPLE_HELLO.len()).await.unwrap(),
        SAMPLE_HELLO
    );
    let first = pattern(300, 1);
    let bytes = [message(SYNC_ECHO, &first), message(ECHO, b"")].concat();
    for b in &bytes {
        peer.write(std::slice::from_ref(b)).await.unwrap();
        idle().await;
    }
    assert_eq!(peer.read_frame().await.unwrap().body, first);
    assert_eq!(peer.read_frame().await.unwrap().body, b"");
    server.stop().await;
}

/// Eight connections send their frames in 7-byte pieces, taking turns, the server running
/// between turns, so that each holds a partial frame while the others are read and
/// answered: every reply is its own connection's, whole.
pub async fn interleaved_partial_frames() {
    let server = start(server_config()).await;
    let mut peers: Vec<RawSim> = (0..8)
        .map(|_| RawSim::connect(server.addr()).unwrap())
        .collect();
    let bodies: Vec<Vec<u8>> = (0..8).map(|i| pattern(100 + 37 * i, i as u8)).collect();
    let streams: Vec<Vec<u8>> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let method = if i % 2 == 0 { ECHO } else { SYNC_ECHO };
            [message(method, body), message(method, b"")].concat()
        })
        .collect();
    let longest = streams.iter().map(Vec::len).max().unwrap();
    for at in (0..longest).step_by(7) {
        for (peer, stream) in peers.iter_mut().zip(&streams) {
            if at < stream.len() {
                peer.write(&stream[at..(at + 7).min(stream.len())])
                    .await
                    .unwrap();
            }
        }
        idle().await;
    }
    for (i, (peer, body)) in peers.iter_mut().zip(&bodies).enumerate() {
        assert_eq!(
            &peer.read_frame().await.unwrap().body,
            body,
            "connection {i}"
        );
        assert_eq!(peer.read_frame().await.unwrap().body, b"", "connection {i}");
    }
    server.stop().await;
}

/// 1,000 connections, each with 3 pipelined requests written before any reply is read:
/// every reply arrives, whole and in order; once they leave, every connection is counted
/// closed.
pub async fn thousand_connections() {
    const CONNECTIONS: usize = 1_000;
    let server = start(server_config().max_connections_per_ip(2 * CONNECTIONS)).await;
    let body = |c: usize, r: usize| format!("c{c} r{r}").into_bytes();
    let mut peers = Vec::new();
    for c in 0..CONNECTIONS {
        let mut peer = RawSim::connect(server.addr()).unwrap();
        let method = if c % 2 == 0 { ECHO } else { SYNC_ECHO };
        let bytes: Vec<u8> = (0..3).flat_map(|r| message(method, &body(c, r))).collect();
        peer.write(&bytes).await.unwrap();
        peers.push(peer);
    }
    for (c, peer) in peers.iter_mut().enumerate() {
        for r in 0..3 {
            let reply = peer.read_frame().await;
            let reply = reply.unwrap_or_else(|e| panic!("reply {r} of connection {c}: {e}"));
            assert_eq!(reply.body, body(c, r), "reply {r} of connection {c}");
        }
    }
    let metrics = server.metrics();
    assert_eq!(metrics.active_connections(), CONNECTIONS as i64);
    drop(peers);
    settle("every connection counted closed", || {
        metrics.active_connections() == 0 && server.handle().connection_count() == 0
    })
    .await;
    assert_eq!(metrics.closed_with("peer_closed"), CONNECTIONS as u64);
    server.stop().await;
}

/// 1,000 connects before the server accepts any: the listen backlog (by default at least
/// 1,024) queues them all, and every one is served. With `listen_backlog(16)`, of 20
/// connects made before the server accepts, the 4 beyond the backlog are refused.
pub async fn connect_burst() {
    const CONNECTIONS: usize = 1_000;
    let server = start(server_config().max_connections_per_ip(2 * CONNECTIONS)).await;
    // No await between the connects: the accept loop does not run meanwhile.
    let peers: Vec<RawSim> = (0..CONNECTIONS)
        .map(|c| RawSim::connect(server.addr()).unwrap_or_else(|e| panic!("connect {c}: {e}")))
        .collect();
    for (c, mut peer) in peers.into_iter().enumerate() {
        let body = format!("c{c}").into_bytes();
        assert_eq!(peer.request(ECHO, &body).await.expect("served").body, body);
    }
    server.stop().await;
    let server = start(server_config().listen_backlog(16)).await;
    let tries: Vec<_> = (0..20).map(|_| RawSim::connect(server.addr())).collect();
    let refused = tries.iter().filter(|t| t.is_err()).count();
    assert_eq!(refused, 4, "the connects beyond the backlog");
    for mut peer in tries.into_iter().flatten() {
        assert_eq!(
            peer.request(ECHO, b"queued").await.expect("served").body,
            b"queued"
        );
    }
    server.stop().await;
}
