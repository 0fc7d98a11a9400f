//! `Connection` behaviour, scenario by scenario, under simulated time.

mod support;

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lynn_proto::codec::{Decoder, encode_to_bytes};
use lynn_proto::{
    CloseReason, CompleteError, Connection, ConnectionConfig, DecodeError, DecodeErrorKind,
    EncodeError, Event, FrameKind, Instant, Liveness, Marks, Request, RequestId, SendError,
    SendFull, SpareBuffers,
};
use support::{
    drain, flush, frame, heartbeat, messages, msg, output, peer_answers_the_close, pump,
};

const NS: Duration = Duration::from_nanos(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A server with every timer off; tests turn on what they exercise.
fn server_cfg() -> ConnectionConfig {
    ConnectionConfig {
        heartbeat_interval: None,
        idle_timeout: None,
        read_timeout: None,
        write_timeout: None,
        release_buffers_after: None,
        ..ConnectionConfig::server()
    }
}

/// A client with every timer off.
fn client_cfg() -> ConnectionConfig {
    ConnectionConfig {
        heartbeat_interval: None,
        idle_timeout: None,
        read_timeout: None,
        write_timeout: None,
        release_buffers_after: None,
        ..ConnectionConfig::client()
    }
}

fn open(config: ConnectionConfig, now: Instant) -> Connection {
    Connection::new(config, now).unwrap()
}

fn request(event: &Event) -> &Request {
    match event {
        Event::Message(r) => r,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn connections_made_from_one_arc_share_their_settings_and_a_bad_one_is_refused() {
    let t = Instant::now();
    let shared = std::sync::Arc::new(server_cfg());
    let a = Connection::new(shared.clone(), t).unwrap();
    let b = Connection::new(shared.clone(), t).unwrap();
    assert!(std::ptr::eq(a.config(), &*shared));
    assert!(std::ptr::eq(b.config(), &*shared));
    // A plain value still works, in its own allocation.
    let c = Connection::new(server_cfg(), t).unwrap();
    assert!(!std::ptr::eq(c.config(), &*shared));
    let bad = std::sync::Arc::new(ConnectionConfig {
        max_frame_len: 1,
        ..server_cfg()
    });
    let err = Connection::new(bad, t).unwrap_err();
    assert_eq!(err.field, "max_frame_len");
}

#[test]
fn echo_round_trip_with_replies_in_request_order() {
    let t = Instant::now();
    let mut client = open(client_cfg(), t);
    let mut server = open(server_cfg(), t);
    for i in 0..3u16 {
        client
            .send(10 + i, Bytes::from(format!("req{i}")), t)
            .unwrap();
    }
    pump(&mut client, &mut server, t);
    assert!(!client.wants_write());

    let reqs = drain(&mut server);
    assert_eq!(
        messages(&reqs),
        (0..3u16)
            .map(|i| (i as u64, 10 + i, Bytes::from(format!("req{i}"))))
            .collect::<Vec<_>>()
    );
    assert_eq!(server.in_flight(), 3);

    let reply = |i: u64| Some((20 + i as u16, Bytes::from(format!("rep{i}"))));
    server.complete(RequestId(2), reply(2), t).unwrap();
    assert!(!server.wants_write(), "reply 2 waits for 0 and 1");
    server.complete(RequestId(0), reply(0), t).unwrap();
    assert_eq!(output(&server), msg(20, b"rep0"), "only reply 0 may leave");
    server.complete(RequestId(1), reply(1), t).unwrap();
    assert_eq!(
        output(&server),
        [msg(20, b"rep0"), msg(21, b"rep1"), msg(22, b"rep2")].concat()
    );
    assert_eq!(server.in_flight(), 0);

    pump(&mut server, &mut client, t);
    let replies = drain(&mut client);
    assert_eq!(
        messages(&replies),
        (0..3u64)
            .map(|i| (i, 20 + i as u16, Bytes::from(format!("rep{i}"))))
            .collect::<Vec<_>>()
    );
    assert!(!client.is_closed() && !server.is_closed());
    assert_eq!(server.stats().messages_received, 3);
    assert_eq!(client.stats().messages_received, 3);
}

#[test]
fn complete_rejects_unknown_and_repeated_ids() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    server.handle_bytes(&[msg(1, b"a"), msg(1, b"b")].concat(), t);
    assert_eq!(drain(&mut server).len(), 2);
    assert_eq!(
        server.complete(RequestId(2), None, t),
        Err(CompleteError::NotInFlight { id: 2 })
    );
    server.complete(RequestId(1), None, t).unwrap();
    assert_eq!(
        server.complete(RequestId(1), None, t),
        Err(CompleteError::NotInFlight { id: 1 })
    );
    server.complete(RequestId(0), None, t).unwrap();
    assert_eq!(
        server.complete(RequestId(0), None, t),
        Err(CompleteError::NotInFlight { id: 0 })
    );
    assert_eq!(server.in_flight(), 0);
    assert!(!server.wants_write());
}

#[test]
fn oversized_reply_completes_without_reply_and_does_not_block_later_ones() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            peer_max_frame_len: 5 + 4,
            ..server_cfg()
        },
        t,
    );
    server.handle_bytes(&[msg(1, b"a"), msg(1, b"b")].concat(), t);
    assert_eq!(drain(&mut server).len(), 2);
    server
        .complete(RequestId(1), Some((1, Bytes::from_static(b"ok"))), t)
        .unwrap();
    let err = server
        .complete(RequestId(0), Some((1, Bytes::from_static(b"12345"))), t)
        .unwrap_err();
    assert_eq!(
        err,
        CompleteError::Encode(EncodeError::BodyTooLarge {
            body_len: 5,
            max_body_len: 4
        })
    );
    assert_eq!(output(&server), msg(1, b"ok"));
    assert_eq!(server.in_flight(), 0);
    // send() refuses the same body.
    assert_eq!(
        server.send(1, Bytes::from_static(b"12345"), t),
        Err(SendError::Encode(EncodeError::BodyTooLarge {
            body_len: 5,
            max_body_len: 4
        }))
    );
    server.send(1, Bytes::from_static(b"1234"), t).unwrap();
}

