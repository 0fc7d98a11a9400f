//! Properties of `Connection` under simulated time: split invariance, timer honesty,
//! idle-timeout liveness and send-queue bounds.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::codec::{OVERHEAD, encode_to_bytes};
use lynn_proto::{
    CloseReason, Connection, ConnectionConfig, ConnectionStats, CorrelationId, DecodeError,
    DecodeErrorKind, Event, FrameKind, Instant, Liveness, Marks, Request, RequestId, SendError,
    SendFull, SpareBuffers,
};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// A server with every timer off.
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

fn kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        4 => Just(FrameKind::Message),
        1 => Just(FrameKind::Heartbeat),
        1 => prop_oneof![Just(FrameKind::Request), Just(FrameKind::Reply)],
        1 => any::<u8>().prop_map(FrameKind::from_byte),
    ]
}

fn small_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => proptest::collection::vec(any::<u8>(), 24..400),
    ]
}

fn close_count(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Closed(_)))
        .count()
}

/// `Closed` at most once, and only as the last event.
fn check_close_is_last(events: &[Event]) -> Result<(), TestCaseError> {
    prop_assert!(close_count(events) <= 1, "{events:?}");
    if let Some(i) = events.iter().position(|e| matches!(e, Event::Closed(_))) {
        prop_assert_eq!(i, events.len() - 1, "events after Closed: {:?}", events);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Split invariance

#[derive(Clone, Debug)]
enum Damage {
    None,
    Garbage(Vec<u8>),
    Flip(usize, u8),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        1 => proptest::collection::vec(any::<u8>(), 1..20).prop_map(Damage::Garbage),
        2 => (any::<usize>(), 1u8..=255).prop_map(|(p, m)| Damage::Flip(p, m)),
        1 => any::<usize>().prop_map(Damage::Truncate),
    ]
}

fn split_config(
    max_in_flight: impl Strategy<Value = usize>,
) -> impl Strategy<Value = ConnectionConfig> {
    (
        prop_oneof![
            2 => Just(Marks::default()),
            1 => (any::<u16>(), any::<u16>()).prop_map(|(header, tail)| Marks { header, tail }),
        ],
        max_in_flight,
        1usize..5,
        1usize..64,
    )
        .prop_map(
            |(marks, max_in_flight, max_queued_events, read_chunk)| ConnectionConfig {
                marks,
                // Some generated frames exceed this, so LengthTooLarge also occurs.
                max_frame_len: 5 + 300,
                max_in_flight,
                max_queued_events,
                read_chunk,
                ..quiet()
            },
        )
}

/// Feeds `stream` in chunks of the given sizes (cycled), draining events after every chunk
/// and completing each message at once; then signals end of stream. With `lend`, the
/// connection takes [`SpareBuffers`] for each chunk and gives them back after it, and
/// between chunks a second connection takes them for a few bytes of its own (a partial
/// frame every other time, which it keeps).
fn run_stream(
    cfg: &ConnectionConfig,
    now: Instant,
    stream: &[u8],
    sizes: &[usize],
    lend: bool,
) -> Result<Vec<Event>, TestCaseError> {
    let mut conn = Connection::new(cfg.clone(), now).unwrap();
    let mut spare = SpareBuffers::default();
    let mut rival = Connection::new(cfg.clone(), now).unwrap();
    let rival_stream = support::frame_with(cfg.marks, FrameKind::Heartbeat, 0, b"").repeat(64);
    let mut rival_bytes = rival_stream.chunks(7).cycle();
    let mut events = Vec::new();
    let mut drain = |conn: &mut Connection| {
        while let Some(e) = conn.poll_event() {
            if let (Event::Message(r), true) = (&e, cfg.max_in_flight > 0) {
                conn.complete(r.id, None, now).unwrap();
            }
            events.push(e);
        }
    };
    let mut pos = 0;
    let mut sizes = sizes.iter().cycle();
    while pos < stream.len() && !conn.is_closed() {
        prop_assert!(conn.wants_read(), "a drained open connection reads");
        let n = (*sizes.next().unwrap()).min(stream.len() - pos);
        if lend {
            conn.take_buffers(&mut spare);
        }
        conn.handle_bytes(&stream[pos..pos + n], now);
        pos += n;
        drain(&mut conn);
        if lend {
            conn.give_buffers(&mut spare);
            rival.take_buffers(&mut spare);
            rival.handle_bytes(rival_bytes.next().unwrap(), now);
            while let Some(e) = rival.poll_event() {
                prop_assert_eq!(e, Event::Heartbeat);
            }
            rival.give_buffers(&mut spare);
        }
    }
    conn.handle_eof(now);
    drain(&mut conn);
    prop_assert!(conn.is_closed());
    check_close_is_last(&events)?;
    prop_assert_eq!(close_count(&events), 1);
    Ok(events)
}

fn frames() -> impl Strategy<Value = Vec<(FrameKind, u16, Vec<u8>)>> {
    proptest::collection::vec((kind(), any::<u16>(), small_body()), 0..10)
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![1usize]),
        3 => proptest::collection::vec(1usize..50, 1..10),
    ]
}

