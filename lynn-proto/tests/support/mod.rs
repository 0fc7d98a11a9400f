//! Helpers shared by the codec and connection tests: building frames, moving bytes between
//! connections as a socket would, and draining events and output.
#![allow(dead_code, unreachable_pub)]

use bytes::{Bytes, BytesMut};
use lynn_proto::codec::{Decoder, encode};
use lynn_proto::{Connection, DecodeError, Event, Frame, FrameKind, Instant, Marks};

/// One encoded frame with the default marks and no size limit.
pub fn frame(kind: FrameKind, method: u16, body: &[u8]) -> Vec<u8> {
    frame_with(Marks::default(), kind, method, body)
}

/// One encoded frame with the given marks and no size limit.
pub fn frame_with(marks: Marks, kind: FrameKind, method: u16, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode(marks, kind, method, body, u64::MAX, &mut b).unwrap();
    b.to_vec()
}

/// A message frame with the default marks.
pub fn msg(method: u16, body: &[u8]) -> Vec<u8> {
    frame(FrameKind::Message, method, body)
}

/// A heartbeat frame with the default marks.
pub fn heartbeat() -> Vec<u8> {
    frame(FrameKind::Heartbeat, 0, b"")
}

/// Every event the connection has ready, in order.
pub fn drain(conn: &mut Connection) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(e) = conn.poll_event() {
        out.push(e);
    }
    out
}

/// All queued output, concatenated, without consuming it.
pub fn output(conn: &Connection) -> Vec<u8> {
    let mut slots = vec![&[][..]; 4096];
    let n = conn.transmit_chunks(&mut slots);
    assert!(n < slots.len(), "more chunks than the helper expects");
    let out = slots[..n].concat();
    assert_eq!(out.len(), conn.pending_transmit(), "chunks cover the queue");
    out
}

/// Takes all queued output, as a socket that writes everything would.
pub fn flush(conn: &mut Connection, now: Instant) -> Vec<u8> {
    let out = output(conn);
    conn.handle_written(out.len(), now);
    out
}

/// Moves everything `from` has queued into `to`, while `to` wants to read.
pub fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
    while from.wants_write() && to.wants_read() {
        let bytes = output(from);
        to.handle_bytes(&bytes, now);
        from.handle_written(bytes.len(), now);
    }
}

/// Decodes a whole byte stream with the given marks and no size limit.
pub fn decode_all(marks: Marks, bytes: &[u8]) -> (Vec<Frame>, Option<DecodeError>, usize) {
    let mut d = Decoder::new(marks, u64::MAX);
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        match d.decode(&mut buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, None, buf.len()),
            Err(e) => return (frames, Some(e), buf.len()),
        }
    }
}

/// The message events in `events` as `(id, method, body)`.
pub fn messages(events: &[Event]) -> Vec<(u64, u16, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(r) => Some((r.id.0, r.method, r.body.clone())),
            _ => None,
        })
        .collect()
}

/// A connection that closed on its side and flushed lingers: its write side ends, and a
/// peer that then closes its own ends the lingering (the `Closed` event follows).
pub fn peer_answers_the_close(conn: &mut Connection, now: Instant) {
    assert!(conn.is_lingering(), "lingering after a local close");
    assert!(conn.poll_shutdown_write(), "the write side ends once");
    assert!(!conn.poll_shutdown_write());
    conn.handle_eof(now);
}