#[test]
fn max_in_flight_withholds_the_next_message_and_stops_reading() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            max_in_flight: 2,
            ..server_cfg()
        },
        t,
    );
    server.handle_bytes(&[msg(1, b"0"), msg(1, b"1"), msg(1, b"2")].concat(), t);
    let first = drain(&mut server);
    assert_eq!(
        messages(&first).iter().map(|m| m.0).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(server.poll_event(), None, "third message withheld");
    assert!(!server.wants_read());
    assert_eq!(server.in_flight(), 2);

    server.complete(RequestId(1), None, t).unwrap();
    assert_eq!(server.poll_event(), None, "request 0 still in flight");
    assert!(!server.wants_read());

    server.complete(RequestId(0), None, t).unwrap();
    let third = drain(&mut server);
    assert_eq!(third.len(), 1);
    assert_eq!(
        (request(&third[0]).id, &request(&third[0]).body[..]),
        (RequestId(2), &b"2"[..])
    );
    assert!(server.wants_read(), "one slot free again");
    server.complete(RequestId(2), None, t).unwrap();
    assert!(server.wants_read());
}

#[test]
fn idle_timer_does_not_run_while_reading_is_paused() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            max_in_flight: 1,
            idle_timeout: Some(secs(10)),
            ..server_cfg()
        },
        t,
    );
    server.handle_bytes(&msg(1, b"x"), t);
    assert_eq!(drain(&mut server).len(), 1);
    assert!(!server.wants_read());
    assert_eq!(server.poll_timeout(), None, "backpressure is not silence");
    server.handle_timeout(t + secs(60));
    assert!(drain(&mut server).is_empty());
    server.complete(RequestId(0), None, t + secs(60)).unwrap();
    assert!(server.wants_read());
    assert_eq!(server.poll_timeout(), Some(t + secs(70)));
}

#[test]
fn invalid_frame_after_two_good_ones() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    let good = [msg(1, b"one"), msg(2, b"two")].concat();
    let mut bytes = good.clone();
    bytes.extend([0xd9, 0x23, 3, 0, 0, 0, 0, 0, 0, 0]); // length 3 < 5
    bytes.extend(msg(3, b"after the bad frame"));
    server.handle_bytes(&bytes, t);
    assert!(!server.wants_read(), "nothing more is read");
    assert_eq!(server.stats().invalid_frames, 1);

    // The two messages are delivered and answered; Closed waits for their replies.
    let events = drain(&mut server);
    assert_eq!(
        events,
        vec![
            Event::Message(Request {
                id: RequestId(0),
                method: 1,
                body: Bytes::from_static(b"one"),
                reply_to: None,
            }),
            Event::Message(Request {
                id: RequestId(1),
                method: 2,
                body: Bytes::from_static(b"two"),
                reply_to: None,
            }),
        ]
    );
    assert_eq!(
        server.send(1, Bytes::from_static(b"x"), t),
        Err(SendError::Closed)
    );
    assert_eq!(
        server.send_encoded(Bytes::from(msg(1, b"x")), t),
        Err(SendError::Closed)
    );
    server.handle_bytes(&msg(4, b"ignored"), t);
    server
        .complete(RequestId(1), Some((2, Bytes::from_static(b"r1"))), t)
        .unwrap();
    server
        .complete(RequestId(0), Some((1, Bytes::from_static(b"r0"))), t)
        .unwrap();
    assert_eq!(drain(&mut server), vec![], "replies not flushed yet");
    assert_eq!(
        flush(&mut server, t),
        [msg(1, b"r0"), msg(2, b"r1")].concat()
    );
    peer_answers_the_close(&mut server, t);
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::Protocol(DecodeError {
            offset: good.len() as u64,
            frame: 2,
            kind: DecodeErrorKind::LengthTooSmall { len: 3 },
        }))]
    );
    assert!(server.is_closed());

    // Nothing more: not for new input, not for completions, not for timers.
    server.handle_bytes(&msg(3, b"three"), t);
    server
        .complete(RequestId(0), Some((1, Bytes::new())), t)
        .unwrap();
    server.handle_timeout(t + secs(3600));
    server.handle_eof(t);
    assert_eq!(drain(&mut server), vec![]);
    assert_eq!(server.stats().frames_received, 2);
    assert_eq!(server.stats().invalid_frames, 1);
    assert_eq!(
        server.send(1, Bytes::from_static(b"x"), t),
        Err(SendError::Closed)
    );
    assert!(!server.wants_read() && !server.wants_write());
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn invalid_frame_closes_at_once_when_nothing_is_pending() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    server.handle_bytes(&[0x00, 0x23], t);
    peer_answers_the_close(&mut server, t);
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::Protocol(DecodeError {
            offset: 0,
            frame: 0,
            kind: DecodeErrorKind::BadHeaderMark {
                expected: 9177,
                found: 0x2300
            },
        }))]
    );
    // Without completion tracking, delivering the earlier message is all it takes.
    let mut client = open(client_cfg(), t);
    client.handle_bytes(&[msg(1, b"a"), vec![0, 0]].concat(), t);
    assert!(!client.is_closed(), "the good message comes first");
    assert!(matches!(client.poll_event(), Some(Event::Message(_))));
    peer_answers_the_close(&mut client, t);
    assert!(matches!(
        client.poll_event(),
        Some(Event::Closed(CloseReason::Protocol(DecodeError {
            frame: 1,
            ..
        })))
    ));
    assert_eq!(client.poll_event(), None);
}

#[test]
fn invalid_frame_drain_is_bounded_by_the_write_timeout() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            write_timeout: Some(secs(5)),
            ..server_cfg()
        },
        t,
    );
    server.handle_bytes(&[msg(1, b"a"), vec![0, 0]].concat(), t);
    let r = drain(&mut server);
    server
        .complete(request(&r[0]).id, Some((1, Bytes::from_static(b"r"))), t)
        .unwrap();
    assert_eq!(server.poll_timeout(), Some(t + secs(5)));
    server.handle_timeout(t + secs(5));
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::WriteTimeout)]
    );
}