/// The stream of `frames` as damaged by `damage` gives the same events whole and in chunks,
/// and, if undamaged, the events the frames call for.
fn check_split(
    cfg: &ConnectionConfig,
    frames: &[(FrameKind, u16, Vec<u8>)],
    damage: Damage,
    sizes: &[usize],
) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let mut stream = Vec::new();
    for (kind, method, body) in frames {
        stream.extend(support::frame_with(cfg.marks, *kind, *method, body));
    }
    let intact = matches!(damage, Damage::None);
    match damage {
        Damage::None => {}
        Damage::Garbage(g) => stream.extend(g),
        Damage::Flip(p, m) if !stream.is_empty() => {
            let p = p % stream.len();
            stream[p] ^= m;
        }
        Damage::Truncate(n) if !stream.is_empty() => {
            stream.truncate(stream.len() - n % stream.len())
        }
        Damage::Flip(..) | Damage::Truncate(_) => {}
    }

    let whole = run_stream(cfg, now, &stream, &[usize::MAX], false)?;
    let chunked = run_stream(cfg, now, &stream, sizes, false)?;
    prop_assert_eq!(&chunked, &whole);
    let lent = run_stream(cfg, now, &stream, sizes, true)?;
    prop_assert_eq!(&lent, &whole);

    if intact {
        // What the frames say, independently of the connection.
        let mut expected = Vec::new();
        let mut offset = 0u64;
        let mut next_id = 0;
        let mut reason = CloseReason::PeerClosed;
        for (index, (kind, method, body)) in frames.iter().enumerate() {
            let len = body.len() as u64 + 5;
            if len > cfg.max_frame_len {
                reason = CloseReason::Protocol(DecodeError {
                    offset,
                    frame: index as u64,
                    kind: DecodeErrorKind::LengthTooLarge {
                        len,
                        max: cfg.max_frame_len,
                    },
                });
                break;
            }
            match kind {
                FrameKind::Message => {
                    expected.push(Event::Message(Request {
                        id: RequestId(next_id),
                        method: *method,
                        body: Bytes::from(body.clone()),
                        reply_to: None,
                    }));
                    next_id += 1;
                }
                FrameKind::Request | FrameKind::Reply if body.len() < 4 => {
                    reason = CloseReason::Protocol(DecodeError {
                        offset,
                        frame: index as u64,
                        kind: DecodeErrorKind::MissingCorrelationId { len },
                    });
                    break;
                }
                FrameKind::Request | FrameKind::Reply => {
                    let id = u32::from_le_bytes(body[..4].try_into().unwrap());
                    expected.push(Event::Message(Request {
                        id: RequestId(next_id),
                        method: *method,
                        body: Bytes::from(body[4..].to_vec()),
                        reply_to: (*kind == FrameKind::Reply).then_some(CorrelationId(id)),
                    }));
                    next_id += 1;
                }
                FrameKind::Heartbeat => expected.push(Event::Heartbeat),
                FrameKind::Unknown(_) => {}
            }
            offset += len + 10;
        }
        expected.push(Event::Closed(reason));
        prop_assert_eq!(&whole, &expected);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(160))]

    /// The same bytes in any chunking give the same events, errors and close reason included,
    /// also when the connection shares its buffers with another between chunks.
    #[test]
    fn split_invariance(
        cfg in split_config(prop_oneof![Just(0usize), 1usize..4, Just(16)]),
        frames in frames(),
        damage in damage(),
        sizes in chunk_sizes(),
    ) {
        check_split(&cfg, &frames, damage, &sizes)?;
    }
}

