//! Invalid input: each bad frame closes its own connection only, after answering what came
//! before it; unknown kinds and methods are counted.

use lynn_proto::ServerConfig;
use lynn_proto::router::UnknownMethod;

use crate::app::{App, ECHO, PANIC, UNROUTED};
use crate::raw::{DEFAULT_MARKS, RawPeer, frame, message};
use crate::runtime::{Runtime, ServerUnderTest};
use crate::support::{counter, server_config, wait_until};

/// Writes a good request and `bad` in one write: the request is answered, then only this
/// connection closes, counted under `label`; a bystander connection carries on.
fn closes_after_answering<R: Runtime>(config: ServerConfig, bad: &[u8], label: &str) {
    let server = R::start_server(config, App::default()).expect("server");
    let mut bystander = RawPeer::connect_for::<R>(server.addr()).unwrap();
    assert_eq!(bystander.request(ECHO, b"first").unwrap().body, b"first");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let mut bytes = message(ECHO, b"before");
    bytes.extend_from_slice(bad);
    peer.write(&bytes).unwrap();
    let reply = peer
        .read_frame()
        .expect("the frame before the bad one is answered");
    assert_eq!(reply.body, b"before");
    assert!(
        peer.closed_by_peer(),
        "{}: the connection closes",
        R::name()
    );
    let metrics = server.metrics();
    wait_until(label, || metrics.closed_with(label) == 1);
    assert_eq!(bystander.request(ECHO, b"second").unwrap().body, b"second");
    assert_eq!(server.connection_count(), 1);
    drop((peer, bystander));
    server.stop();
}

/// A wrong header mark.
pub fn invalid_header<R: Runtime>() {
    let bad = frame((0x0102, DEFAULT_MARKS.1), 1, ECHO, b"x");
    closes_after_answering::<R>(server_config().build().unwrap(), &bad, "protocol_error");
    let bad = &[0x00, 0x00]; // wrong as soon as two bytes are present
    closes_after_answering::<R>(server_config().build().unwrap(), bad, "protocol_error");
}

/// A wrong tail mark.
pub fn invalid_tail<R: Runtime>() {
    let bad = frame((DEFAULT_MARKS.0, 0x0102), 1, ECHO, b"x");
    closes_after_answering::<R>(server_config().build().unwrap(), &bad, "protocol_error");
}

/// A length field below 5 (only the 10 header bytes are sent).
pub fn length_below_minimum<R: Runtime>() {
    let mut bad = DEFAULT_MARKS.0.to_le_bytes().to_vec();
    bad.extend_from_slice(&4u64.to_le_bytes());
    closes_after_answering::<R>(server_config().build().unwrap(), &bad, "protocol_error");
}

/// A length field above `max_frame_len` (only the 10 header bytes are sent).
pub fn length_above_limit<R: Runtime>() {
    let mut bad = DEFAULT_MARKS.0.to_le_bytes().to_vec();
    bad.extend_from_slice(&2000u64.to_le_bytes());
    let config = server_config().max_frame_len(1024).build().unwrap();
    closes_after_answering::<R>(config, &bad, "protocol_error");
}

/// A 256 KiB request, a bad header mark, then 200 KiB more that the server never decodes,
/// all written before the peer reads anything: the reply still arrives whole and the
/// connection ends with the end of the stream, not a reset (the server lingers, reading and
/// discarding, instead of closing a socket with unread input, which makes the kernel reset
/// the connection and the peer's kernel drop the reply it has not read yet).
pub fn reply_survives_a_trailing_flood<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let body = vec![7u8; 256 * 1024];
    let mut bytes = message(ECHO, &body);
    bytes.extend_from_slice(&[0x01, 0x02]);
    bytes.extend_from_slice(&vec![0u8; 200 * 1024]);
    // From a thread of its own: the flood fits no socket buffer until the server reads it.
    let mut writer = peer.stream().try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        use std::io::Write;
        // Fails once the server closes, if it closes before taking it all.
        let _ = writer.write_all(&bytes);
    });
    let metrics = server.metrics();
    // The server stopped reading at the bad frame before the peer reads a byte.
    wait_until("the bad frame decoded", || {
        counter(&metrics, "lynn_messages_invalid_total") == 1
    });
    let reply = peer.read_frame().expect("the reply arrives whole");
    assert_eq!(reply.body.len(), body.len(), "{}", R::name());
    assert!(reply.body == body);
    let mut rest = Vec::new();
    let end = std::io::Read::read_to_end(peer.stream(), &mut rest);
    assert!(
        matches!(end, Ok(0)),
        "{}: the end of the stream, not {end:?}",
        R::name()
    );
    let _ = peer.stream().shutdown(std::net::Shutdown::Write);
    writing.join().unwrap();
    wait_until("the close counted", || {
        metrics.closed_with("protocol_error") == 1
    });
    server.stop();
}

/// A frame of unknown kind is counted and skipped; the connection stays.
pub fn unknown_kind_ignored<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let mut bytes = frame(DEFAULT_MARKS, 7, ECHO, b"kind 7");
    bytes.extend_from_slice(&message(ECHO, b"after"));
    peer.write(&bytes).unwrap();
    assert_eq!(peer.read_frame().unwrap().body, b"after");
    let metrics = server.metrics();
    wait_until("unknown kind counted", || {
        counter(&metrics, "lynn_unknown_kinds_total") == 1
    });
    assert_eq!(peer.request(ECHO, b"again").unwrap().body, b"again");
    drop(peer);
    server.stop();
}

/// Under the default policy a message for an unrouted method gets no reply, is counted,
/// and the connection stays.
pub fn unknown_method_ignored<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let mut bytes = message(UNROUTED, b"?");
    bytes.extend_from_slice(&message(ECHO, b"after"));
    peer.write(&bytes).unwrap();
    let reply = peer.read_frame().unwrap();
    assert_eq!((reply.method, &reply.body[..]), (ECHO, &b"after"[..]));
    let metrics = server.metrics();
    wait_until("unknown method counted", || {
        counter(&metrics, "lynn_unknown_methods_total") == 1
    });
    assert_eq!(peer.request(ECHO, b"again").unwrap().body, b"again");
    assert_eq!(metrics.closed_with("unknown_method"), 0);
    drop(peer);
    server.stop();
}

/// Under `UnknownMethod::Close` an unrouted method closes that connection only.
///
/// Under the close policy an unrouted message closes the connection like an invalid frame
/// does: the request before it, sent in the same write, is answered first.
pub fn unknown_method_closes<R: Runtime>() {
    let config = server_config()
        .unknown_method(UnknownMethod::Close)
        .build()
        .unwrap();
    closes_after_answering::<R>(config, &message(UNROUTED, b"?"), "unknown_method");
}

/// A panicking handler completes its request with no reply and is counted; the connection
/// and later requests carry on.
pub fn handler_panic_contained<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let mut bytes = message(PANIC, b"boom");
    bytes.extend_from_slice(&message(ECHO, b"after"));
    peer.write(&bytes).unwrap();
    let reply = peer.read_frame().unwrap();
    assert_eq!((reply.method, &reply.body[..]), (ECHO, &b"after"[..]));
    let metrics = server.metrics();
    wait_until("panic counted", || metrics.handler_failures().1 == 1);
    assert_eq!(peer.request(ECHO, b"again").unwrap().body, b"again");
    assert_eq!(server.connection_count(), 1);
    drop(peer);
    server.stop();
}