/// With `max_in_flight` reached when the bad frame arrives, the withheld message is released
/// by completions and `Closed` follows. (Regression: completions used to be ignored once an
/// invalid frame was seen, so the connection hung with no timer left to end it.)
#[test]
fn invalid_frame_while_in_flight_is_full_still_closes() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            max_in_flight: 2,
            ..ConnectionConfig::server()
        },
        t,
    );
    let good = [msg(1, b"0"), msg(1, b"1"), msg(1, b"2")].concat();
    server.handle_bytes(&[&good[..], &[0xff, 0xff]].concat(), t);
    assert_eq!(messages(&drain(&mut server)).len(), 2);
    server.complete(RequestId(0), None, t).unwrap();
    server.complete(RequestId(1), None, t).unwrap();
    let events = drain(&mut server);
    assert_eq!(
        messages(&events),
        vec![(2, 1, Bytes::from_static(b"2"))],
        "the withheld message is still delivered"
    );
    server.complete(RequestId(2), None, t).unwrap();
    peer_answers_the_close(&mut server, t);
    let events = [events, drain(&mut server)].concat();
    assert_eq!(
        events.last(),
        Some(&Event::Closed(CloseReason::Protocol(DecodeError {
            offset: good.len() as u64,
            frame: 3,
            kind: DecodeErrorKind::BadHeaderMark {
                expected: 9177,
                found: 0xffff
            },
        }))),
        "connection never closes (closed: {})",
        server.is_closed()
    );
}

/// The same with the default server config: a burst of 17 requests followed by an invalid
/// frame, each request completed as soon as it is delivered.
#[test]
fn burst_then_invalid_frame_closes_with_default_config() {
    let t = Instant::now();
    let mut server = open(ConnectionConfig::server(), t);
    let burst: Vec<u8> = (0..17u8).flat_map(|i| msg(1, &[i])).collect();
    server.handle_bytes(&[&burst[..], b"GET / HTTP/1.1\r\n"].concat(), t);
    let mut events = Vec::new();
    for _ in 0..100 {
        while let Some(e) = server.poll_event() {
            if let Event::Message(r) = &e {
                server.complete(r.id, None, t).unwrap();
            }
            events.push(e);
        }
    }
    peer_answers_the_close(&mut server, t);
    events.extend(drain(&mut server));
    assert_eq!(
        messages(&events).len(),
        17,
        "every good request is delivered"
    );
    assert!(
        matches!(
            events.last(),
            Some(Event::Closed(CloseReason::Protocol(DecodeError {
                frame: 17,
                ..
            })))
        ),
        "never closed: {} events, last {:?}",
        events.len(),
        events.last()
    );
}

#[test]
fn unknown_kind_is_counted_and_ignored() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    let bytes = [
        frame(FrameKind::Unknown(7), 5, b"ignored"),
        msg(1, b"a"),
        frame(FrameKind::Unknown(0), 0, b""),
        msg(2, b"b"),
    ]
    .concat();
    server.handle_bytes(&bytes, t);
    let events = drain(&mut server);
    assert_eq!(
        messages(&events),
        vec![
            (0, 1, Bytes::from_static(b"a")),
            (1, 2, Bytes::from_static(b"b"))
        ],
        "unknown frames are skipped and take no request id"
    );
    assert_eq!(events.len(), 2);
    assert_eq!(server.stats().unknown_kinds, 2);
    assert_eq!(server.stats().frames_received, 4);
    assert!(!server.is_closed() && server.wants_read());
    server
        .send(1, Bytes::from_static(b"still open"), t)
        .unwrap();
}

#[test]
fn client_heartbeats_fill_send_silence() {
    let t = Instant::now();
    let mut client = open(
        ConnectionConfig {
            heartbeat_interval: Some(secs(10)),
            ..client_cfg()
        },
        t,
    );
    let mut server = open(server_cfg(), t);
    assert_eq!(client.poll_timeout(), Some(t + secs(10)));

    // A message at 4 s postpones the heartbeat to 14 s.
    client
        .send(1, Bytes::from_static(b"m"), t + secs(4))
        .unwrap();
    pump(&mut client, &mut server, t + secs(4));
    assert_eq!(client.poll_timeout(), Some(t + secs(14)));
    client.handle_timeout(t + secs(10));
    client.handle_timeout(t + secs(14) - NS);
    assert!(!client.wants_write(), "no heartbeat before 10 s of silence");

    client.handle_timeout(t + secs(14));
    assert_eq!(output(&client), heartbeat());
    assert_eq!(client.stats().heartbeats_sent, 1);
    pump(&mut client, &mut server, t + secs(14));
    let events = drain(&mut server);
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0], Event::Message(_)));
    assert_eq!(events[1], Event::Heartbeat);
    assert_eq!(server.stats().heartbeats_received, 1);

    // The next one comes a full interval later.
    assert_eq!(client.poll_timeout(), Some(t + secs(24)));
    client.handle_timeout(t + secs(24));
    assert_eq!(flush(&mut client, t + secs(24)), heartbeat());
}

#[test]
fn idle_timeout_any_frame() {
    let t = Instant::now();
    let cfg = ConnectionConfig {
        idle_timeout: Some(secs(10)),
        max_in_flight: 0,
        ..server_cfg()
    };
    let mut server = open(cfg, t);
    let mut now = t;
    for i in 0..10 {
        now += secs(9);
        server.handle_timeout(now);
        assert_eq!(drain(&mut server), vec![], "closed before message {i}");
        server.handle_bytes(&msg(1, b"busy"), now);
        assert_eq!(drain(&mut server).len(), 1);
    }
    let last = now;
    assert_eq!(server.poll_timeout(), Some(last + secs(10)));
    server.handle_timeout(last + secs(10) - NS);
    assert_eq!(drain(&mut server), vec![]);
    assert!(!server.is_closed());
    server.handle_timeout(last + secs(10));
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::IdleTimeout)]
    );
    server.handle_timeout(last + secs(100));
    assert_eq!(drain(&mut server), vec![]);
}