// ---------------------------------------------------------------------------------------
// Timer honesty

fn opt_ms(lo: u64, hi: u64) -> impl Strategy<Value = Option<Duration>> {
    proptest::option::weighted(0.7, (lo..hi).prop_map(Duration::from_millis))
}

fn timer_config() -> impl Strategy<Value = ConnectionConfig> {
    (
        (
            // Heartbeats no more often than every 100 ms, so that letting time run out
            // takes a bounded number of timer firings.
            opt_ms(100, 5_000),
            opt_ms(1, 8_000),
            opt_ms(1, 5_000),
            opt_ms(1, 5_000),
            opt_ms(1, 5_000),
        ),
        prop_oneof![Just(Liveness::AnyFrame), Just(Liveness::HeartbeatOnly)],
        OVERHEAD..300,
        prop_oneof![Just(SendFull::Reject), Just(SendFull::Close)],
        0usize..3,
        1usize..4,
    )
        .prop_map(
            |((hb, idle, read, write, release), liveness, limit, send_full, in_flight, queued)| {
                ConnectionConfig {
                    heartbeat_interval: hb,
                    idle_timeout: idle,
                    liveness,
                    read_timeout: read,
                    write_timeout: write,
                    release_buffers_after: release,
                    send_queue_limit: limit,
                    send_full,
                    max_in_flight: in_flight,
                    max_queued_events: queued,
                    ..ConnectionConfig::server()
                }
            },
        )
}

#[derive(Clone, Debug)]
enum Op {
    /// The next `n` bytes of the peer's stream, if the connection wants to read.
    Recv(usize),
    Send(usize),
    Written(usize),
    /// Complete one outstanding request (index modulo their count), with a reply or not.
    Complete(usize, bool),
    /// Let this many milliseconds pass, running every timer that falls due.
    Advance(u64),
    /// Call `handle_timeout` this far (per mille) between now and the next deadline.
    Early(u32),
    Close,
    Eof,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..60).prop_map(Op::Recv),
        2 => (0usize..80).prop_map(Op::Send),
        2 => (0usize..200).prop_map(Op::Written),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, r)| Op::Complete(i, r)),
        4 => (0u64..6_000).prop_map(Op::Advance),
        2 => (0u32..1000).prop_map(Op::Early),
        1 => Just(Op::Close),
        1 => Just(Op::Eof),
    ]
}

/// Everything a runtime can observe without changing the connection.
#[derive(Debug, PartialEq)]
struct Observed {
    output: Vec<u8>,
    timeout: Option<Instant>,
    closed: bool,
    wants_read: bool,
    wants_write: bool,
    in_flight: usize,
    stats: ConnectionStats,
    buffer_capacity: usize,
}

fn observe(conn: &Connection) -> Observed {
    Observed {
        output: support::output(conn),
        timeout: conn.poll_timeout(),
        closed: conn.is_closed(),
        wants_read: conn.wants_read(),
        wants_write: conn.wants_write(),
        in_flight: conn.in_flight(),
        stats: *conn.stats(),
        buffer_capacity: conn.buffer_capacity(),
    }
}

struct Driver {
    conn: Connection,
    now: Instant,
    events: Vec<Event>,
    outstanding: Vec<RequestId>,
}

