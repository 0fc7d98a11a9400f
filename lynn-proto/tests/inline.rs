//! `Connection::handle_received_inline` under simulated time: answering in place is
//! indistinguishable on the wire (bytes, stats, request ids) from events plus `complete`;
//! a deferred request in flight holds later messages back so replies stay in request order;
//! inline answering respects the send-queue bound; an oversized reply is refused without
//! closing; replying then deferring counts as answered; inline replies are flushed before a
//! protocol close; inline-answered messages are signs of life for the idle timeout, and
//! their replies start the write timeout when queued.

mod support;

use std::time::Duration;

use bytes::Bytes;
use lynn_proto::codec::OVERHEAD;
use lynn_proto::{
    CloseReason, Connection, ConnectionConfig, ConnectionStats, DecodeError, DecodeErrorKind,
    EncodeError, Event, FrameKind, Inline, InlineMessage, Instant, Liveness, Marks, RequestId,
};
use proptest::prelude::*;
use support::{drain, flush, frame, messages, msg, output, peer_answers_the_close};

/// Largest body the tests send.
const MAX_BODY: usize = 300;

/// A server with every timer off; tests turn on what they exercise.
fn quiet() -> ConnectionConfig {
    ConnectionConfig {
        heartbeat_interval: None,
        idle_timeout: None,
        read_timeout: None,
        write_timeout: None,
        release_buffers_after: None,
        ..ConnectionConfig::server()
    }
}

/// Methods the inline callback answers; the others are deferred.
fn inline_method(method: u16) -> bool {
    method < 3
}

/// Methods whose handler echoes; the others are answered without a reply.
fn echoes(method: u16) -> bool {
    method != 2 && method != 4
}