#[test]
fn idle_timeout_heartbeat_only() {
    let t = Instant::now();
    let cfg = ConnectionConfig {
        idle_timeout: Some(secs(10)),
        liveness: Liveness::HeartbeatOnly,
        max_in_flight: 0,
        ..server_cfg()
    };

    // Messages every 3 s, never a heartbeat: closed 10 s after the start.
    let mut busy = open(cfg.clone(), t);
    for i in 1..=3 {
        let now = t + secs(3 * i);
        busy.handle_timeout(now);
        busy.handle_bytes(&msg(1, b"busy"), now);
        assert_eq!(drain(&mut busy).len(), 1);
    }
    assert_eq!(busy.poll_timeout(), Some(t + secs(10)));
    busy.handle_timeout(t + secs(10));
    assert_eq!(
        drain(&mut busy),
        vec![Event::Closed(CloseReason::IdleTimeout)]
    );

    // Heartbeats every 9 s keep it open for a long time, messages or not.
    let mut beating = open(cfg, t);
    let mut now = t;
    for i in 0..20 {
        now += secs(9);
        beating.handle_timeout(now);
        assert!(!beating.is_closed(), "closed at beat {i}");
        let bytes = if i % 2 == 0 {
            heartbeat()
        } else {
            [msg(1, b"x"), heartbeat()].concat()
        };
        beating.handle_bytes(&bytes, now);
        assert!(drain(&mut beating).contains(&Event::Heartbeat));
    }
    assert_eq!(beating.poll_timeout(), Some(now + secs(10)));
}

/// lynn_tcp's heartbeat-only liveness with strictly sequential handling (`max_in_flight =
/// 1`): each message pauses reading until it is completed, and resuming resets the idle
/// timer, so messages alone keep the connection alive.
#[test]
fn heartbeat_only_is_not_fooled_by_momentary_pauses() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            idle_timeout: Some(secs(10)),
            liveness: Liveness::HeartbeatOnly,
            max_in_flight: 1,
            ..server_cfg()
        },
        t,
    );
    let mut events = Vec::new();
    for i in 1..=6 {
        let now = t + secs(3 * i);
        server.handle_timeout(now);
        server.handle_bytes(&msg(1, b"busy"), now);
        while let Some(e) = server.poll_event() {
            if let Event::Message(r) = &e {
                server.complete(r.id, None, now).unwrap();
            }
            events.push(e);
        }
    }
    assert_eq!(
        events.last(),
        Some(&Event::Closed(CloseReason::IdleTimeout)),
        "no heartbeat for 18 s with a 10 s heartbeat timeout; next deadline {:?}",
        server.poll_timeout().map(|d| d - t)
    );
}

#[test]
fn read_timeout_on_a_stalled_partial_frame() {
    let t = Instant::now();
    let cfg = ConnectionConfig {
        read_timeout: Some(secs(5)),
        ..server_cfg()
    };
    let whole = msg(1, b"a partial frame");

    let mut server = open(cfg.clone(), t);
    server.handle_bytes(&whole[..4], t);
    assert_eq!(server.poll_timeout(), Some(t + secs(5)));
    // More bytes of the same frame restart the stall clock.
    server.handle_bytes(&whole[4..12], t + secs(3));
    assert_eq!(server.poll_timeout(), Some(t + secs(8)));
    server.handle_timeout(t + secs(8) - NS);
    assert!(drain(&mut server).is_empty());
    server.handle_timeout(t + secs(8));
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::ReadTimeout)]
    );

    // Complete frames arm nothing, and completing the partial one disarms it.
    let mut server = open(cfg, t);
    server.handle_bytes(&whole, t);
    assert_eq!(drain(&mut server).len(), 1);
    assert_eq!(server.poll_timeout(), None);
    server.handle_bytes(&whole[..3], t + secs(1));
    assert_eq!(server.poll_timeout(), Some(t + secs(6)));
    server.handle_bytes(&whole[3..], t + secs(2));
    assert_eq!(drain(&mut server).len(), 1);
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(t + secs(3600));
    assert!(drain(&mut server).is_empty());
    assert!(!server.is_closed());
}

#[test]
fn write_timeout_without_progress() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            write_timeout: Some(secs(5)),
            ..server_cfg()
        },
        t,
    );
    assert_eq!(
        server.poll_timeout(),
        None,
        "nothing queued, nothing to time"
    );
    server
        .send(1, Bytes::from_static(b"payload"), t + secs(1))
        .unwrap();
    assert_eq!(server.poll_timeout(), Some(t + secs(6)));
    // A later send onto a non-empty queue is not progress.
    server
        .send(1, Bytes::from_static(b"more"), t + secs(2))
        .unwrap();
    assert_eq!(server.poll_timeout(), Some(t + secs(6)));
    // Progress postpones; a zero-byte write does not.
    server.handle_written(3, t + secs(4));
    assert_eq!(server.poll_timeout(), Some(t + secs(9)));
    server.handle_written(0, t + secs(8));
    assert_eq!(server.poll_timeout(), Some(t + secs(9)));
    server.handle_timeout(t + secs(9) - NS);
    assert!(drain(&mut server).is_empty());
    server.handle_timeout(t + secs(9));
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::WriteTimeout)]
    );
    assert_eq!(server.pending_transmit(), 0);

    // Fully written output disarms it.
    let mut server = open(
        ConnectionConfig {
            write_timeout: Some(secs(5)),
            ..server_cfg()
        },
        t,
    );
    server.send(1, Bytes::from_static(b"payload"), t).unwrap();
    flush(&mut server, t + secs(4));
    assert_eq!(server.poll_timeout(), None);
}

/// Frames of 35 bytes (20-byte bodies) against a 100-byte queue.
fn small_queue(send_full: SendFull) -> ConnectionConfig {
    ConnectionConfig {
        send_queue_limit: 100,
        send_full,
        ..server_cfg()
    }
}

const BODY20: &[u8] = b"01234567890123456789";

#[test]
fn backpressure_refuses_then_signals_writable_once() {
    let t = Instant::now();
    let mut server = open(small_queue(SendFull::Reject), t);
    // Draining without a refusal announces nothing.
    server.send(1, Bytes::from_static(BODY20), t).unwrap();
    flush(&mut server, t);
    assert_eq!(drain(&mut server), vec![]);

    for _ in 0..3 {
        server.send(1, Bytes::from_static(BODY20), t).unwrap();
    }
    assert_eq!(
        server.pending_transmit(),
        105,
        "accepted while below the limit"
    );
    assert_eq!(server.send_capacity(), 0);
    assert_eq!(
        server.send(1, Bytes::from_static(b""), t),
        Err(SendError::QueueFull {
            queued: 105,
            limit: 100
        })
    );
    assert_eq!(server.pending_transmit(), 105, "nothing queued on refusal");
    assert_eq!(server.stats().send_refused, 1);
    assert!(server.send(1, Bytes::from_static(BODY20), t).is_err());

    server.handle_written(40, t);
    assert_eq!(server.pending_transmit(), 65);
    assert_eq!(drain(&mut server), vec![], "65 bytes is not below half");
    server.handle_written(16, t);
    assert_eq!(drain(&mut server), vec![Event::Writable]);
    server.handle_written(10, t);
    flush(&mut server, t);
    assert_eq!(drain(&mut server), vec![], "exactly one Writable");
    server.send(1, Bytes::from_static(BODY20), t).unwrap();
    assert!(!server.is_closed());
}

