//! Invalid input, written raw: a bad frame closes its own connection only, after the
//! replies to what came before it; unknown kinds and methods, panics, a peer leaving
//! mid-frame, custom marks, the event stream (`crate::scenarios::{bad_frames, events,
//! marks, slow_peer}`).

use std::time::Duration;

use lynn_proto::Marks;
use lynn_proto::router::UnknownMethod;

use super::{client_config, connect, pattern, server_config, settle, start, start_app};
use crate::app::{App, ECHO, PANIC, SYNC_ECHO, SYNC_PANIC, UNROUTED};
use crate::raw::{DEFAULT_MARKS, frame, message};
use crate::sim::elapsed;
use crate::sim::raw::RawSim;
use crate::support::counter;

/// Writes a good request and `bad` in one write: the request is answered, then only this
/// connection closes, counted under `label`; a client connected before carries on.
async fn closes_after_answering(config: lynn_proto::ServerConfigBuilder, bad: &[u8], label: &str) {
    let server = start(config).await;
    let bystander = connect(client_config(server.addr())).await;
    assert_eq!(bystander.request(ECHO, "first").await.unwrap(), "first");
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let mut bytes = message(ECHO, b"before");
    bytes.extend_from_slice(bad);
    peer.write(&bytes).await.unwrap();
    let reply = peer.read_frame().await;
    let reply = reply.unwrap_or_else(|e| panic!("{label}: the frame before the bad one: {e}"));
    assert_eq!(reply.body, b"before", "{label}");
    assert!(
        peer.closed_by_peer().await,
        "{label}: the connection closes"
    );
    let metrics = server.metrics();
    settle(label, || metrics.closed_with(label) == 1).await;
    assert_eq!(bystander.request(ECHO, "second").await.unwrap(), "second");
    assert_eq!(server.handle().connection_count(), 1, "{label}");
    bystander.close().await;
    server.stop().await;
}

/// Each kind of bad frame: a wrong header mark (in a whole frame, and as soon as two bytes
/// are there), a wrong tail mark, a length below 5, a length above `max_frame_len`, and an
/// unrouted method under `UnknownMethod::Close`.
pub async fn bad_frame_closes_only_its_connection() {
    let header_only = |len: u64| [&DEFAULT_MARKS.0.to_le_bytes()[..], &len.to_le_bytes()].concat();
    let close_unknown = server_config().unknown_method(UnknownMethod::Close);
    let cases = [
        (
            server_config(),
            frame((0x0102, DEFAULT_MARKS.1), 1, ECHO, b"x"),
            "protocol_error",
        ),
        (server_config(), vec![0, 0], "protocol_error"),
        (
            server_config(),
            frame((DEFAULT_MARKS.0, 0x0102), 1, ECHO, b"x"),
            "protocol_error",
        ),
        (server_config(), header_only(4), "protocol_error"),
        (
            server_config().max_frame_len(1024),
            header_only(2000),
            "protocol_error",
        ),
        (close_unknown, message(UNROUTED, b"?"), "unknown_method"),
    ];
    for (config, bad, label) in cases {
        closes_after_answering(config, &bad, label).await;
    }
}

/// A 256 KiB request, a bad header mark, then 200 KiB more that the server never decodes,
/// all written while the peer reads: the server lingers, taking the whole flood, the reply
/// arrives whole and then the end of the stream; once the peer ends its side too, the
/// close is counted, well before the 2 s linger timeout.
pub async fn reply_survives_a_trailing_flood() {
    let server = start(server_config()).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let body = vec![7u8; 256 * 1024];
    let bytes = [message(ECHO, &body), vec![0x01, 0x02], vec![0; 200 * 1024]].concat();
    let written = peer
        .write_while_reading(&bytes)
        .await
        .expect("the end of the stream");
    assert_eq!(written, bytes.len(), "the server took the whole flood");
    let metrics = server.metrics();
    assert_eq!(counter(&metrics, "lynn_messages_invalid_total"), 1);
    let reply = peer.read_frame().await.expect("the reply arrives whole");
    assert!(reply.body == body, "the reply's {} bytes", reply.body.len());
    assert!(peer.read_bytes(1).await.is_err(), "nothing after the reply");
    let before = elapsed();
    peer.shutdown_write();
    settle("the close counted", || {
        metrics.closed_with("protocol_error") == 1
    })
    .await;
    assert!(
        elapsed() - before < Duration::from_secs(2),
        "ended by the peer, not the timeout"
    );
    assert_eq!(server.handle().connection_count(), 0);
    server.stop().await;
}