/// The inline handler: answers `inline_method`s (echo or silence), logging their ids, and
/// defers the rest.
fn handler(log: &mut Vec<u64>) -> impl FnMut(&mut InlineMessage<'_>) -> Inline + '_ {
    move |m| {
        if !inline_method(m.method()) {
            return Inline::Deferred;
        }
        if echoes(m.method()) {
            let body = m.body();
            m.reply(m.method(), body);
        }
        log.push(m.id().0);
        Inline::Answered
    }
}

/// What one drive of a connection produced.
#[derive(Debug, PartialEq)]
struct Run {
    wire: Vec<u8>,
    /// Ids answered inline and ids of message events, in the order they were seen.
    ids: Vec<u64>,
    heartbeats: usize,
    stats: ConnectionStats,
}

/// Feeds `stream` in reads of the `reads` sizes (cycled) while the connection wants to read,
/// completes every message event at once (echo), writes output in `writes`-sized pieces,
/// then ends the stream. With `inline`, reads go through `handle_received_inline(handler)`.
fn drive(
    cfg: &ConnectionConfig,
    now: Instant,
    stream: &[u8],
    reads: &[usize],
    writes: &[usize],
    inline: bool,
) -> Result<Run, TestCaseError> {
    let mut conn = Connection::new(cfg.clone(), now).unwrap();
    let (mut wire, mut ids, mut heartbeats) = (Vec::new(), Vec::new(), 0);
    let (mut pos, mut step) = (0, 0);
    while pos < stream.len() || conn.wants_write() || conn.has_events() {
        prop_assert!(step < 100_000, "no progress");
        if pos < stream.len() && conn.wants_read() {
            let n = reads[step % reads.len()].min(stream.len() - pos);
            conn.receive_buffer()
                .extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            if inline {
                conn.handle_received_inline(now, handler(&mut ids));
            } else {
                conn.handle_received(now);
            }
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(r) => {
                    ids.push(r.id.0);
                    let reply = echoes(r.method).then_some((r.method, r.body));
                    conn.complete(r.id, reply, now).unwrap();
                }
                Event::Heartbeat => heartbeats += 1,
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        // Never more than the bound plus one reply: inline answering and delivery both
        // stop at the bound, and every delivered message is completed at once.
        prop_assert!(conn.pending_transmit() < cfg.send_queue_limit + OVERHEAD + MAX_BODY);
        if conn.wants_write() {
            let all = output(&conn);
            let n = writes[step % writes.len()].min(all.len());
            wire.extend_from_slice(&all[..n]);
            conn.handle_written(n, now);
        }
        step += 1;
    }
    conn.handle_eof(now);
    let closed = drain(&mut conn);
    prop_assert_eq!(closed, [Event::Closed(CloseReason::PeerClosed)]);
    Ok(Run {
        wire,
        ids,
        heartbeats,
        stats: *conn.stats(),
    })
}

fn equivalence_config() -> impl Strategy<Value = ConnectionConfig> {
    (
        prop_oneof![Just(16usize), 1usize..4],
        prop_oneof![Just(64usize), 1usize..4],
        prop_oneof![Just(1usize << 20), OVERHEAD..600],
    )
        .prop_map(
            |(max_in_flight, max_queued_events, send_queue_limit)| ConnectionConfig {
                max_in_flight,
                max_queued_events,
                send_queue_limit,
                ..quiet()
            },
        )
}

fn frames() -> impl Strategy<Value = Vec<(FrameKind, u16, Vec<u8>)>> {
    let kind = prop_oneof![
        6 => Just(FrameKind::Message),
        1 => Just(FrameKind::Heartbeat),
        1 => (5u8..).prop_map(FrameKind::from_byte),
    ];
    let body = proptest::collection::vec(any::<u8>(), 0..MAX_BODY);
    proptest::collection::vec((kind, 0u16..6, body), 0..40)
}

fn sizes(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![usize::MAX]),
        3 => proptest::collection::vec(1..max, 1..8),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    })]

    /// Inline answering and deferring give the same wire bytes, stats, heartbeats and ids
    /// (0, 1, 2, ... in the order seen) as events plus `complete` for every message.
    #[test]
    fn inline_is_equivalent_to_events(
        cfg in equivalence_config(),
        frames in frames(),
        reads in sizes(700),
        writes in sizes(900),
    ) {
        let now = Instant::now();
        let (mut stream, mut expected_wire, mut messages) = (Vec::new(), Vec::new(), 0u64);
        for (kind, method, body) in &frames {
            stream.extend(frame(*kind, *method, body));
            if *kind == FrameKind::Message {
                if echoes(*method) {
                    expected_wire.extend(msg(*method, body));
                }
                messages += 1;
            }
        }
        let inline = drive(&cfg, now, &stream, &reads, &writes, true)?;
        let plain = drive(&cfg, now, &stream, &reads, &writes, false)?;
        prop_assert_eq!(&inline.wire, &expected_wire);
        prop_assert_eq!(&inline.ids, &(0..messages).collect::<Vec<_>>());
        prop_assert_eq!(inline.stats.messages_received, messages);
        prop_assert_eq!(&inline, &plain);
    }
}

/// Feeds `bytes` and answers through `handler`, returning the ids it answered.
fn feed_inline(conn: &mut Connection, bytes: &[u8], now: Instant) -> Vec<u64> {
    let mut answered = Vec::new();
    conn.receive_buffer().extend_from_slice(bytes);
    conn.handle_received_inline(now, handler(&mut answered));
    answered
}

fn ids(events: &[Event]) -> Vec<u64> {
    messages(events).into_iter().map(|(id, ..)| id).collect()
}

#[test]
fn deferred_request_in_flight_holds_later_messages_back() {
    let now = Instant::now();
    let mut conn = Connection::new(quiet(), now).unwrap();
    assert!(feed_inline(&mut conn, &msg(5, b"slow"), now).is_empty());
    assert_eq!(ids(&drain(&mut conn)), [0]);
    assert_eq!(conn.in_flight(), 1);

    // Inline methods, but request 0 still owes its reply: they come as events.
    let later = [msg(1, b"a"), msg(0, b"b")].concat();
    assert!(feed_inline(&mut conn, &later, now).is_empty());
    assert_eq!(ids(&drain(&mut conn)), [1, 2]);
    // Completed out of order: nothing may leave before request 0's reply.
    for (id, body) in [(2, "b"), (1, "a"), (0, "slow")] {
        assert!(!conn.wants_write());
        let reply = Some((9, Bytes::from(body)));
        conn.complete(RequestId(id), reply, now).unwrap();
    }
    assert_eq!(conn.in_flight(), 0);

    // Nothing owed any more: the next read is answered in place.
    assert_eq!(feed_inline(&mut conn, &msg(1, b"c"), now), [3]);
    assert!(drain(&mut conn).is_empty());
    let expected = [msg(9, b"slow"), msg(9, b"a"), msg(9, b"b"), msg(1, b"c")].concat();
    assert_eq!(flush(&mut conn, now), expected);
    assert_eq!(conn.stats().messages_received, 4);
    assert_eq!(conn.stats().frames_sent, 4);
}