#[test]
fn backpressure_close_policy_drops_a_slow_consumer() {
    let t = Instant::now();
    let mut server = open(small_queue(SendFull::Close), t);
    for _ in 0..3 {
        server.send(1, Bytes::from_static(BODY20), t).unwrap();
    }
    assert!(matches!(
        server.send(1, Bytes::from_static(BODY20), t),
        Err(SendError::QueueFull { .. })
    ));
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::SlowConsumer)]
    );
    assert!(server.is_closed());
    assert_eq!(
        server.send(1, Bytes::from_static(BODY20), t),
        Err(SendError::Closed)
    );
}

#[test]
fn a_peer_that_never_reads_replies_stops_being_read() {
    let t = Instant::now();
    let mut server = open(small_queue(SendFull::Reject), t);
    let mut served = 0;
    while server.wants_read() {
        assert!(served < 10, "never stopped reading");
        server.handle_bytes(&msg(1, BODY20), t);
        for e in drain(&mut server) {
            let r = request(&e);
            server
                .complete(r.id, Some((r.method, r.body.clone())), t)
                .unwrap();
            served += 1;
        }
    }
    assert_eq!(
        served, 3,
        "35-byte replies: the third one crosses 100 bytes"
    );
    assert!(server.pending_transmit() >= 100);
    assert!(!server.is_closed());
    server.handle_written(5, t);
    assert!(
        !server.wants_read(),
        "still at the bound ({})",
        server.pending_transmit()
    );
    server.handle_written(1, t);
    assert!(server.wants_read(), "below the bound again");
}

#[test]
fn graceful_close_finishes_in_flight_work_and_flushes() {
    let t = Instant::now();
    let mut client = open(client_cfg(), t);
    let mut server = open(server_cfg(), t);
    client.send(1, Bytes::from_static(b"q0"), t).unwrap();
    client.send(1, Bytes::from_static(b"q1"), t).unwrap();
    pump(&mut client, &mut server, t);
    assert_eq!(drain(&mut server).len(), 2);

    server.close(t);
    assert!(!server.wants_read());
    assert_eq!(drain(&mut server), vec![], "requests still in flight");
    assert_eq!(
        server.send(1, Bytes::from_static(b"x"), t),
        Err(SendError::Closed)
    );
    server.handle_bytes(&msg(1, b"late"), t);
    assert_eq!(drain(&mut server), vec![], "input after close is not read");

    server
        .complete(RequestId(1), Some((1, Bytes::from_static(b"r1"))), t)
        .unwrap();
    assert_eq!(drain(&mut server), vec![]);
    server
        .complete(RequestId(0), Some((1, Bytes::from_static(b"r0"))), t)
        .unwrap();
    assert_eq!(
        drain(&mut server),
        vec![],
        "no Closed while output is pending"
    );
    let out = output(&server);
    assert_eq!(out, [msg(1, b"r0"), msg(1, b"r1")].concat());
    server.handle_written(out.len() - 1, t);
    assert_eq!(drain(&mut server), vec![]);
    assert!(!server.is_closed());
    server.handle_written(1, t);
    assert_eq!(drain(&mut server), vec![]);
    peer_answers_the_close(&mut server, t);
    assert_eq!(drain(&mut server), vec![Event::Closed(CloseReason::Local)]);
    assert!(server.is_closed());

    client.handle_bytes(&out, t);
    assert_eq!(
        messages(&drain(&mut client)),
        vec![
            (0, 1, Bytes::from_static(b"r0")),
            (1, 1, Bytes::from_static(b"r1"))
        ]
    );
}

#[test]
fn graceful_close_of_an_idle_connection_is_immediate() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    server.close(t);
    peer_answers_the_close(&mut server, t);
    assert_eq!(drain(&mut server), vec![Event::Closed(CloseReason::Local)]);
    server.close(t);
    assert_eq!(drain(&mut server), vec![]);
}

#[test]
fn eof_after_whole_frames_answers_them_then_closes() {
    let t = Instant::now();
    // A small event queue: frames after EOF are still decoded as events are drained.
    let mut server = open(
        ConnectionConfig {
            max_queued_events: 2,
            ..server_cfg()
        },
        t,
    );
    let bytes: Vec<u8> = (0..5u8).flat_map(|i| msg(1, &[i])).collect();
    server.handle_bytes(&bytes, t);
    server.handle_eof(t);
    let mut ids = Vec::new();
    for _ in 0..10 {
        for e in drain(&mut server) {
            match e {
                Event::Message(r) => {
                    server.complete(r.id, Some((2, r.body.clone())), t).unwrap();
                    ids.push(r.id.0);
                }
                other => panic!("{other:?} before every reply left"),
            }
        }
    }
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert!(!server.is_closed(), "replies still queued");
    let out = flush(&mut server, t);
    let expect: Vec<u8> = (0..5u8).flat_map(|i| msg(2, &[i])).collect();
    assert_eq!(out, expect);
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::PeerClosed)]
    );
}

#[test]
fn eof_mid_frame_reports_the_buffered_bytes() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    let next = msg(1, b"cut short");
    server.handle_bytes(&[msg(1, b"whole"), next[..7].to_vec()].concat(), t);
    server.handle_eof(t);
    let events = drain(&mut server);
    assert_eq!(messages(&events).len(), 1);
    assert_eq!(events.len(), 1, "closed only after completion: {events:?}");
    server.complete(RequestId(0), None, t).unwrap();
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::PeerClosedMidFrame {
            buffered: 7
        })]
    );
}