impl Driver {
    /// Drains events, remembering delivered requests; returns how many arrived.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(e) = self.conn.poll_event() {
            if let Event::Message(r) = &e
                && self.conn.config().max_in_flight > 0
            {
                self.outstanding.push(r.id);
            }
            self.events.push(e);
            n += 1;
        }
        n
    }

    /// `handle_timeout(at)` at or after the next deadline must produce something or move
    /// the deadline past `at`.
    fn fire(&mut self, at: Instant) -> Result<(), TestCaseError> {
        let before = observe(&self.conn);
        self.conn.handle_timeout(at);
        self.now = self.now.max(at);
        let produced = self.drain();
        let after = observe(&self.conn);
        prop_assert!(
            produced > 0
                || after.output != before.output
                || after.closed != before.closed
                || after.buffer_capacity < before.buffer_capacity
                || after.timeout.is_none_or(|t| t > at),
            "handle_timeout at the deadline did nothing: {:?} -> {:?}",
            before,
            after
        );
        Ok(())
    }

    /// `handle_timeout(at)` before the next deadline must change nothing.
    fn early(&mut self, at: Instant) -> Result<(), TestCaseError> {
        let before = observe(&self.conn);
        prop_assert!(before.timeout.is_none_or(|t| at < t));
        self.conn.handle_timeout(at);
        self.now = self.now.max(at);
        prop_assert_eq!(self.drain(), 0, "events from an early handle_timeout");
        prop_assert_eq!(observe(&self.conn), before);
        Ok(())
    }

    fn advance(&mut self, d: Duration) -> Result<(), TestCaseError> {
        let target = self.now + d;
        for _ in 0..10_000 {
            match self.conn.poll_timeout() {
                Some(t) if t <= target => self.fire(t.max(self.now))?,
                _ => return self.early(target),
            }
        }
        prop_assert!(false, "timers never settled");
        Ok(())
    }
}

fn peer_stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((kind(), any::<u16>(), small_body()), 0..30).prop_map(|frames| {
        frames
            .iter()
            .flat_map(|(k, m, b)| support::frame(*k, *m, b))
            .collect()
    })
}

proptest! {
    #![proptest_config(config(128))]

    /// `poll_timeout` and `handle_timeout` agree exactly, whatever the connection went through.
    #[test]
    fn timer_honesty(
        cfg in timer_config(),
        stream in peer_stream(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let base = Instant::now();
        let mut d = Driver {
            conn: Connection::new(cfg, base).unwrap(),
            now: base,
            events: Vec::new(),
            outstanding: Vec::new(),
        };
        let mut pos = 0;
        for op in ops {
            let now = d.now;
            match op {
                Op::Recv(n) => {
                    if d.conn.wants_read() && pos < stream.len() {
                        let n = n.min(stream.len() - pos);
                        d.conn.handle_bytes(&stream[pos..pos + n], now);
                        pos += n;
                    }
                }
                Op::Send(len) => {
                    let _ = d.conn.send(1, Bytes::from(vec![7; len]), now);
                }
                Op::Written(n) => {
                    let n = n.min(d.conn.pending_transmit());
                    d.conn.handle_written(n, now);
                }
                Op::Complete(i, reply) => {
                    if !d.outstanding.is_empty() {
                        let id = d.outstanding.remove(i % d.outstanding.len());
                        let reply = reply.then(|| (2, Bytes::from_static(b"reply")));
                        d.conn.complete(id, reply, now).unwrap();
                    }
                }
                Op::Advance(ms) => d.advance(Duration::from_millis(ms))?,
                Op::Early(permille) => {
                    if let Some(t) = d.conn.poll_timeout() && t > now {
                        let at = now + (t - now) * permille / 1000;
                        d.early(at)?;
                    }
                }
                Op::Close => d.conn.close(now),
                Op::Eof => d.conn.handle_eof(now),
            }
            d.drain();
            check_close_is_last(&d.events)?;
            if d.conn.is_closed() {
                prop_assert_eq!(d.conn.poll_timeout(), None, "a closed connection has no timers");
                prop_assert_eq!(close_count(&d.events), 1);
            }
        }
        // Finally let time run out: every timer that fires keeps the contract.
        d.advance(Duration::from_secs(60))?;
        check_close_is_last(&d.events)?;
    }
}

// ---------------------------------------------------------------------------------------
// Liveness

/// Drains events into `events`, completing each message at once (without a reply).
fn drain_completing(conn: &mut Connection, events: &mut Vec<Event>, now: Instant) {
    while let Some(e) = conn.poll_event() {
        if let Event::Message(r) = &e
            && conn.config().max_in_flight > 0
        {
            conn.complete(r.id, None, now).unwrap();
        }
        events.push(e);
    }
}

fn liveness() -> impl Strategy<Value = Liveness> {
    prop_oneof![3 => Just(Liveness::AnyFrame), 1 => Just(Liveness::HeartbeatOnly)]
}

/// Gaps as fractions (per mille) of the timeout, always below it, and each frame's kind.
fn arrivals() -> impl Strategy<Value = Vec<(u64, FrameKind)>> {
    proptest::collection::vec((0u64..1000, kind()), 0..40)
}

fn steps() -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::vec(0u64..30_000, 0..10)
}