#[test]
fn inline_answering_stops_at_the_send_queue_bound() {
    let now = Instant::now();
    let limit = 100;
    let cfg = ConnectionConfig {
        send_queue_limit: limit,
        ..quiet()
    };
    let mut conn = Connection::new(cfg, now).unwrap();
    let body = [7u8; 30]; // 45-byte replies: the third crosses the bound
    let reply_len = OVERHEAD + body.len();
    let stream: Vec<u8> = (0..6).flat_map(|_| msg(1, &body)).collect();

    assert_eq!(feed_inline(&mut conn, &stream, now), [0, 1, 2]);
    assert_eq!(conn.pending_transmit(), 3 * reply_len); // under limit + one reply
    assert!(!conn.wants_read());
    // The rest are queued, and withheld until output is written.
    assert!(!conn.has_events());
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.stats().messages_received, 6);

    let mut wire = flush(&mut conn, now);
    let mut delivered = Vec::new();
    while let Some(event) = conn.poll_event() {
        let Event::Message(r) = event else {
            panic!("unexpected {event:?}")
        };
        delivered.push(r.id.0);
        conn.complete(r.id, Some((r.method, r.body)), now).unwrap();
        assert!(conn.pending_transmit() < limit + reply_len);
    }
    assert_eq!(delivered, [3, 4, 5]);
    wire.extend(flush(&mut conn, now));
    assert_eq!(wire, stream, "echoes in request order");

    // Written out and nothing owed: answered in place again.
    assert_eq!(feed_inline(&mut conn, &msg(0, b"x"), now), [6]);
    assert_eq!(flush(&mut conn, now), msg(0, b"x"));
}

#[test]
fn reply_too_large_for_the_peer_is_refused_and_the_message_answered() {
    let now = Instant::now();
    let cfg = ConnectionConfig {
        peer_max_frame_len: 5 + 10,
        ..quiet()
    };
    let mut conn = Connection::new(cfg, now).unwrap();
    let mut seen = Vec::new();
    conn.receive_buffer()
        .extend_from_slice(&[msg(1, &[1; 11]), msg(1, &[2; 10])].concat());
    conn.handle_received_inline(now, |m| {
        let body = m.body();
        m.reply(m.method(), body);
        seen.push((m.id().0, m.replied(), m.refused().cloned()));
        Inline::Answered
    });
    let too_large = EncodeError::BodyTooLarge {
        body_len: 11,
        max_body_len: 10,
    };
    assert_eq!(seen, [(0, false, Some(too_large)), (1, true, None)]);
    assert!(drain(&mut conn).is_empty());
    assert!(!conn.is_closed() && conn.wants_read());
    assert_eq!(flush(&mut conn, now), msg(1, &[2; 10]));
    assert_eq!(conn.stats().messages_received, 2);
    assert_eq!(conn.stats().frames_sent, 1);
}

#[test]
fn a_refused_reply_followed_by_one_that_fits_is_answered() {
    let now = Instant::now();
    let cfg = ConnectionConfig {
        peer_max_frame_len: 5 + 10,
        ..quiet()
    };
    let mut conn = Connection::new(cfg, now).unwrap();
    conn.receive_buffer().extend_from_slice(&msg(1, b"hi"));
    let mut seen = None;
    conn.handle_received_inline(now, |m| {
        m.reply(1, &[0; 11]);
        assert!(m.refused().is_some() && !m.replied());
        m.reply(1, b"short");
        seen = Some((m.replied(), m.refused().cloned()));
        Inline::Answered
    });
    assert_eq!(seen, Some((true, None)), "answered: nothing to report");
    assert_eq!(flush(&mut conn, now), msg(1, b"short"));
}