#[test]
fn transport_error_closes_at_once() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    server.handle_bytes(&msg(1, b"x"), t);
    server.send(1, Bytes::from_static(b"y"), t).unwrap();
    server.handle_transport_error(io::ErrorKind::ConnectionReset, t);
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::Transport(
            io::ErrorKind::ConnectionReset
        ))]
    );
    assert_eq!(server.pending_transmit(), 0);
}

#[test]
fn reading_into_the_receive_buffer_does_not_copy_bodies() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            read_chunk: 16 * 1024,
            ..server_cfg()
        },
        t,
    );
    let frames: Vec<Vec<u8>> = (0..100u8).map(|i| msg(7, &[i; 128])).collect();
    let wire = frames.concat();
    assert_eq!(wire.len(), 100 * 143);

    let buf = server.receive_buffer();
    assert!(buf.capacity() - buf.len() >= 16 * 1024);
    let base = buf.as_ptr() as usize;
    let cap = buf.capacity();
    buf.extend_from_slice(&wire); // as a socket read would
    assert_eq!(
        buf.as_ptr() as usize,
        base,
        "the read fit the offered space"
    );
    server.handle_received(t);

    let mut n = 0;
    for _ in 0..200 {
        for e in drain(&mut server) {
            let r = request(&e);
            let p = r.body.as_ptr() as usize;
            assert!(p >= base && p + 128 <= base + cap, "body {n} was copied");
            assert_eq!(p, base + n * 143 + 13);
            assert_eq!(&r.body[..], &[n as u8; 128][..]);
            server.complete(r.id, None, t).unwrap();
            n += 1;
        }
    }
    assert_eq!(n, 100);
    assert_eq!(server.stats().bytes_received, wire.len() as u64);
}

#[test]
fn receive_buffer_keeps_a_quarter_chunk_free_and_tops_up_only_when_low() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            read_chunk: 4096,
            ..server_cfg()
        },
        t,
    );
    let frame = msg(7, &[5; 128]);
    // Free space the previous read left (after its frame was split off).
    let (mut top_ups, mut left) = (0, 0);
    for _ in 0..200 {
        let buf = server.receive_buffer();
        let spare = buf.capacity() - buf.len();
        assert!(spare >= 1024, "only {spare} bytes offered");
        if spare > left {
            top_ups += 1;
        }
        buf.extend_from_slice(&frame);
        server.handle_received(t);
        for e in drain(&mut server) {
            server.complete(request(&e).id, None, t).unwrap();
        }
        // The whole frame was split off the buffer, with the space it took.
        left = spare - frame.len();
    }
    // 143-byte reads: a top-up every ~21 reads (3 KiB used of 4 KiB), not every read.
    assert!(
        (5..=20).contains(&top_ups),
        "{top_ups} top-ups in 200 reads"
    );
}

#[test]
fn receive_buffer_handles_frames_split_across_reads() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    let wire = [msg(1, b"first"), msg(2, b"second")].concat();
    for chunk in wire.chunks(6) {
        server.receive_buffer().extend_from_slice(chunk);
        server.handle_received(t);
    }
    assert_eq!(
        messages(&drain(&mut server)),
        vec![
            (0, 1, Bytes::from_static(b"first")),
            (1, 2, Bytes::from_static(b"second"))
        ]
    );
    assert_eq!(server.stats().bytes_received, wire.len() as u64);
}

#[test]
fn receive_buffer_grows_in_bounded_steps_for_a_large_announced_frame() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            read_chunk: 4096,
            ..server_cfg()
        },
        t,
    );
    let mut header = vec![0xd9, 0x23];
    header.extend((9u64 * 1024 * 1024).to_le_bytes()); // allowed, but only announced
    server.handle_bytes(&header, t);
    assert!(!server.is_closed());
    let buf = server.receive_buffer();
    assert!(
        buf.capacity() <= 1024 * 1024,
        "reserved {} bytes for a frame the peer has not sent",
        buf.capacity()
    );
    assert!(buf.capacity() - buf.len() >= 4096);
}

/// A peer-chosen length field near `u64::MAX` passes the decoder when `max_frame_len` is
/// `u64::MAX` (a valid configuration: "no limit"); the next `receive_buffer` then computes
/// `10 + len` in `Decoder::bytes_needed`, which overflows (a panic in debug builds).
#[test]
fn huge_length_field_without_a_limit_does_not_panic() {
    let t = Instant::now();
    let mut server = open(
        ConnectionConfig {
            max_frame_len: u64::MAX,
            ..server_cfg()
        },
        t,
    );
    let mut header = vec![0xd9, 0x23];
    header.extend(u64::MAX.to_le_bytes());
    server.handle_bytes(&header, t);
    server.handle_bytes(&[0], t);
    assert!(!server.is_closed());
    assert!(server.wants_read());
}

#[test]
fn send_encoded_shares_pre_encoded_bytes() {
    let t = Instant::now();
    let shared = encode_to_bytes(
        Marks::default(),
        FrameKind::Message,
        9,
        &[5u8; 4096],
        u64::MAX,
    )
    .unwrap();
    let mut a = open(server_cfg(), t);
    let mut b = open(server_cfg(), t);
    a.send(1, Bytes::from_static(b"before"), t).unwrap();
    a.send_encoded(shared.clone(), t).unwrap();
    a.send(1, Bytes::from_static(b"after"), t).unwrap();
    b.send_encoded(shared.clone(), t).unwrap();

    for conn in [&a, &b] {
        let mut slots = [&[][..]; 16];
        let n = conn.transmit_chunks(&mut slots);
        assert!(
            slots[..n].iter().any(|c| c.as_ptr() == shared.as_ptr()),
            "pre-encoded bytes were copied"
        );
    }
    let out = flush(&mut a, t);
    let mut d = Decoder::new(Marks::default(), u64::MAX);
    let mut buf = BytesMut::from(&out[..]);
    let bodies: Vec<_> = std::iter::from_fn(|| d.decode(&mut buf).unwrap())
        .map(|f| (f.method, f.body.len()))
        .collect();
    assert_eq!(bodies, [(1, 6), (9, 4096), (1, 5)]);
    assert_eq!(flush(&mut b, t), &shared[..]);
}

