//! The connection target: one [`Connection`] driven by arbitrary operations and checked
//! against a reference model of what it must deliver, send and report.
//!
//! The model follows the connection's decoding exactly: frames read but not yet decoded
//! wait in `frames` (decoding stops while the event queue is full), `events` is the event
//! queue, and reads through `handle_received_inline` lend messages to a callback playing an
//! arbitrary [`Answer`]; the model predicts which messages are offered, what their replies
//! put on the wire, every counter, and when the buffers of a quiet connection are freed.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};

use crate::codec::{self, Decoder, Frame, FrameKind, Marks};
use crate::{
    CloseReason, CompleteError, Connection, ConnectionConfig, ConnectionStats, DecodeError,
    EncodeError, Event, Inline, InlineMessage, Instant, Liveness, Request, RequestId, SendError,
    SendFull,
};

/// Optional timeout of `1 + n % 64` milliseconds.
fn millis(n: Option<u8>) -> Option<Duration> {
    n.map(|n| Duration::from_millis(1 + u64::from(n % 64)))
}

#[derive(Arbitrary, Debug)]
struct Setup {
    marks: Marks,
    /// `5 + n % 2100`: room for bodies above the send queue's sharing threshold.
    max_frame_len: u16,
    peer_max_frame_len: u16,
    heartbeat: Option<u8>,
    idle: Option<u8>,
    read: Option<u8>,
    write: Option<u8>,
    liveness: Liveness,
    /// `15 + n % 300`.
    send_queue_limit: u16,
    send_full: SendFull,
    /// `n % 5`.
    max_in_flight: u8,
    /// `1 + n % 8`.
    max_queued_events: u8,
    /// `1 + n % 64`.
    read_chunk: u8,
    /// Added last; the saved inputs were re-encoded with `None` (see `fuzz/README.md`).
    release: Option<u8>,
}

