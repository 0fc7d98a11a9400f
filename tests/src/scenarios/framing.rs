//! The wire format as raw bytes: the DESIGN.md samples, coalesced and split frames.

use crate::app::{App, ECHO};
use crate::raw::{RawPeer, SAMPLE_HEARTBEAT, SAMPLE_HELLO, message};
use crate::runtime::{Runtime, ServerUnderTest};
use crate::support::{pattern, server_config};

/// The DESIGN.md sample (method 1, `hello`), after a sample heartbeat, is echoed byte for
/// byte.
pub fn sample_bytes_echoed<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let mut bytes = SAMPLE_HEARTBEAT.to_vec();
    bytes.extend_from_slice(SAMPLE_HELLO);
    peer.write(&bytes).unwrap();
    let reply = peer.read_bytes(SAMPLE_HELLO.len()).unwrap();
    assert_eq!(
        reply,
        SAMPLE_HELLO,
        "{}: the sample is echoed exactly",
        R::name()
    );
    drop(peer);
    server.stop();
}

/// 200 frames in one write are all answered, in order.
pub fn coalesced_frames<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let bodies: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("frame {i}").into_bytes())
        .collect();
    let bytes: Vec<u8> = bodies.iter().flat_map(|b| message(ECHO, b)).collect();
    peer.write(&bytes).unwrap();
    for body in &bodies {
        let reply = peer.read_frame().unwrap();
        assert_eq!((reply.kind, reply.method), (1, ECHO));
        assert_eq!(&reply.body, body, "{}: replies in request order", R::name());
    }
    drop(peer);
    server.stop();
}

/// Two frames written one byte per write are answered like any others.
pub fn bytewise_frames<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let first = pattern(300, 1);
    let mut bytes = message(ECHO, &first);
    bytes.extend_from_slice(&message(ECHO, b""));
    peer.write_bytewise(&bytes).unwrap();
    assert_eq!(peer.read_frame().unwrap().body, first);
    assert_eq!(peer.read_frame().unwrap().body, b"");
    drop(peer);
    server.stop();
}

/// Eight connections send their frames in 7-byte pieces, taking turns, so that each holds
/// a partial frame while the others are read and answered: every reply is its own
/// connection's, whole (a server thread's connections share its spare receive and staging
/// buffers between turns).
pub fn interleaved_partial_frames<R: Runtime>() {
    let server = R::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let mut peers: Vec<RawPeer> = (0..8)
        .map(|_| RawPeer::connect_for::<R>(server.addr()).unwrap())
        .collect();
    let bodies: Vec<Vec<u8>> = (0..8).map(|i| pattern(100 + 37 * i, i as u8)).collect();
    let streams: Vec<Vec<u8>> = bodies
        .iter()
        .map(|body| [message(ECHO, body), message(ECHO, b"")].concat())
        .collect();
    let longest = streams.iter().map(Vec::len).max().unwrap();
    for at in (0..longest).step_by(7) {
        for (peer, stream) in peers.iter_mut().zip(&streams) {
            if at < stream.len() {
                peer.write(&stream[at..(at + 7).min(stream.len())]).unwrap();
            }
        }
    }
    for (i, (peer, body)) in peers.iter_mut().zip(&bodies).enumerate() {
        assert_eq!(
            &peer.read_frame().unwrap().body,
            body,
            "{}: connection {i}",
            R::name()
        );
        assert_eq!(
            peer.read_frame().unwrap().body,
            b"",
            "{}: connection {i}",
            R::name()
        );
    }
    drop(peers);
    server.stop();
}