#[test]
fn close_with_a_reason_answers_earlier_requests_first() {
    // The router's close policy for an unknown method: the request before it is answered,
    // then the connection closes with the reason.
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    server.handle_bytes(&[msg(1, b"known"), msg(9, b"unknown")].concat(), t);
    let events = drain(&mut server);
    let ids: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(r) => Some((r.id, r.method)),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [(RequestId(0), 1), (RequestId(1), 9)]);
    server.close_with(CloseReason::UnknownMethod { method: 9 }, t);
    server.complete(RequestId(1), None, t).unwrap();
    assert_eq!(drain(&mut server), vec![], "request 0 still in flight");
    server
        .complete(RequestId(0), Some((1, Bytes::from_static(b"known"))), t)
        .unwrap();
    let wire = flush(&mut server, t);
    assert_eq!(wire, msg(1, b"known"));
    peer_answers_the_close(&mut server, t);
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::UnknownMethod { method: 9 })]
    );
}

/// A server that frees its buffers after 5 s of quiet, every other timer off.
fn releasing(idle: Option<Duration>) -> ConnectionConfig {
    ConnectionConfig {
        release_buffers_after: Some(secs(5)),
        idle_timeout: idle,
        ..server_cfg()
    }
}

/// The peer sends `body` at `at`; the server echoes it (queued, not written).
fn echo_queued(server: &mut Connection, body: &[u8], at: Instant) {
    server.handle_bytes(&msg(1, body), at);
    for e in drain(server) {
        let req = request(&e).clone();
        server.complete(req.id, Some((1, req.body)), at).unwrap();
    }
}