/// A frame of unknown kind and a message for an unrouted method (default policy) are
/// counted and skipped; panics in an async and in a synchronous handler complete their
/// requests with no reply and are counted; the connection carries on.
pub async fn ignored_and_contained() {
    let server = start(server_config()).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let bytes = [
        frame(DEFAULT_MARKS, 7, ECHO, b"kind 7"),
        message(UNROUTED, b"?"),
        message(PANIC, b"boom"),
        message(SYNC_PANIC, b"boom"),
        message(SYNC_ECHO, b"after"),
    ]
    .concat();
    peer.write(&bytes).await.unwrap();
    let reply = peer.read_frame().await.unwrap();
    assert_eq!((reply.method, &reply.body[..]), (SYNC_ECHO, &b"after"[..]));
    let metrics = server.metrics();
    settle("counted", || metrics.handler_failures().1 == 2).await;
    assert_eq!(counter(&metrics, "lynn_unknown_kinds_total"), 1);
    assert_eq!(counter(&metrics, "lynn_unknown_methods_total"), 1);
    assert_eq!(peer.request(ECHO, b"again").await.unwrap().body, b"again");
    assert_eq!(server.handle().connection_count(), 1);
    assert_eq!(metrics.closed_with("unknown_method"), 0);
    server.stop().await;
}

/// A peer that leaves in the middle of a frame is counted as `peer_closed_mid_frame`; the
/// server carries on.
pub async fn disconnect_mid_frame() {
    let server = start(server_config()).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    assert_eq!(peer.request(ECHO, b"whole").await.unwrap().body, b"whole");
    peer.write(&message(ECHO, &pattern(100, 3))[..40])
        .await
        .unwrap();
    drop(peer);
    let metrics = server.metrics();
    settle("peer_closed_mid_frame", || {
        metrics.closed_with("peer_closed_mid_frame") == 1
    })
    .await;
    let mut next = RawSim::connect(server.addr()).unwrap();
    assert_eq!(next.request(ECHO, b"next").await.unwrap().body, b"next");
    server.stop().await;
}

/// A server and a client with the same custom marks talk; a raw peer with them is echoed
/// with them; a raw peer with the default marks is closed as a protocol error.
pub async fn custom_marks() {
    let marks = Marks {
        header: 0x1234,
        tail: 0x5678,
    };
    let server = start(server_config().marks(marks)).await;
    let client = connect(client_config(server.addr()).marks(marks)).await;
    assert_eq!(client.request(ECHO, "marked").await.unwrap(), "marked");
    let raw_marks = (marks.header, marks.tail);
    let mut raw = RawSim::connect(server.addr())
        .unwrap()
        .with_marks(raw_marks);
    assert_eq!(raw.request(ECHO, b"raw").await.unwrap().body, b"raw");
    let mut default_peer = RawSim::connect(server.addr()).unwrap();
    default_peer
        .write(&message(ECHO, b"wrong marks"))
        .await
        .unwrap();
    assert!(
        default_peer.closed_by_peer().await,
        "default marks are refused"
    );
    let metrics = server.metrics();
    settle("protocol_error", || {
        metrics.closed_with("protocol_error") == 1
    })
    .await;
    client.close().await;
    server.stop().await;
}

/// With an event stream, a message without a route is answered from it; routed methods
/// still go to their handlers; nothing counts as an unknown method.
pub async fn event_stream_gets_unrouted() {
    let app = App::with_event_stream();
    let server = start_app(server_config(), app).await;
    let mut peer = RawSim::connect(server.addr()).unwrap();
    let reply = peer
        .request(UNROUTED, b"via events")
        .await
        .expect("answered");
    assert_eq!(
        (reply.method, reply.body),
        (UNROUTED, app.event_reply(b"via events").to_vec())
    );
    assert_eq!(peer.request(ECHO, b"routed").await.unwrap().body, b"routed");
    let reply = peer
        .request(UNROUTED + 1, b"again")
        .await
        .expect("answered");
    assert_eq!(reply.body, app.event_reply(b"again"));
    assert_eq!(counter(&server.metrics(), "lynn_unknown_methods_total"), 0);
    server.stop().await;
}