#[test]
fn deferring_after_a_reply_counts_as_answered() {
    let now = Instant::now();
    let mut conn = Connection::new(quiet(), now).unwrap();
    conn.receive_buffer()
        .extend_from_slice(&[msg(3, b"one"), msg(3, b"two")].concat());
    let mut offered = 0;
    conn.handle_received_inline(now, |m| {
        offered += 1;
        m.reply(8, b"ack");
        Inline::Deferred
    });
    assert_eq!(offered, 2, "the second is offered: nothing is owed");
    assert!(drain(&mut conn).is_empty());
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(flush(&mut conn, now), msg(8, b"ack").repeat(2));
    assert_eq!(conn.stats().messages_received, 2);
    // Ids 0 and 1 were taken.
    assert_eq!(feed_inline(&mut conn, &msg(1, b""), now), [2]);
}

#[test]
fn a_withdrawn_reply_leaves_nothing_behind() {
    let now = Instant::now();
    let mut conn = Connection::new(quiet(), now).unwrap();
    conn.receive_buffer()
        .extend_from_slice(&[msg(1, b"kept"), msg(2, b"failed"), msg(1, b"too")].concat());
    conn.handle_received_inline(now, |m| {
        let body = m.body();
        m.reply(m.method(), body);
        if m.method() == 2 {
            // What a runtime does for a handler that failed after replying.
            m.withdraw_reply();
            assert!(!m.replied());
        }
        Inline::Answered
    });
    assert!(drain(&mut conn).is_empty());
    assert_eq!(
        flush(&mut conn, now),
        [msg(1, b"kept"), msg(1, b"too")].concat()
    );
    assert_eq!(conn.stats().frames_sent, 2);
}

#[test]
fn invalid_frame_closes_after_flushing_inline_replies() {
    let now = Instant::now();
    let mut conn = Connection::new(quiet(), now).unwrap();
    let good = [msg(0, b"a"), msg(1, b"bb"), msg(2, b"ccc")].concat();
    let stream = [&good[..], &[0u8; 13]].concat();
    assert_eq!(feed_inline(&mut conn, &stream, now), [0, 1, 2]);
    assert!(!conn.wants_read());

    // Closed only once every reply is written (method 2 answers without one).
    let replies = [msg(0, b"a"), msg(1, b"bb")].concat();
    assert_eq!(output(&conn), replies);
    conn.handle_written(replies.len() - 1, now);
    assert_eq!(conn.poll_event(), None);
    assert!(!conn.is_closed());
    conn.handle_written(1, now);
    let reason = CloseReason::Protocol(DecodeError {
        offset: good.len() as u64,
        frame: 3,
        kind: DecodeErrorKind::BadHeaderMark {
            expected: Marks::default().header,
            found: 0,
        },
    });
    peer_answers_the_close(&mut conn, now);
    assert_eq!(drain(&mut conn), [Event::Closed(reason)]);
    assert_eq!(conn.stats().messages_received, 3);
    assert_eq!(conn.stats().invalid_frames, 1);
}

#[test]
fn inline_answered_messages_are_signs_of_life() {
    let t0 = Instant::now();
    let (idle, write) = (Duration::from_secs(10), Duration::from_secs(3));
    for liveness in [Liveness::AnyFrame, Liveness::HeartbeatOnly] {
        let cfg = ConnectionConfig {
            idle_timeout: Some(idle),
            write_timeout: Some(write),
            liveness,
            ..quiet()
        };
        let mut conn = Connection::new(cfg, t0).unwrap();
        assert_eq!(conn.poll_timeout(), Some(t0 + idle));
        let t1 = t0 + Duration::from_secs(6);
        assert_eq!(feed_inline(&mut conn, &msg(0, b"ping"), t1), [0]);
        // The reply's write timeout runs from when it was queued, not from t0.
        assert_eq!(conn.poll_timeout(), Some(t1 + write), "{liveness:?}");
        flush(&mut conn, t1);
        let deadline = match liveness {
            Liveness::AnyFrame => t1 + idle,
            Liveness::HeartbeatOnly => t0 + idle,
        };
        assert_eq!(conn.poll_timeout(), Some(deadline), "{liveness:?}");
        conn.handle_timeout(deadline - Duration::from_nanos(1));
        assert!(drain(&mut conn).is_empty(), "{liveness:?}");
        conn.handle_timeout(deadline);
        assert_eq!(
            drain(&mut conn),
            [Event::Closed(CloseReason::IdleTimeout)],
            "{liveness:?}"
        );
    }
}
