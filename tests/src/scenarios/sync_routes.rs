//! Synchronous routes (`route_sync`): answered in place, in request order with async
//! routes, a panic contained, fanout from inside.

use std::time::Duration;

use crate::app::{App, DELAY, ECHO, PUSH, SYNC_ECHO, SYNC_PANIC, SYNC_TO_ALL, count, delay_body};
use crate::raw::{RawPeer, message};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{client_config, pattern, server_config, wait_until};

/// Bodies of 0, 128 bytes, 64 KiB and 1 MiB come back byte for byte from a synchronous
/// echo; pipelined behind slow async requests, synchronous replies keep request order.
pub fn sync_echo_in_order<R: Runtime>() {
    const LIMIT: u64 = 2 << 20;
    let config = server_config().max_frame_len(LIMIT).build().unwrap();
    let server = R::start_server(config, App::default()).expect("server starts");
    let client = R::connect(
        client_config(server.addr())
            .max_frame_len(LIMIT)
            .build()
            .unwrap(),
    )
    .unwrap();
    for (i, len) in [0, 128, 64 << 10, 1 << 20].into_iter().enumerate() {
        let body = pattern(len, i as u8);
        let reply = client.request(SYNC_ECHO, body.clone().into()).unwrap();
        assert!(reply == body, "{}: sync echo of {len} bytes", R::name());
    }

    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for n in 0u8..30 {
        let (method, body) = match n {
            0 | 15 => (DELAY, delay_body(Duration::from_millis(20), &[n]).to_vec()),
            7 => (ECHO, vec![n]),
            _ => (SYNC_ECHO, vec![n]),
        };
        bytes.extend(message(method, &body));
        expected.push((method, vec![n]));
    }
    peer.write(&bytes).unwrap();
    for (method, body) in expected {
        let reply = peer.read_frame().unwrap();
        assert_eq!((reply.method, reply.body), (method, body), "{}", R::name());
    }
    client.close();
    drop(peer);
    server.stop();
}

/// A synchronous handler that panics gets no reply and is counted; the connection and
/// the next requests on it carry on.
pub fn sync_panic_contained<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let mut bytes = message(SYNC_PANIC, b"boom");
    bytes.extend_from_slice(&message(SYNC_ECHO, b"after"));
    peer.write(&bytes).unwrap();
    let reply = peer.read_frame().unwrap();
    assert_eq!((reply.method, &reply.body[..]), (SYNC_ECHO, &b"after"[..]));
    let metrics = server.metrics();
    wait_until("panic counted", || metrics.handler_failures().1 == 1);
    assert_eq!(peer.request(SYNC_ECHO, b"again").unwrap().body, b"again");
    assert_eq!(server.connection_count(), 1);
    drop(peer);
    server.stop();
}

/// A synchronous handler reaches every connection through its server handle.
pub fn sync_broadcast<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let listener = R::connect(client_config(server.addr()).build().unwrap()).unwrap();
    let sender = R::connect(client_config(server.addr()).build().unwrap()).unwrap();
    wait_until("both connected", || server.connection_count() == 2);
    let reply = sender.request(SYNC_TO_ALL, "news".into()).unwrap();
    assert_eq!(count(&reply), 2, "{}", R::name());
    let push = listener
        .recv_timeout(Duration::from_secs(5))
        .expect("a push");
    assert_eq!((push.method, &push.body[..]), (PUSH, &b"news"[..]));
    listener.close();
    sender.close();
    server.stop();
}
