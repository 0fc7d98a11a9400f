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
    let mut bystander = RawPeer::connect(server.addr()).unwrap();
    assert_eq!(bystander.request(ECHO, b"first").unwrap().body, b"first");
    let mut peer = RawPeer::connect(server.addr()).unwrap();
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

/// A frame of unknown kind is counted and skipped; the connection stays.
pub fn unknown_kind_ignored<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect(server.addr()).unwrap();
    let mut bytes = frame(DEFAULT_MARKS, 7, ECHO, b"kind 7");
    bytes.extend_from_slice(&message(ECHO, b"after"));
    peer.write(&bytes).unwrap();
    assert_eq!(peer.read_frame().unwrap().body, b"after");
    let metrics = server.metrics();
    wait_until("unknown kind counted", || {
        counter(&metrics, "lynn_unknown_kinds_total") == 1
    });
    assert_eq!(peer.request(ECHO, b"again").unwrap().body, b"again");
    server.stop();
}

/// Under the default policy a message for an unrouted method gets no reply, is counted,
/// and the connection stays.
pub fn unknown_method_ignored<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect(server.addr()).unwrap();
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
    let mut peer = RawPeer::connect(server.addr()).unwrap();
    let mut bytes = message(PANIC, b"boom");
    bytes.extend_from_slice(&message(ECHO, b"after"));
    peer.write(&bytes).unwrap();
    let reply = peer.read_frame().unwrap();
    assert_eq!((reply.method, &reply.body[..]), (ECHO, &b"after"[..]));
    let metrics = server.metrics();
    wait_until("panic counted", || metrics.handler_failures().1 == 1);
    assert_eq!(peer.request(ECHO, b"again").unwrap().body, b"again");
    assert_eq!(server.connection_count(), 1);
    server.stop();
}