/// Feeds frames at the given gaps, completing each message at once, and checks that the
/// connection closes exactly when the last sign of life is `idle_timeout` old.
fn check_liveness(
    timeout_ms: u64,
    liveness: Liveness,
    max_in_flight: usize,
    arrivals: Vec<(u64, FrameKind)>,
    steps: Vec<u64>,
) -> Result<(), TestCaseError> {
    let timeout = Duration::from_millis(timeout_ms);
    let base = Instant::now();
    let mut conn = Connection::new(
        ConnectionConfig {
            idle_timeout: Some(timeout),
            liveness,
            max_in_flight,
            ..quiet()
        },
        base,
    )
    .unwrap();
    let counts = |k: FrameKind| match liveness {
        Liveness::AnyFrame => true,
        Liveness::HeartbeatOnly => k == FrameKind::Heartbeat,
    };
    let mut events = Vec::new();

    let mut now = base;
    let mut last_alive = base;
    let mut closed = false;
    for (permille, kind) in arrivals {
        let at = now + timeout * permille as u32 / 1000;
        let deadline = last_alive + timeout;
        prop_assert_eq!(conn.poll_timeout(), Some(deadline));
        if deadline <= at {
            // Only possible when some frames do not count (heartbeat-only mode).
            prop_assert_eq!(liveness, Liveness::HeartbeatOnly);
            conn.handle_timeout(deadline - Duration::from_nanos(1));
            drain_completing(&mut conn, &mut events, now);
            prop_assert_eq!(close_count(&events), 0, "closed early");
            conn.handle_timeout(deadline);
            drain_completing(&mut conn, &mut events, deadline);
            prop_assert_eq!(close_count(&events), 1);
            closed = true;
            break;
        }
        conn.handle_timeout(at);
        conn.handle_bytes(&support::frame(kind, 1, b"long enough for an id"), at);
        drain_completing(&mut conn, &mut events, at);
        prop_assert_eq!(close_count(&events), 0);
        prop_assert!(conn.wants_read());
        now = at;
        if counts(kind) {
            last_alive = at;
        }
    }
    if !closed {
        let deadline = last_alive + timeout;
        prop_assert_eq!(conn.poll_timeout(), Some(deadline));
        let mut steps = steps.into_iter().map(Duration::from_millis);
        for step in steps.by_ref().chain([Duration::from_secs(3600)]) {
            now += step;
            conn.handle_timeout(now);
            drain_completing(&mut conn, &mut events, now);
            let expect = usize::from(now >= deadline);
            prop_assert_eq!(
                close_count(&events),
                expect,
                "at {:?} of {:?}",
                now - base,
                deadline - base
            );
        }
    }
    prop_assert_eq!(
        events.last(),
        Some(&Event::Closed(CloseReason::IdleTimeout))
    );
    prop_assert_eq!(close_count(&events), 1);
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// Signs of life closer together than `idle_timeout` never close the connection; after
    /// the last one it closes exactly once, exactly at `last + idle_timeout`.
    #[test]
    fn idle_liveness(
        timeout_ms in 2u64..20_000,
        liveness in liveness(),
        // A limit of 1 pauses reading at every message; see `idle_liveness_in_flight_one`.
        max_in_flight in prop_oneof![Just(0usize), Just(2), Just(16)],
        arrivals in arrivals(),
        steps in steps(),
    ) {
        check_liveness(timeout_ms, liveness, max_in_flight, arrivals, steps)?;
    }

    /// As `idle_liveness` with `max_in_flight = 1`: every message pauses reading until it is
    /// completed, even if only for an instant.
    #[test]
    fn idle_liveness_in_flight_one(
        timeout_ms in 2u64..20_000,
        liveness in liveness(),
        arrivals in arrivals(),
        steps in steps(),
    ) {
        check_liveness(timeout_ms, liveness, 1, arrivals, steps)?;
    }
}