#[test]
fn quiet_connection_frees_its_buffers_at_the_deadline() {
    let t = Instant::now();
    let mut server = open(releasing(Some(secs(60))), t);
    // Nothing allocated, nothing to free: no extra timer.
    assert_eq!(server.buffer_capacity(), 0);
    assert_eq!(server.poll_timeout(), Some(t + secs(60)));

    echo_queued(&mut server, b"ping", t + secs(1));
    assert_eq!(flush(&mut server, t + secs(2)), msg(1, b"ping"));
    let held = server.buffer_capacity();
    assert!(held >= 1024, "{held} bytes held");
    // Five seconds after the last bytes moved (the write), before the idle timeout.
    let deadline = t + secs(7);
    assert_eq!(server.poll_timeout(), Some(deadline));
    server.handle_timeout(deadline - NS);
    assert_eq!(server.buffer_capacity(), held);
    server.handle_timeout(deadline);
    assert_eq!(server.buffer_capacity(), 0);
    assert!(drain(&mut server).is_empty());
    assert_eq!(
        server.poll_timeout(),
        Some(t + secs(61)),
        "only the idle timer"
    );

    // The next read allocates again and the connection carries on.
    echo_queued(&mut server, b"again", t + secs(30));
    assert_eq!(flush(&mut server, t + secs(30)), msg(1, b"again"));
    assert!(server.buffer_capacity() > 0);
    assert_eq!(server.poll_timeout(), Some(t + secs(35)));
    assert_eq!(server.stats().messages_received, 2);

    // Closing frees both buffers too.
    echo_queued(&mut server, b"last", t + secs(31));
    server.close(t + secs(31));
    flush(&mut server, t + secs(31));
    peer_answers_the_close(&mut server, t + secs(31));
    assert_eq!(drain(&mut server), [Event::Closed(CloseReason::Local)]);
    assert_eq!(server.buffer_capacity(), 0);
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn buffers_are_kept_while_they_hold_bytes() {
    let t = Instant::now();
    let mut server = open(releasing(None), t);
    // Half a frame waits in the receive buffer: nothing is freed however long it waits.
    let frame = msg(1, b"split in two");
    server.handle_bytes(&frame[..9], t);
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(t + secs(3600));
    assert!(server.buffer_capacity() > 0);
    server.handle_bytes(&frame[9..], t + secs(3600));
    let events = drain(&mut server);
    assert_eq!(&request(&events[0]).body[..], b"split in two");

    // Output waits for the socket: nothing is freed either.
    let at = t + secs(3600);
    server.complete(RequestId(0), None, at).unwrap();
    server.send(2, Bytes::from_static(b"queued"), at).unwrap();
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(at + secs(3600));
    assert_eq!(server.pending_transmit(), msg(2, b"queued").len());
    let written = t + secs(7300);
    assert_eq!(flush(&mut server, written), msg(2, b"queued"));
    assert_eq!(server.poll_timeout(), Some(written + secs(5)));
}

#[test]
fn bytes_moving_either_way_postpone_the_release() {
    let t = Instant::now();
    let mut server = open(releasing(None), t);
    echo_queued(&mut server, b"ping", t);
    // A partial write is progress; the deadline runs from the last byte written.
    server.handle_written(4, t + secs(4));
    assert_eq!(server.poll_timeout(), None, "output still queued");
    flush(&mut server, t + secs(8));
    assert_eq!(server.poll_timeout(), Some(t + secs(13)));
    // A message with no reply: the bytes received count.
    server.handle_bytes(&msg(1, b"no reply"), t + secs(12));
    for e in drain(&mut server) {
        server.complete(request(&e).id, None, t + secs(12)).unwrap();
    }
    assert_eq!(server.poll_timeout(), Some(t + secs(17)));
    // Sending and writing a frame at t + 16 postpones it again.
    server
        .send(3, Bytes::from_static(b"news"), t + secs(16))
        .unwrap();
    flush(&mut server, t + secs(16));
    assert_eq!(server.poll_timeout(), Some(t + secs(21)));
    server.handle_timeout(t + secs(17));
    assert!(
        server.buffer_capacity() > 0,
        "freed while bytes kept moving"
    );
    server.handle_timeout(t + secs(21));
    assert_eq!(server.buffer_capacity(), 0);
}

#[test]
fn release_after_none_keeps_the_buffers() {
    let t = Instant::now();
    let mut server = open(server_cfg(), t);
    echo_queued(&mut server, b"ping", t);
    flush(&mut server, t);
    let held = server.buffer_capacity();
    assert!(held > 0);
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(t + secs(3600));
    assert_eq!(server.buffer_capacity(), held);
}

/// Two connections take turns with one pair of spare buffers; what either holds (a partial
/// frame, output the socket did not take) stays with it until written or completed.
#[test]
fn connections_share_spare_buffers_and_keep_what_they_hold() {
    let t = Instant::now();
    let mut spare = SpareBuffers::default();
    let (mut a, mut b) = (open(server_cfg(), t), open(server_cfg(), t));

    // A whole echo, written: `a` gives both buffers away and holds nothing.
    a.take_buffers(&mut spare);
    echo_queued(&mut a, b"one", t);
    assert_eq!(flush(&mut a, t), msg(1, b"one"));
    a.give_buffers(&mut spare);
    assert_eq!(a.buffer_capacity(), 0);
    assert!(spare.capacity() > 0);

    // `b` takes them, keeps half a frame and an unwritten reply: it gives nothing back.
    b.take_buffers(&mut spare);
    assert_eq!(spare.capacity(), 0);
    echo_queued(&mut b, b"two", t);
    let half = msg(1, b"three");
    b.handle_bytes(&half[..7], t);
    b.give_buffers(&mut spare);
    assert_eq!(spare.capacity(), 0);
    assert!(b.buffer_capacity() > 0);

    // Meanwhile `a` allocates buffers of its own, and gives them to the empty spare.
    a.take_buffers(&mut spare);
    echo_queued(&mut a, b"four", t);
    assert_eq!(flush(&mut a, t), msg(1, b"four"));
    a.give_buffers(&mut spare);
    assert_eq!(a.buffer_capacity(), 0);

    // `b` still has its reply and completes its frame.
    assert_eq!(flush(&mut b, t), msg(1, b"two"));
    b.handle_bytes(&half[7..], t);
    let events = drain(&mut b);
    assert_eq!(request(&events[0]).body, &b"three"[..]);
}

/// A receive buffer grown for a large frame is not handed on: the spare pair would keep it
/// for the thread's life.
#[test]
fn a_buffer_grown_for_a_large_frame_is_freed_not_shared() {
    let t = Instant::now();
    let mut spare = SpareBuffers::default();
    let mut server = open(server_cfg(), t);
    server.take_buffers(&mut spare);
    let body = vec![7u8; 300 << 10];
    let bytes = msg(1, &body);
    for piece in bytes.chunks(16 << 10) {
        let buf = server.receive_buffer();
        buf.extend_from_slice(piece);
        server.handle_received(t);
    }
    let events = drain(&mut server);
    assert_eq!(request(&events[0]).body.len(), body.len());
    drop(events);
    server.give_buffers(&mut spare);
    assert_eq!(server.buffer_capacity(), 0);
    assert_eq!(
        spare.capacity(),
        0,
        "the grown buffer was freed, not shared"
    );
    // A buffer of the usual size is shared.
    server.take_buffers(&mut spare);
    echo_queued(&mut server, b"small", t);
    flush(&mut server, t);
    server.give_buffers(&mut spare);
    assert!(spare.capacity() > 0);
}

/// Every loop turn reads most of a `Connection`; with 1,024 busy connections those lines
/// miss the cache on every turn (docs/benchmark-history.md, seventh and eighth rounds), so
/// its size is kept in check: growing it should be a decision, not an accident. (424: the
/// correlation ids of tagged requests in flight, a deque boxed on first use. 496: the
/// message size histogram, `MessageSizes`, of which a turn reads two words; its buckets
/// are read only when a message outside 1 to 128 bytes came.)
#[cfg(target_pointer_width = "64")]
#[test]
fn a_connection_fits_in_496_bytes() {
    assert!(
        size_of::<Connection>() <= 496,
        "{}",
        size_of::<Connection>()
    );
}

/// A connection closing on its side lingers once flushed: its write side ends once, input
/// is read and discarded (not decoded), and it closes with its reason at the peer's end of
/// stream, at the linger timeout, or after the linger's byte bound, whichever comes first.
#[test]
fn a_local_close_lingers_until_the_peer_ends_the_timeout_or_the_byte_bound() {
    let t = Instant::now();
    let linger = lynn_proto::Linger {
        timeout: secs(2),
        max_bytes: 100,
    };
    let cfg = ConnectionConfig {
        linger: Some(linger),
        ..server_cfg()
    };
    let bad = [0x00, 0x23];

    // The peer's end of stream.
    let mut server = open(cfg.clone(), t);
    server.handle_bytes(&bad, t);
    assert!(server.is_lingering() && server.wants_read() && !server.is_open());
    assert_eq!(server.poll_timeout(), Some(t + secs(2)));
    assert!(server.poll_shutdown_write());
    assert!(!server.poll_shutdown_write(), "once");
    server.handle_bytes(&msg(1, b"ignored"), t);
    assert_eq!(
        drain(&mut server),
        vec![],
        "input while lingering is discarded"
    );
    server.handle_eof(t + secs(1));
    assert!(matches!(
        drain(&mut server)[..],
        [Event::Closed(CloseReason::Protocol(_))]
    ));

    // The timeout.
    let mut server = open(cfg.clone(), t);
    server.close(t);
    server.handle_timeout(t + secs(1));
    assert!(server.is_lingering());
    server.handle_timeout(t + secs(2));
    assert_eq!(drain(&mut server), vec![Event::Closed(CloseReason::Local)]);

    // The byte bound.
    let mut server = open(cfg.clone(), t);
    server.close(t);
    server.handle_bytes(&[0u8; 99], t);
    assert!(server.is_lingering());
    server.handle_bytes(&[0u8; 1], t);
    assert_eq!(drain(&mut server), vec![Event::Closed(CloseReason::Local)]);
    assert_eq!(server.buffer_capacity(), 0, "closing frees the buffers");

    // A reset from the peer ends it too, with the reason it was closing for.
    let mut server = open(cfg.clone(), t);
    server.close(t);
    server.handle_transport_error(std::io::ErrorKind::ConnectionReset, t);
    assert_eq!(drain(&mut server), vec![Event::Closed(CloseReason::Local)]);

    // Without lingering, closed at once; and the peer's own end of stream never lingers.
    let mut server = open(
        ConnectionConfig {
            linger: None,
            ..cfg.clone()
        },
        t,
    );
    server.close(t);
    assert!(!server.poll_shutdown_write());
    assert_eq!(drain(&mut server), vec![Event::Closed(CloseReason::Local)]);
    let mut server = open(cfg, t);
    server.handle_eof(t);
    assert_eq!(
        drain(&mut server),
        vec![Event::Closed(CloseReason::PeerClosed)]
    );
}