impl Setup {
    fn config(&self) -> ConnectionConfig {
        ConnectionConfig {
            marks: self.marks,
            max_frame_len: 5 + u64::from(self.max_frame_len % 2100),
            peer_max_frame_len: 5 + u64::from(self.peer_max_frame_len % 2100),
            heartbeat_interval: millis(self.heartbeat),
            idle_timeout: millis(self.idle),
            liveness: self.liveness,
            read_timeout: millis(self.read),
            write_timeout: millis(self.write),
            release_buffers_after: millis(self.release),
            send_queue_limit: 15 + usize::from(self.send_queue_limit % 300),
            send_full: self.send_full,
            max_in_flight: usize::from(self.max_in_flight % 5),
            max_queued_events: 1 + usize::from(self.max_queued_events % 8),
            read_chunk: 1 + usize::from(self.read_chunk % 64),
            // The model closes at `Closed` after a local close; lingering (reading and
            // discarding until the peer's end of stream) is covered by the connection tests.
            linger: None,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Body {
    Small(Vec<u8>),
    /// `1000 + n % 1100` bytes of `fill`: around the send queue's sharing threshold.
    Large {
        len: u16,
        fill: u8,
    },
}

impl Body {
    fn bytes(&self) -> Bytes {
        match self {
            Body::Small(v) => Bytes::copy_from_slice(v),
            Body::Large { len, fill } => Bytes::from(vec![*fill; 1000 + usize::from(len % 1100)]),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PeerKind {
    Message,
    Heartbeat,
    Unknown(u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The peer queues a frame (valid framing; it may exceed our `max_frame_len`).
    PeerFrame {
        kind: PeerKind,
        method: u16,
        body: Body,
    },
    /// The peer queues raw bytes.
    PeerGarbage(Vec<u8>),
    /// Read up to `len` (0: all) of the peer's bytes, if the connection wants to read.
    Deliver {
        len: u16,
        via_buffer: bool,
    },
    /// Drain events.
    Drain,
    /// Write up to `len` (0: all) bytes of at most `slots % 4 + 1` chunks.
    Write {
        len: u16,
        slots: u8,
    },
    Send {
        method: u16,
        body: Body,
    },
    /// Pre-encoded frames (valid for the peer).
    SendEncoded(Vec<(u16, Body)>),
    /// Complete a delivered request (`pick` among those waiting) or a bogus id.
    Complete {
        pick: u8,
        bogus: bool,
        reply: Option<(u16, Body)>,
    },
    /// Check that `handle_timeout` just before the deadline does nothing, then run it at
    /// the deadline.
    AdvanceToDeadline,
    /// Let `n * 100` microseconds pass, then call `handle_timeout`.
    AdvanceBy(u16),
    Close,
    Eof,
    TransportError,
    Abort(u16),
    /// Like `Deliver` through the receive buffer, with `handle_received_inline`: the `k`-th
    /// message offered in this call plays `answers[k % len]` (an echo when empty). Last, so
    /// that saved inputs keep their meaning.
    DeliverInline {
        len: u16,
        answers: Vec<Answer>,
    },
}

/// What the in-place callback does with a message: up to three `steps`, then it returns
/// `Inline::Deferred` if `defer`, else `Inline::Answered`.
#[derive(Arbitrary, Debug)]
struct Answer {
    steps: Vec<Step>,
    defer: bool,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// `msg.reply(method, body)`: refused if too large for the peer, ignored after a reply.
    Reply(u16, Body),
    /// `msg.reply(method, msg.body())`, with the body lent from the receive buffer.
    Echo(u16),
    /// `msg.withdraw_reply()`.
    Withdraw,
}

/// How `Deliver` hands bytes to the connection.
enum Read<'a> {
    Slice,
    Buffer,
    Inline(&'a [Answer]),
}

/// A message the in-place callback was offered, and what it left: `None` if it deferred
/// without a reply, else the reply it queued, if any.
struct Offer {
    id: RequestId,
    method: u16,
    body: Bytes,
    answered: Option<Option<Reply>>,
}

/// Plays `answer` on `msg`, checking `reply`, `replied`, `refused` and `withdraw_reply`
/// along the way; returns the callback's result and what it left (see [`Offer`]).
fn play(
    answer: &Answer,
    msg: &mut InlineMessage<'_>,
    max_body: u64,
) -> (Inline, Option<Option<Reply>>) {
    let mut reply: Option<Reply> = None;
    for step in answer.steps.iter().take(3) {
        let owned;
        let (method, body) = match step {
            Step::Reply(method, body) => {
                owned = body.bytes();
                (*method, &owned[..])
            }
            Step::Echo(method) => (*method, msg.body()),
            Step::Withdraw => {
                msg.withdraw_reply();
                reply = None;
                assert!(!msg.replied(), "replied() after withdraw_reply");
                continue;
            }
        };
        msg.reply(method, body);
        if reply.is_none() {
            if body.len() as u64 > max_body {
                let e = EncodeError::BodyTooLarge {
                    body_len: body.len(),
                    max_body_len: max_body,
                };
                assert_eq!(msg.refused(), Some(&e), "reply too large for the peer");
            } else {
                reply = Some((method, Bytes::copy_from_slice(body)));
            }
        }
        assert_eq!(msg.replied(), reply.is_some(), "replied() after reply");
    }
    let inline = if answer.defer {
        Inline::Deferred
    } else {
        Inline::Answered
    };
    // A callback that replied cannot defer: the message counts as answered.
    let answered = (!answer.defer || reply.is_some()).then_some(reply);
    (inline, answered)
}

/// A reply: method and body.
type Reply = (u16, Bytes);

/// What a call that must change nothing is compared by.
type Snapshot = (
    Option<Instant>,
    usize,
    bool,
    bool,
    usize,
    ConnectionStats,
    usize,
    usize,
);

/// What was true when the connection became closed.
#[derive(Debug, Clone, Copy)]
struct Transition {
    at: Instant,
    in_timeout: bool,
    flushed: bool,
    requests_done: bool,
    /// Every frame read was decoded and every event delivered.
    inbound_done: bool,
}

struct Harness {
    conn: Connection,
    cfg: ConnectionConfig,
    now: Instant,
    /// What the connection's counters must be.
    stats: ConnectionStats,
    // Inbound.
    wire: Vec<u8>,
    ref_buf: BytesMut,
    ref_dec: Decoder,
    /// Frames read that the connection has not decoded yet.
    frames: VecDeque<Frame>,
    /// The error the reference decoder found after `frames`.
    ref_error: Option<DecodeError>,
    /// The connection's event queue, `Closed` aside.
    events: VecDeque<Event>,
    /// After end of stream, until every frame read is decoded.
    eof_pending: bool,
    next_id: u64,
    last_fed: Instant,
    last_alive_fed: Instant,
    /// When bytes were last read or written (buffers are released after a quiet spell).
    last_io: Instant,
    // Application.
    /// Delivered requests not yet released: id and, once completed, the reply.
    in_flight: VecDeque<(u64, Option<Option<Reply>>)>,
    released: u64,
    // Outbound.
    expected: Vec<u8>,
    written: usize,
    out_buf: BytesMut,
    out_dec: Decoder,
    largest_frame: usize,
    largest_reply: usize,
    want_writable: bool,
    last_write_progress: Instant,
    /// When a frame was last queued (a heartbeat fills a silence after it).
    last_queued: Instant,
    // Lifecycle.
    close_while_open: bool,
    eof_while_open: bool,
    slow_consumer: bool,
    transport: Option<io::ErrorKind>,
    aborted: Option<u16>,
    in_timeout: bool,
    transition: Option<Transition>,
    closed_events: usize,
}

pub(super) fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let setup = Setup::arbitrary(u)?;
    let ops = Vec::<Op>::arbitrary(u)?;
    let cfg = setup.config();
    let now = Instant::now();
    let conn = Connection::new(cfg.clone(), now).expect("the generated config is valid");
    let mut h = Harness {
        ref_dec: Decoder::new(cfg.marks, cfg.max_frame_len),
        out_dec: Decoder::new(cfg.marks, cfg.peer_max_frame_len),
        conn,
        cfg,
        now,
        stats: ConnectionStats::default(),
        wire: Vec::new(),
        ref_buf: BytesMut::new(),
        frames: VecDeque::new(),
        ref_error: None,
        events: VecDeque::new(),
        eof_pending: false,
        next_id: 0,
        last_fed: now,
        last_alive_fed: now,
        last_io: now,
        in_flight: VecDeque::new(),
        released: 0,
        expected: Vec::new(),
        written: 0,
        out_buf: BytesMut::new(),
        largest_frame: 0,
        largest_reply: 0,
        want_writable: false,
        last_write_progress: now,
        last_queued: now,
        close_while_open: false,
        eof_while_open: false,
        slow_consumer: false,
        transport: None,
        aborted: None,
        in_timeout: false,
        transition: None,
        closed_events: 0,
    };
    h.observe();
    for op in ops {
        h.apply(op);
    }
    h.finish();
    Ok(())
}

impl Harness {
    fn tracking(&self) -> bool {
        self.cfg.max_in_flight > 0
    }

    /// The connection met an invalid frame: it reads no more, delivers and answers the
    /// frames before it, flushes, then closes.
    fn protocol_failed(&self) -> bool {
        self.stats.invalid_frames > 0
    }

    fn open(&self) -> bool {
        !self.conn.is_closed()
            && !self.close_while_open
            && !self.eof_while_open
            && !self.protocol_failed()
    }

    /// Whether the connection decodes buffered frames (judged before the call that would).
    fn decoding(&self) -> bool {
        !self.conn.is_closed()
            && !self.close_while_open
            && !self.protocol_failed()
            && (!self.eof_while_open || self.eof_pending)
    }

    fn pending(&self) -> usize {
        self.expected.len() - self.written
    }

    /// Whether the connection's receive buffer is empty: every frame read was decoded and
    /// no partial frame waits, or the connection stopped decoding and dropped its input
    /// (close, invalid frame, end of stream once everything before it was decoded).
    fn recv_empty(&self) -> bool {
        let dropped = self.conn.is_closed()
            || self.close_while_open
            || self.protocol_failed()
            || (self.eof_while_open && !self.eof_pending);
        dropped || (self.frames.is_empty() && self.ref_buf.is_empty() && self.ref_error.is_none())
    }

    /// When the connection must free its buffers (if they hold memory): while both are
    /// empty, `release_buffers_after` from the last bytes read or written.
    fn release_deadline(&self) -> Option<Instant> {
        let after = self.cfg.release_buffers_after?;
        (self.recv_empty() && self.pending() == 0).then(|| self.last_io + after)
    }

    /// Whether the next event is a message `poll_event` must hold back.
    fn front_withheld(&self) -> bool {
        matches!(self.events.front(), Some(Event::Message(_)))
            && self.tracking()
            && (self.in_flight.len() >= self.cfg.max_in_flight
                || self.pending() >= self.cfg.send_queue_limit)
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::PeerFrame { kind, method, body } => {
                let kind = match kind {
                    PeerKind::Message => FrameKind::Message,
                    PeerKind::Heartbeat => FrameKind::Heartbeat,
                    // The model knows kinds 1 and 2 and ignored ones; request and reply
                    // frames (3, 4) are the client_calls target's.
                    PeerKind::Unknown(b @ (3 | 4)) => FrameKind::Unknown(b + 2),
                    PeerKind::Unknown(b) => FrameKind::from_byte(b),
                };
                let mut frame = BytesMut::new();
                codec::encode(
                    self.cfg.marks,
                    kind,
                    method,
                    &body.bytes(),
                    u64::MAX,
                    &mut frame,
                )
                .expect("no limit");
                self.wire.extend_from_slice(&frame);
            }
            Op::PeerGarbage(bytes) => self.wire.extend_from_slice(&bytes),
            Op::Deliver { len, via_buffer } => {
                let read = if via_buffer {
                    Read::Buffer
                } else {
                    Read::Slice
                };
                self.deliver(usize::from(len), read);
            }
            Op::DeliverInline { len, answers } => {
                self.deliver(usize::from(len), Read::Inline(&answers));
            }
            Op::Drain => self.drain(),
            Op::Write { len, slots } => self.write(usize::from(len), usize::from(slots % 4) + 1),
            Op::Send { method, body } => self.send(method, body.bytes()),
            Op::SendEncoded(frames) => self.send_encoded(&frames),
            Op::Complete { pick, bogus, reply } => {
                let reply = reply.map(|(m, b)| (m, b.bytes()));
                self.complete_op(pick, bogus, reply);
            }
            Op::AdvanceToDeadline => self.advance_to_deadline(),
            Op::AdvanceBy(n) => {
                self.now += Duration::from_micros(u64::from(n) * 100);
                let deadline = self.conn.poll_timeout();
                self.timeout_at(self.now, deadline);
            }
            Op::Close => self.close(),
            Op::Eof => {
                let open = self.open();
                if open {
                    self.eof_while_open = true;
                    self.eof_pending = true;
                }
                self.conn.handle_eof(self.now);
                self.decode(open, None);
                self.observe();
            }
            Op::TransportError => {
                self.transport.get_or_insert(io::ErrorKind::ConnectionReset);
                self.conn
                    .handle_transport_error(io::ErrorKind::ConnectionReset, self.now);
                self.observe();
            }
            Op::Abort(method) => {
                self.aborted.get_or_insert(method);
                self.conn.abort(CloseReason::UnknownMethod { method });
                self.observe();
            }
        }
    }

    fn close(&mut self) {
        if self.open() {
            // Bytes read and not yet decoded are dropped.
            self.close_while_open = true;
            self.frames.clear();
        }
        self.conn.close(self.now);
        self.observe();
    }

    fn deliver(&mut self, len: usize, read: Read<'_>) {
        // The driving contract: read only while the connection wants to.
        if self.wire.is_empty() || !self.conn.wants_read() {
            return;
        }
        let n = if len == 0 {
            self.wire.len()
        } else {
            len.min(self.wire.len())
        };
        let chunk: Vec<u8> = self.wire.drain(..n).collect();
        let decoding = self.decoding();
        let mut offers = VecDeque::new();
        let inline = matches!(read, Read::Inline(_));
        match read {
            Read::Slice => self.conn.handle_bytes(&chunk, self.now),
            Read::Buffer => {
                self.conn.receive_buffer().extend_from_slice(&chunk);
                self.conn.handle_received(self.now);
            }
            Read::Inline(answers) => {
                let echo = [Answer {
                    steps: vec![Step::Echo(7)],
                    defer: false,
                }];
                let answers = if answers.is_empty() { &echo } else { answers };
                let max_body = codec::max_body_len(self.cfg.peer_max_frame_len);
                self.conn.receive_buffer().extend_from_slice(&chunk);
                self.conn.handle_received_inline(self.now, |msg| {
                    let answer = &answers[offers.len() % answers.len()];
                    let (inline, answered) = play(answer, msg, max_body);
                    offers.push_back(Offer {
                        id: msg.id(),
                        method: msg.method(),
                        body: Bytes::copy_from_slice(msg.body()),
                        answered,
                    });
                    inline
                });
            }
        }
        self.stats.bytes_received += n as u64;
        self.last_fed = self.now;
        self.last_io = self.now;
        self.ref_feed(&chunk);
        self.decode(decoding, inline.then_some(offers));
        self.observe();
    }

    /// Runs the reference decoder over newly read bytes.
    fn ref_feed(&mut self, chunk: &[u8]) {
        if self.ref_error.is_some() {
            return;
        }
        self.ref_buf.extend_from_slice(chunk);
        loop {
            match self.ref_dec.decode(&mut self.ref_buf) {
                Ok(Some(frame)) => self.frames.push_back(frame),
                Ok(None) => return,
                Err(e) => {
                    self.ref_error = Some(e);
                    return;
                }
            }
        }
    }

    /// Replays the connection's decoding in a call that decodes (`decoding`: whether it
    /// could, judged before the call): frames leave `frames` while the event queue has
    /// room. With `offers` (a read through `handle_received_inline`), every message that may
    /// be answered in place (nothing queued, nothing in flight, send queue below its bound)
    /// must be the next offer, and no other.
    fn decode(&mut self, decoding: bool, mut offers: Option<VecDeque<Offer>>) {
        while decoding && self.events.len() < self.cfg.max_queued_events {
            let Some(frame) = self.frames.pop_front() else {
                if self.ref_error.is_some() {
                    self.stats.invalid_frames += 1;
                }
                self.eof_pending = false;
                break;
            };
            self.stats.frames_received += 1;
            let any_frame = self.cfg.liveness == Liveness::AnyFrame;
            let alive = match frame.kind {
                FrameKind::Message => {
                    self.stats.messages_received += 1;
                    self.stats.message_sizes.record(frame.body.len());
                    let req = Request {
                        id: RequestId(self.next_id),
                        method: frame.method,
                        body: frame.body,
                        reply_to: None,
                    };
                    self.next_id += 1;
                    let may_answer = self.events.is_empty()
                        && self.in_flight.is_empty()
                        && self.pending() < self.cfg.send_queue_limit;
                    let answered = match offers.as_mut() {
                        Some(offers) if may_answer => {
                            let offer = offers.pop_front().expect("message not offered in place");
                            let seen = (offer.id, offer.method, &offer.body);
                            assert_eq!(seen, (req.id, req.method, &req.body), "offered message");
                            offer.answered
                        }
                        _ => None,
                    };
                    match answered {
                        Some(reply) => self.answered_in_place(reply),
                        None => self.events.push_back(Event::Message(req)),
                    }
                    any_frame
                }
                FrameKind::Heartbeat => {
                    self.stats.heartbeats_received += 1;
                    self.events.push_back(Event::Heartbeat);
                    true
                }
                FrameKind::Unknown(_) | FrameKind::Request | FrameKind::Reply => {
                    self.stats.unknown_kinds += 1;
                    any_frame
                }
            };
            if alive {
                self.last_alive_fed = self.now;
            }
        }
        let offers = offers.unwrap_or_default();
        assert!(
            offers.is_empty(),
            "{} messages offered in place",
            offers.len()
        );
    }

    /// A message answered in place: delivered and released at once, its reply (if any)
    /// queued in request order (nothing before it is owed).
    fn answered_in_place(&mut self, reply: Option<Reply>) {
        if self.tracking() {
            self.released += 1;
        }
        if let Some(reply) = reply {
            self.queue_reply(reply);
        }
    }

    fn drain(&mut self) {
        loop {
            let withheld = self.front_withheld();
            let was_full = self.events.len() >= self.cfg.max_queued_events;
            let decoding = self.decoding();
            let Some(event) = self.conn.poll_event() else {
                assert!(
                    self.events.is_empty() || withheld,
                    "no event while {:?} is ready",
                    self.events.front()
                );
                self.observe();
                return;
            };
            assert_eq!(self.closed_events, 0, "event {event:?} after Closed");
            if let Event::Closed(reason) = &event {
                self.closed_events += 1;
                self.check_close_reason(reason);
            } else {
                assert!(!withheld, "{event:?} delivered while held back");
                assert_eq!(
                    self.events.pop_front().as_ref(),
                    Some(&event),
                    "event out of order, or not one the connection had"
                );
                if let Event::Message(req) = event
                    && self.tracking()
                {
                    self.in_flight.push_back((req.id.0, None));
                }
                if was_full {
                    self.decode(decoding, None);
                }
            }
            self.observe();
        }
    }

    fn check_close_reason(&self, reason: &CloseReason) {
        let t = self
            .transition
            .expect("Closed delivered before the connection closed");
        let timer = |d: Option<Duration>, since: Instant, what: &str| {
            assert!(t.in_timeout, "{what} outside handle_timeout");
            let d = d.unwrap_or_else(|| panic!("{what} without that timeout configured"));
            assert!(t.at >= since + d, "{what} before its time");
        };
        match reason {
            CloseReason::Local => {
                assert!(self.close_while_open, "Local close without close()");
                assert!(t.flushed, "Local close before the queue was flushed");
                assert!(t.requests_done, "Local close with requests in flight");
                assert!(
                    t.inbound_done,
                    "Local close before every event was delivered"
                );
            }
            CloseReason::PeerClosed | CloseReason::PeerClosedMidFrame { .. } => {
                assert!(self.eof_while_open, "peer close without end of stream");
                assert!(t.flushed, "peer close before the queue was flushed");
                assert!(t.requests_done, "peer close with requests in flight");
                assert_eq!(self.ref_error, None, "peer close hides an invalid frame");
                assert!(
                    t.inbound_done,
                    "peer close before every frame was delivered"
                );
                let buffered = match reason {
                    CloseReason::PeerClosedMidFrame { buffered } => *buffered,
                    _ => 0,
                };
                assert_eq!(buffered, self.ref_buf.len(), "bytes of the partial frame");
            }
            CloseReason::Protocol(e) => {
                assert_eq!(Some(e), self.ref_error.as_ref(), "protocol error");
                assert!(
                    t.inbound_done,
                    "frames before the invalid one were not delivered"
                );
                assert!(t.flushed, "protocol close before replies were flushed");
                assert!(t.requests_done, "protocol close with requests in flight");
                assert_eq!(self.conn.stats().invalid_frames, 1);
                assert!(!t.in_timeout);
            }
            CloseReason::IdleTimeout => timer(self.cfg.idle_timeout, self.last_alive_fed, "idle"),
            CloseReason::ReadTimeout => timer(self.cfg.read_timeout, self.last_fed, "read"),
            CloseReason::WriteTimeout => {
                timer(self.cfg.write_timeout, self.last_write_progress, "write");
                assert!(!t.flushed, "write timeout with nothing queued");
            }
            CloseReason::SlowConsumer => assert!(self.slow_consumer, "unexpected SlowConsumer"),
            CloseReason::UnknownMethod { method } => assert_eq!(Some(*method), self.aborted),
            CloseReason::Transport(kind) => assert_eq!(Some(*kind), self.transport),
            CloseReason::CorrelationLost => panic!("CorrelationLost is a client's decision"),
            CloseReason::FrameBudget => panic!("FrameBudget is a server's decision"),
        }
    }

    fn write(&mut self, len: usize, slots: usize) {
        let mut chunks = vec![&[][..]; slots];
        let n = self.conn.transmit_chunks(&mut chunks);
        let bytes: Vec<u8> = chunks[..n].concat();
        let pending = &self.expected[self.written..];
        assert!(
            pending.starts_with(&bytes),
            "output differs from what was queued"
        );
        assert_eq!(
            n == 0,
            pending.is_empty(),
            "transmit_chunks with output queued"
        );
        let k = if len == 0 {
            bytes.len()
        } else {
            len.min(bytes.len())
        };
        let open = self.open();
        self.conn.handle_written(k, self.now);
        self.written += k;
        self.stats.bytes_sent += k as u64;
        if k > 0 {
            self.last_write_progress = self.now;
            self.last_io = self.now;
        }
        self.out_buf.extend_from_slice(&bytes[..k]);
        loop {
            match self.out_dec.decode(&mut self.out_buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("output is not a valid frame stream for the peer: {e}"),
            }
        }
        if self.want_writable && self.pending() <= self.cfg.send_queue_limit / 2 {
            self.want_writable = false;
            if open {
                self.events.push_back(Event::Writable);
            }
        }
        self.observe();
    }

    /// Bookkeeping for `frame` bytes accepted into the send queue.
    fn queued(&mut self, frame: &[u8], reply: bool) {
        if self.expected.len() == self.written {
            self.last_write_progress = self.now;
        }
        self.expected.extend_from_slice(frame);
        self.last_queued = self.now;
        self.stats.frames_sent += 1;
        if reply {
            self.largest_reply = self.largest_reply.max(frame.len());
        } else {
            self.largest_frame = self.largest_frame.max(frame.len());
        }
    }

    fn queue_reply(&mut self, (method, body): Reply) {
        let mut frame = BytesMut::new();
        let m = self.cfg.marks;
        codec::encode(m, FrameKind::Message, method, &body, u64::MAX, &mut frame)
            .expect("no limit");
        self.queued(&frame, true);
    }

    /// The result `send`/`send_encoded` must give before encoding; updates the model.
    fn room(&mut self) -> Result<(), SendError> {
        if !self.open() {
            return Err(SendError::Closed);
        }
        let (queued, limit) = (self.conn.pending_transmit(), self.cfg.send_queue_limit);
        if queued < limit {
            return Ok(());
        }
        match self.cfg.send_full {
            SendFull::Reject => self.want_writable = true,
            SendFull::Close => self.slow_consumer = true,
        }
        self.stats.send_refused += 1;
        Err(SendError::QueueFull { queued, limit })
    }

    fn send(&mut self, method: u16, body: Bytes) {
        let expected = self.room().and_then(|()| {
            let mut frame = BytesMut::new();
            let (m, max) = (self.cfg.marks, self.cfg.peer_max_frame_len);
            codec::encode(m, FrameKind::Message, method, &body, max, &mut frame)?;
            Ok(frame)
        });
        let result = self.conn.send(method, body, self.now);
        assert_eq!(result, expected.as_ref().map(|_| ()).map_err(Clone::clone));
        if let Ok(frame) = expected {
            self.queued(&frame, false);
        }
        self.observe();
    }

    fn send_encoded(&mut self, frames: &[(u16, Body)]) {
        let mut bytes = BytesMut::new();
        let max_body = codec::max_body_len(self.cfg.peer_max_frame_len) as usize;
        for (method, body) in frames.iter().take(3) {
            let mut body = body.bytes();
            body.truncate(max_body);
            let (m, max) = (self.cfg.marks, self.cfg.peer_max_frame_len);
            codec::encode(m, FrameKind::Message, *method, &body, max, &mut bytes)
                .expect("fits the peer");
        }
        let expected = self.room();
        let result = self.conn.send_encoded(bytes.clone().freeze(), self.now);
        assert_eq!(result, expected);
        if result.is_ok() && !bytes.is_empty() {
            // One chunk counts as one frame sent.
            self.queued(&bytes, false);
        }
        self.observe();
    }

    fn complete_op(&mut self, pick: u8, bogus: bool, reply: Option<Reply>) {
        let waiting: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(id, _)| *id)
            .collect();
        let id = if bogus || waiting.is_empty() {
            // Never delivered, already released (maybe answered in place), or completed and
            // waiting for an earlier one.
            let done: Vec<u64> = self
                .in_flight
                .iter()
                .filter(|(_, r)| r.is_some())
                .map(|(id, _)| *id)
                .collect();
            match pick % 3 {
                0 => self.next_id + u64::from(pick / 3),
                1 if self.released > 0 => self.released - 1 - u64::from(pick) % self.released,
                2 if !done.is_empty() => done[usize::from(pick) % done.len()],
                _ => u64::MAX - u64::from(pick),
            }
        } else {
            waiting[usize::from(pick) % waiting.len()]
        };
        self.complete(id, reply);
    }

    fn complete(&mut self, id: u64, reply: Option<Reply>) {
        let ignored = self.conn.is_closed();
        let result = self.conn.complete(RequestId(id), reply.clone(), self.now);
        if ignored {
            assert_eq!(
                result,
                Ok(()),
                "completions after close are accepted and discarded"
            );
            self.observe();
            return;
        }
        let slot = self
            .in_flight
            .iter_mut()
            .find(|(i, r)| *i == id && r.is_none());
        let Some(slot) = slot else {
            assert_eq!(result, Err(CompleteError::NotInFlight { id }));
            self.observe();
            return;
        };
        let max_body = codec::max_body_len(self.cfg.peer_max_frame_len);
        match reply {
            Some((_, body)) if body.len() as u64 > max_body => {
                let e = EncodeError::BodyTooLarge {
                    body_len: body.len(),
                    max_body_len: max_body,
                };
                assert_eq!(result, Err(CompleteError::Encode(e)));
                slot.1 = Some(None);
            }
            reply => {
                assert_eq!(result, Ok(()));
                slot.1 = Some(reply);
            }
        }
        // Replies leave in request order: release the completed prefix.
        while let Some((_, Some(_))) = self.in_flight.front() {
            let Some((_, Some(reply))) = self.in_flight.pop_front() else {
                unreachable!()
            };
            self.released += 1;
            if let Some(reply) = reply {
                self.queue_reply(reply);
            }
        }
        self.observe();
    }

    fn advance_to_deadline(&mut self) {
        self.drain();
        let Some(deadline) = self.conn.poll_timeout() else {
            return;
        };
        if deadline > self.now {
            // An early call changes nothing observable.
            let early = deadline - Duration::from_nanos(1);
            let before = self.snapshot();
            self.conn.handle_timeout(early);
            assert_eq!(
                self.snapshot(),
                before,
                "handle_timeout before the deadline acted"
            );
            assert_eq!(
                self.conn.poll_event(),
                None,
                "early handle_timeout made an event"
            );
            self.now = deadline;
        }
        self.timeout_at(self.now, Some(deadline));
    }

    fn snapshot(&self) -> Snapshot {
        let c = &self.conn;
        (
            c.poll_timeout(),
            c.pending_transmit(),
            c.wants_read(),
            c.is_closed(),
            c.in_flight(),
            *c.stats(),
            c.send_capacity(),
            c.buffer_capacity(),
        )
    }

    /// `handle_timeout(t)`; with `t` at or past `deadline` it must make progress.
    fn timeout_at(&mut self, t: Instant, deadline: Option<Instant>) {
        let was_closed = self.conn.is_closed();
        let held = self.conn.buffer_capacity();
        self.in_timeout = true;
        self.conn.handle_timeout(t);
        let sent = self.conn.stats().heartbeats_sent - self.stats.heartbeats_sent;
        assert!(sent <= 1, "more than one heartbeat at once");
        if !self.conn.is_closed() && sent == 0 {
            // Nothing else changes the buffers here: they are freed exactly when due.
            let due = self.release_deadline().is_some_and(|d| d <= t);
            let (expected, what) = if due {
                (0, "buffers kept past their release deadline")
            } else {
                (held, "buffers changed before their release deadline")
            };
            assert_eq!(self.conn.buffer_capacity(), expected, "{what}");
        }
        if sent == 1 {
            let mut frame = BytesMut::new();
            let m = self.cfg.marks;
            codec::encode(m, FrameKind::Heartbeat, 0, b"", u64::MAX, &mut frame).expect("empty");
            let interval = self.cfg.heartbeat_interval;
            let interval = interval.expect("heartbeat without an interval");
            assert!(
                t >= self.last_queued + interval,
                "heartbeat before a silence"
            );
            self.stats.heartbeats_sent += 1;
            self.queued(&frame, false);
        }
        self.observe();
        self.in_timeout = false;
        if let Some(d) = deadline
            && d <= t
        {
            let progress = self.conn.is_closed() != was_closed
                || sent == 1
                || self.conn.poll_timeout().is_none_or(|next| next > t);
            assert!(progress, "handle_timeout at the deadline made no progress");
        }
    }

    /// Checks the invariants that hold between any two calls.
    fn observe(&mut self) {
        let c = &self.conn;
        if c.is_closed() && self.transition.is_none() {
            self.transition = Some(Transition {
                at: self.now,
                in_timeout: self.in_timeout,
                flushed: self.expected.len() == self.written,
                requests_done: self.in_flight.is_empty(),
                inbound_done: self.events.is_empty() && self.frames.is_empty(),
            });
            // Closing drops unsent output, undelivered events and requests in flight.
            self.expected.truncate(self.written);
            self.in_flight.clear();
            self.events.clear();
            self.frames.clear();
        }
        assert_eq!(*c.stats(), self.stats, "counters differ from the model");
        if let Some(release) = self.release_deadline()
            && c.buffer_capacity() > 0
        {
            let next = c.poll_timeout();
            assert!(
                next.is_some_and(|t| t <= release),
                "release not in poll_timeout"
            );
        }
        let pending = self.pending();
        assert_eq!(
            c.pending_transmit(),
            pending,
            "queued bytes differ from the model"
        );
        assert_eq!(c.wants_write(), pending > 0);
        let limit = self.cfg.send_queue_limit;
        assert_eq!(c.send_capacity(), limit.saturating_sub(pending));
        let in_flight_room = !self.tracking() || self.in_flight.len() < self.cfg.max_in_flight;
        let wants_read = self.open()
            && self.events.len() < self.cfg.max_queued_events
            && pending < limit
            && in_flight_room;
        assert_eq!(c.wants_read(), wants_read, "wants_read");
        let closed_unseen = c.is_closed() && self.closed_events == 0;
        let ready = !self.events.is_empty() && !self.front_withheld();
        assert_eq!(c.has_events(), closed_unseen || ready, "has_events");
        let bound = limit
            + self.largest_frame.max(self.largest_reply)
            + self.cfg.max_in_flight * self.largest_reply;
        assert!(
            pending <= bound,
            "send queue holds {pending} bytes, bound {bound} (limit {limit}, largest frame {}, \
             largest reply {}, max_in_flight {})",
            self.largest_frame,
            self.largest_reply,
            self.cfg.max_in_flight
        );
        if self.tracking() {
            assert_eq!(c.in_flight(), self.in_flight.len(), "requests in flight");
            assert!(c.in_flight() <= self.cfg.max_in_flight);
        } else {
            assert_eq!(c.in_flight(), 0, "in flight without completion tracking");
        }
        if c.is_closed() {
            assert!(!c.wants_read() && !c.wants_write());
            assert_eq!(c.poll_timeout(), None, "timer after close");
            assert_eq!(c.buffer_capacity(), 0, "buffers kept after close");
        }
    }

    /// Closes the connection and drives it to its `Closed` event like a runtime would,
    /// completing every request; a connection that can make no more progress and has no
    /// timer left, without having closed, is stuck.
    fn finish(&mut self) {
        for round in 0..1000 {
            let before = (self.snapshot(), self.events.len());
            self.drain();
            let waiting: Vec<u64> = self
                .in_flight
                .iter()
                .filter(|(_, r)| r.is_none())
                .map(|(id, _)| *id)
                .collect();
            for id in waiting {
                let reply = (id % 2 == 0).then(|| (7, Bytes::from_static(b"done")));
                self.complete(id, reply);
            }
            while self.conn.wants_write() {
                self.write(0, 8);
            }
            if self.closed_events > 0 {
                break;
            }
            if round == 0 {
                self.close();
            } else if let Some(deadline) = self.conn.poll_timeout() {
                self.now = self.now.max(deadline);
                self.timeout_at(self.now, Some(deadline));
            } else {
                assert!(
                    before != (self.snapshot(), self.events.len()),
                    "connection stuck: closing, nothing to do, no timer, no Closed event \
                     (in flight {}, protocol error {})",
                    self.conn.in_flight(),
                    self.protocol_failed()
                );
            }
        }
        assert_eq!(self.closed_events, 1, "Closed delivered exactly once");
        assert_eq!(self.conn.poll_event(), None);
        let send = self.conn.send(1, Bytes::new(), self.now);
        assert_eq!(send, Err(SendError::Closed));
        assert_eq!(self.conn.complete(RequestId(0), None, self.now), Ok(()));
        self.observe();
    }
}