// ---------------------------------------------------------------------------------------
// Backpressure

#[derive(Clone, Debug)]
enum BpOp {
    Recv(u16, usize),
    Send(u16, usize),
    SendEncoded(usize),
    Complete(usize, Option<usize>),
    Written(usize),
    Tick(u64),
}

fn body_len() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..60, 1 => 60usize..300, 1 => 1000usize..1500]
}

fn bp_op() -> impl Strategy<Value = BpOp> {
    prop_oneof![
        3 => (any::<u16>(), 0usize..40).prop_map(|(m, l)| BpOp::Recv(m, l)),
        4 => (any::<u16>(), body_len()).prop_map(|(m, l)| BpOp::Send(m, l)),
        1 => body_len().prop_map(BpOp::SendEncoded),
        3 => (any::<usize>(), proptest::option::of(body_len()))
            .prop_map(|(i, r)| BpOp::Complete(i, r)),
        3 => (0usize..400).prop_map(BpOp::Written),
        1 => (0u64..3000).prop_map(BpOp::Tick),
    ]
}

/// What the send queue should hold, frame by frame, and what it has produced.
#[derive(Default)]
struct QueueModel {
    /// Queued frames in order: encoded length and whether it is a reply.
    queued: VecDeque<(usize, bool)>,
    /// Bytes of the front frame already written.
    front_written: usize,
    /// Every frame accepted, in order.
    accepted: Vec<(FrameKind, u16, Vec<u8>)>,
    /// Largest frame queued through `send`, `send_encoded` or the heartbeat timer.
    largest_own: usize,
    /// Completed requests waiting for earlier ones, and the next id to release.
    done: BTreeMap<u64, Option<Vec<u8>>>,
    next_release: u64,
}

impl QueueModel {
    fn push(&mut self, kind: FrameKind, method: u16, body: Vec<u8>, reply: bool) {
        let len = OVERHEAD + body.len();
        if !reply {
            self.largest_own = self.largest_own.max(len);
        }
        self.queued.push_back((len, reply));
        self.accepted.push((kind, method, body));
    }

    fn pending(&self) -> usize {
        self.queued.iter().map(|q| q.0).sum::<usize>() - self.front_written
    }

    fn reply_pending(&self) -> usize {
        let mut front = self.front_written;
        let mut sum = 0;
        for &(len, reply) in &self.queued {
            if reply {
                sum += len - front;
            }
            front = 0;
        }
        sum
    }

    fn written(&mut self, mut n: usize) {
        while n > 0 {
            let (len, _) = self.queued[0];
            let take = n.min(len - self.front_written);
            self.front_written += take;
            n -= take;
            if self.front_written == len {
                self.queued.pop_front();
                self.front_written = 0;
            }
        }
    }

    fn complete(&mut self, id: u64, reply: Option<Vec<u8>>) {
        self.done.insert(id, reply);
        while let Some(reply) = self.done.remove(&self.next_release) {
            if let Some(body) = reply {
                self.push(FrameKind::Message, 0xbeef, body, true);
            }
            self.next_release += 1;
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// The send queue stays within its bound (plus one frame plus in-order replies), refuses
    /// exactly when full, announces `Writable` once, and every accepted frame leaves exactly
    /// once, in order.
    #[test]
    fn backpressure_bounds(
        limit in OVERHEAD..400,
        max_in_flight in 1usize..5,
        heartbeat in proptest::option::of(500u64..3000),
        ops in proptest::collection::vec(bp_op(), 1..80),
    ) {
        let base = Instant::now();
        let cfg = ConnectionConfig {
            send_queue_limit: limit,
            max_in_flight,
            heartbeat_interval: heartbeat.map(Duration::from_millis),
            ..quiet()
        };
        let marks = cfg.marks;
        let mut conn = Connection::new(cfg, base).unwrap();
        let mut now = base;
        let mut model = QueueModel::default();
        let mut wire = Vec::new();
        let mut outstanding: Vec<RequestId> = Vec::new();
        let mut owed_writable = false;

        for op in ops {
            match op {
                BpOp::Recv(method, len) => {
                    if conn.wants_read() {
                        conn.handle_bytes(&support::msg(method, &vec![1; len]), now);
                    }
                }
                BpOp::Send(method, len) => {
                    let before = conn.pending_transmit();
                    let body = vec![(len % 251) as u8; len];
                    let r = conn.send(method, Bytes::from(body.clone()), now);
                    if before < limit {
                        prop_assert_eq!(r, Ok(()));
                        model.push(FrameKind::Message, method, body, false);
                    } else {
                        prop_assert_eq!(r, Err(SendError::QueueFull { queued: before, limit }));
                        owed_writable = true;
                    }
                }
                BpOp::SendEncoded(len) => {
                    let before = conn.pending_transmit();
                    let body = vec![3; len];
                    let frame =
                        encode_to_bytes(marks, FrameKind::Message, 77, &body, u64::MAX).unwrap();
                    let r = conn.send_encoded(frame, now);
                    if before < limit {
                        prop_assert_eq!(r, Ok(()));
                        model.push(FrameKind::Message, 77, body, false);
                    } else {
                        prop_assert!(matches!(r, Err(SendError::QueueFull { .. })), "{:?}", r);
                        owed_writable = true;
                    }
                }
                BpOp::Complete(i, reply) => {
                    if !outstanding.is_empty() {
                        let id = outstanding.remove(i % outstanding.len());
                        let body = reply.map(|len| vec![9; len]);
                        let reply = body.clone().map(|b| (0xbeef, Bytes::from(b)));
                        conn.complete(id, reply, now).unwrap();
                        model.complete(id.0, body);
                    }
                }
                BpOp::Written(n) => {
                    let n = n.min(conn.pending_transmit());
                    wire.extend_from_slice(&support::output(&conn)[..n]);
                    conn.handle_written(n, now);
                    model.written(n);
                }
                BpOp::Tick(ms) => {
                    now += Duration::from_millis(ms);
                    while let Some(t) = conn.poll_timeout().filter(|&t| t <= now) {
                        let sent = conn.stats().heartbeats_sent;
                        conn.handle_timeout(t);
                        if conn.stats().heartbeats_sent > sent {
                            model.push(FrameKind::Heartbeat, 0, Vec::new(), false);
                        }
                    }
                }
            }

            while let Some(e) = conn.poll_event() {
                match e {
                    Event::Message(r) => outstanding.push(r.id),
                    Event::Writable => {
                        prop_assert!(owed_writable, "Writable without a refused send");
                        prop_assert!(conn.pending_transmit() <= limit / 2);
                        owed_writable = false;
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }

            let pending = conn.pending_transmit();
            prop_assert_eq!(pending, model.pending(), "queue length disagrees with the model");
            prop_assert!(
                pending <= limit + model.largest_own + model.reply_pending(),
                "{} queued: limit {}, largest frame {}, replies {}",
                pending, limit, model.largest_own, model.reply_pending()
            );
            prop_assert!(pending < limit || !conn.wants_read(), "reads while the queue is full");
            prop_assert_eq!(conn.send_capacity(), limit.saturating_sub(pending));
            prop_assert!(conn.in_flight() <= max_in_flight);
            prop_assert!(
                !(owed_writable && pending < limit / 2),
                "Writable owed: {} queued, limit {}",
                pending,
                limit
            );
        }

        // Finish the work and write everything out.
        for _ in 0..1000 {
            if outstanding.is_empty() {
                break;
            }
            let id = outstanding.remove(0);
            conn.complete(id, None, now).unwrap();
            model.complete(id.0, None);
            while let Some(e) = conn.poll_event() {
                if let Event::Message(r) = e {
                    outstanding.push(r.id);
                }
            }
        }
        let out = support::flush(&mut conn, now);
        model.written(out.len());
        wire.extend(out);
        prop_assert_eq!(model.pending(), 0);

        let (frames, err, left) = support::decode_all(marks, &wire);
        prop_assert_eq!((err, left), (None, 0));
        let got: Vec<_> = frames.into_iter().map(|f| (f.kind, f.method, f.body.to_vec())).collect();
        prop_assert_eq!(got, model.accepted);
    }
}
