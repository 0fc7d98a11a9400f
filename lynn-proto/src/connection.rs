//! [`Connection`]: the state machine of one peer.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::Instant;
use crate::codec::{CorrelationId, Decoder, FrameHead, FrameKind, HEADER_LEN, OVERHEAD};
use crate::config::{ConnectionConfig, Liveness, SendFull};
use crate::error::{CloseReason, CompleteError, ConfigError, SendError};
use crate::inline::{Inline, InlineMessage, Out, Replied};
use crate::lazy_deque::LazyDeque;
use crate::sendq::SendQueue;
use crate::spare::SpareBuffers;
use crate::stats::ConnectionStats;

mod linger;

/// Largest step by which the receive buffer grows ahead of a large frame's bytes.
const MAX_READ_RESERVE: usize = 64 * 1024;

/// Sequence number of a message within its connection, for [`Connection::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A message received from the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Position of this message on the connection (0, 1, 2, …).
    pub id: RequestId,
    /// The route key.
    pub method: u16,
    /// The payload, a slice of the receive buffer.
    pub body: Bytes,
    /// For a reply frame ([`FrameKind::Reply`]), the id of the request it answers. A request
    /// frame's own id is kept by the connection, which tags the reply given to
    /// [`Connection::complete`] with it; the application never sees it.
    pub reply_to: Option<CorrelationId>,
}

/// Something the application must know about. Drained with [`Connection::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message frame. With completion tracking on (`max_in_flight > 0`), pass its id to
    /// [`Connection::complete`] once handled, with or without a reply.
    Message(Request),
    /// A heartbeat frame. The connection already counted it as a sign of life.
    Heartbeat,
    /// The send queue drained to half its bound or below after a refused send.
    Writable,
    /// The connection is over; this is its last event. Drop the socket.
    Closed(CloseReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// No new input is read; finish what was accepted, flush, then close with `reason`.
    /// With `eof`, bytes already buffered are still decoded (the peer sent them before
    /// closing its side).
    Draining {
        /// Boxed: the state is read on every call, the reason once, at the end; unboxed it
        /// made the state 48 bytes rather than 16.
        reason: Box<CloseReason>,
        eof: bool,
    },
    /// Closed on this side and flushed: lingering for the peer's end of stream (see
    /// [`Linger`](crate::Linger)). Boxed like `Draining`'s reason.
    Lingering(Box<linger::Lingering>),
    /// The `Closed` event has been queued.
    Closed,
}

impl State {
    fn draining(reason: CloseReason, eof: bool) -> State {
        State::Draining {
            reason: Box::new(reason),
            eof,
        }
    }
}

/// The state machine of one connection, either side. It performs no IO and reads no clock.
///
/// # Driving contract
///
/// The runtime owns a socket and one `Connection`, and repeats:
///
/// 1. **Input.** When [`wants_read`](Self::wants_read) is true and the socket is readable,
///    read into [`receive_buffer`](Self::receive_buffer) and call
///    [`handle_received`](Self::handle_received) (or pass a slice to
///    [`handle_bytes`](Self::handle_bytes)). On end of stream call
///    [`handle_eof`](Self::handle_eof); on a socket error,
///    [`handle_transport_error`](Self::handle_transport_error). While `wants_read` is false,
///    do not read: TCP then pushes back on the peer.
/// 2. **Events.** Drain [`poll_event`](Self::poll_event) until it returns `None`. Hand
///    messages to the application; [`complete`](Self::complete) each one (with completion
///    tracking on) when it has been handled. Stop after [`Event::Closed`].
/// 3. **Output.** While [`wants_write`](Self::wants_write), write the chunks from
///    [`transmit_chunks`](Self::transmit_chunks) (one vectored write) and report the bytes
///    written with [`handle_written`](Self::handle_written).
/// 4. **Time.** Sleep until [`poll_timeout`](Self::poll_timeout) or the next IO, whichever
///    is first; at the deadline call [`handle_timeout`](Self::handle_timeout).
///
/// # Methods by kind
///
/// | kind | methods |
/// |---|---|
/// | state (no effect) | [`config`](Self::config), [`stats`](Self::stats), [`wants_read`](Self::wants_read), [`wants_write`](Self::wants_write), [`has_events`](Self::has_events), [`is_open`](Self::is_open), [`is_closed`](Self::is_closed), [`in_flight`](Self::in_flight), [`pending_transmit`](Self::pending_transmit), [`send_capacity`](Self::send_capacity), [`buffer_capacity`](Self::buffer_capacity) |
/// | input from the transport | [`receive_buffer`](Self::receive_buffer) + [`handle_received`](Self::handle_received) (or [`handle_received_inline`](Self::handle_received_inline)), [`handle_bytes`](Self::handle_bytes), [`handle_eof`](Self::handle_eof), [`handle_transport_error`](Self::handle_transport_error), [`handle_written`](Self::handle_written), [`handle_timeout`](Self::handle_timeout) |
/// | application calls | [`send`](Self::send), [`send_request`](Self::send_request), [`send_encoded`](Self::send_encoded), [`complete`](Self::complete), [`close`](Self::close), [`close_with`](Self::close_with), [`abort`](Self::abort) |
/// | output to drain | [`poll_event`](Self::poll_event), [`transmit_chunks`](Self::transmit_chunks), [`poll_timeout`](Self::poll_timeout) |
/// | buffer sharing | [`take_buffers`](Self::take_buffers), [`give_buffers`](Self::give_buffers) |
///
/// Optionally, a runtime that drives many connections on one thread brackets each turn
/// with [`take_buffers`](Self::take_buffers) and [`give_buffers`](Self::give_buffers), so
/// that they share one pair of buffers (see [`SpareBuffers`]).
///
/// After *any* call that changes the connection (input, `send`, `complete`, `close`,
/// `handle_written`, `handle_timeout`), drain events and output and re-read `poll_timeout`
/// before waiting again. Every method that takes `now` expects time never to go backwards;
/// an earlier `now` is treated as the latest one seen.
///
/// # Guarantees
///
/// - Events do not depend on how the byte stream was split into reads.
/// - An invalid frame closes the connection with [`CloseReason::Protocol`] after the events
///   of every frame before it have been delivered and their replies flushed; nothing else is
///   affected.
/// - Replies given to `complete` leave in request order, whatever order they come in.
/// - The send queue never holds more than `send_queue_limit` bytes plus one frame plus the
///   replies of the requests in flight.
/// - [`Event::Closed`] is produced exactly once.
#[derive(Debug)]
pub struct Connection {
    /// Shared by every connection made from the same `Arc` (see [`Connection::new`]).
    config: Arc<ConnectionConfig>,
    decoder: Decoder,
    recv: BytesMut,
    /// `recv.len()` after the last decode pass; bytes past it are new.
    recv_seen: usize,
    sendq: SendQueue,
    events: VecDeque<Event>,
    state: State,
    now: Instant,
    /// Last sign of life (see [`Liveness`]).
    last_alive: Instant,
    /// Last time any bytes arrived (for the partial-frame read timeout).
    last_bytes_in: Instant,
    /// Last time a frame was queued (heartbeats fill silences).
    last_sent: Instant,
    /// Last time queued output started or made progress.
    last_write_progress: Instant,
    /// Last time bytes were received or written (idle buffers are released after a quiet
    /// period).
    last_io: Instant,
    /// Since when reading has been paused by backpressure, if it is.
    paused_since: Option<Instant>,
    want_writable: bool,
    /// The receive buffer grew past `read_chunk` for a large frame: freed rather than given
    /// to a [`SpareBuffers`] (which would keep it for its thread's life).
    recv_grown: bool,
    /// Delivered, unreleased requests: ids `released..released + in_flight`.
    in_flight: usize,
    /// `max_in_flight`, or `usize::MAX` when completion tracking is off (`in_flight` then
    /// stays 0), so that `wants_read` needs one comparison.
    in_flight_cap: usize,
    /// Completions that came out of order, waiting for the ones before them. Empty in the
    /// common case (requests completed in order); otherwise index 0 is
    /// `RequestId(released)`, which is `Waiting`, and the last slot is `Done`.
    early: LazyDeque<Slot>,
    released: u64,
    /// Requests in flight that came as request frames (correlation extension), oldest
    /// first, with their ids: the reply that releases one is tagged with it.
    tagged: LazyDeque<(RequestId, CorrelationId)>,
    stats: ConnectionStats,
}

#[derive(Debug)]
enum Slot {
    Waiting,
    Done(Option<(u16, Bytes)>),
}

impl Connection {
    /// A new open connection, as of `now`.
    ///
    /// `config` is a [`ConnectionConfig`] or an `Arc` of one. A server that makes many
    /// connections from one configuration should pass clones of one `Arc`: the limits every
    /// loop turn reads then sit in one place for all connections (in cache) rather than in
    /// each connection's own memory, and each connection is ~150 bytes smaller.
    pub fn new(
        config: impl Into<Arc<ConnectionConfig>>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let config = config.into();
        config.validate()?;
        let in_flight_cap = match config.max_in_flight {
            0 => usize::MAX,
            n => n,
        };
        Ok(Connection {
            decoder: Decoder::new(config.marks, config.max_frame_len),
            config,
            recv: BytesMut::new(),
            recv_seen: 0,
            sendq: SendQueue::default(),
            events: VecDeque::new(),
            state: State::Open,
            now,
            last_alive: now,
            last_bytes_in: now,
            last_sent: now,
            last_write_progress: now,
            last_io: now,
            paused_since: None,
            want_writable: false,
            recv_grown: false,
            in_flight: 0,
            in_flight_cap,
            early: LazyDeque::default(),
            released: 0,
            tagged: LazyDeque::default(),
            stats: ConnectionStats::default(),
        })
    }

    /// The settings this connection runs with.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Counters of this connection.
    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// Whether the runtime should read from the socket now. False while closing, while too
    /// many events wait to be polled, while `max_in_flight` requests are in flight, and
    /// while the send queue is at its bound.
    #[inline]
    pub fn wants_read(&self) -> bool {
        (matches!(self.state, State::Open)
            && self.events.len() < self.config.max_queued_events
            && self.sendq.len() < self.config.send_queue_limit
            && self.in_flight < self.in_flight_cap)
            || matches!(self.state, State::Lingering(_))
    }

    /// Whether output is queued.
    pub fn wants_write(&self) -> bool {
        !self.sendq.is_empty()
    }

    /// Whether [`poll_event`](Self::poll_event) would return an event now.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() && !self.front_withheld()
    }

    /// Whether the next event is a message held back by the in-flight limit or by a full
    /// send queue (each delivered request may add a reply to it).
    fn front_withheld(&self) -> bool {
        matches!(self.events.front(), Some(Event::Message(_)))
            && self.config.max_in_flight > 0
            && (self.in_flight >= self.config.max_in_flight
                || self.sendq.len() >= self.config.send_queue_limit)
    }

    /// Whether the connection is open: not closing, not closed. Only an open connection
    /// accepts new frames.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// Whether the `Closed` event has been produced (it may still wait in `poll_event`).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Requests delivered and not yet released (completed in order).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Bytes waiting to be written.
    pub fn pending_transmit(&self) -> usize {
        self.sendq.len()
    }

    /// Takes the buffers of `spare` (see [`SpareBuffers`]) in place of its own that hold no
    /// memory. Call before handing the connection anything: bytes to read, a completion,
    /// a send, a timeout.
    #[inline]
    pub fn take_buffers(&mut self, spare: &mut SpareBuffers) {
        if self.recv.capacity() == 0 {
            std::mem::swap(&mut self.recv, &mut spare.recv);
        }
        self.sendq.take_staging(&mut spare.staging);
    }

    /// Gives its buffers to `spare` where they are empty and `spare` holds none. Call at
    /// the end of a turn, after writing. A partly received frame or unwritten output stays.
    /// A receive buffer grown past `read_chunk` for a large frame is freed instead.
    #[inline]
    pub fn give_buffers(&mut self, spare: &mut SpareBuffers) {
        if self.recv.is_empty() && spare.recv.capacity() == 0 {
            if self.recv_grown {
                self.free_receive_buffer();
            } else {
                std::mem::swap(&mut self.recv, &mut spare.recv);
            }
            self.recv_seen = 0;
        }
        self.sendq.give_staging(&mut spare.staging);
    }

    /// Bytes the receive buffer needs for a frame larger than `read_chunk` (0 while it is
    /// not grown for one): the whole frame, as its length field announced it (the buffer's
    /// capacity may run ahead of it as it grows, but only the frame's bytes are ever
    /// written, so only they become resident). What a server budgets across connections
    /// ([`FrameBudget`](crate::FrameBudget)), since a peer can make every connection hold up
    /// to `max_frame_len` by sending the start of a large frame and stalling. Budgeting the
    /// whole frame at its start means a connection never holds part of a budget it cannot
    /// complete, so connections waiting for budget cannot block each other.
    #[inline]
    pub fn large_frame_bytes(&self) -> usize {
        if !self.recv_grown {
            return 0;
        }
        self.recv.len() + self.decoder.bytes_needed(&self.recv)
    }

    /// Bytes reserved by the receive buffer and the send queue: what this connection holds
    /// beyond its fixed size, for memory accounting. Not counted: message bodies still held
    /// by the application and shared chunks queued for sending (they are not owned here).
    /// Both buffers are freed after `release_buffers_after` of quiet, and on close.
    pub fn buffer_capacity(&self) -> usize {
        self.recv.capacity() + self.sendq.capacity()
    }

    /// Bytes the send queue accepts before `send` refuses (0 when full).
    pub fn send_capacity(&self) -> usize {
        self.config
            .send_queue_limit
            .saturating_sub(self.sendq.len())
    }

    /// The buffer to read into, with free space reserved. After appending bytes to it, call
    /// [`handle_received`](Self::handle_received). Do not remove bytes from it.
    ///
    /// Free space: at least a quarter of `read_chunk` (topped up to `read_chunk` when it
    /// falls below), and room for the rest of a partly received frame (up to 64 KiB per
    /// step). Not topping up on every read keeps small reads from reclaiming the buffer
    /// each time (a `reserve` call per read, ~120 instructions per request with one
    /// request per read). A buffer freed after `release_buffers_after` of quiet is
    /// allocated again here.
    pub fn receive_buffer(&mut self) -> &mut BytesMut {
        let spare = self.recv.capacity() - self.recv.len();
        let needed = self.decoder.bytes_needed(&self.recv).min(MAX_READ_RESERVE);
        if spare < needed || spare < (self.config.read_chunk / 4).max(1) {
            self.recv.reserve(self.config.read_chunk.max(needed));
            self.recv_grown |= needed > self.config.read_chunk;
        }
        &mut self.recv
    }

    /// [`receive_buffer`](Self::receive_buffer), with what it then holds for a large frame
    /// ([`large_frame_bytes`](Self::large_frame_bytes)): for a runtime that budgets that
    /// memory before it reads into it.
    #[inline]
    pub fn reserve_receive(&mut self) -> (usize, &mut BytesMut) {
        self.receive_buffer();
        (self.large_frame_bytes(), &mut self.recv)
    }

    /// Processes the bytes appended to [`receive_buffer`](Self::receive_buffer).
    pub fn handle_received(&mut self, now: Instant) {
        self.handle_received_with(now, None::<&mut fn(&mut InlineMessage<'_>) -> Inline>);
    }

    /// [`handle_received`](Self::handle_received) that first offers each message to
    /// `inline` to answer in place (see [`inline`](crate::inline)): its body borrowed from
    /// the receive buffer, its reply encoded straight into the send queue, no event.
    ///
    /// A message is offered only when nothing before it still waits for its reply (no
    /// event queued, nothing in flight) and the send queue is below its bound; otherwise,
    /// and when `inline` returns [`Inline::Deferred`], it becomes an [`Event::Message`] as
    /// usual. Each answered message takes the next [`RequestId`] and counts as received
    /// and completed; its replies count as sent.
    #[inline]
    pub fn handle_received_inline<F>(&mut self, now: Instant, mut inline: F)
    where
        F: FnMut(&mut InlineMessage<'_>) -> Inline,
    {
        self.handle_received_with(now, Some(&mut inline));
    }

    #[inline]
    fn handle_received_with<F>(&mut self, now: Instant, inline: Option<&mut F>)
    where
        F: FnMut(&mut InlineMessage<'_>) -> Inline,
    {
        self.tick(now);
        let new = self.recv.len().saturating_sub(self.recv_seen);
        if !self.decoding() {
            // Input after close is not accepted (nor counted), nor kept.
            self.discard_input(new);
            return;
        }
        self.stats.bytes_received += new as u64;
        if new > 0 {
            self.last_bytes_in = self.now;
            self.last_io = self.now;
        }
        self.decode_more_with(inline);
        self.settle();
    }

    /// Copies `data` into the receive buffer and processes it.
    pub fn handle_bytes(&mut self, data: &[u8], now: Instant) {
        self.receive_buffer().extend_from_slice(data);
        self.handle_received(now);
    }

    /// The peer closed its sending side. Frames it sent before are still delivered and
    /// answered; then the connection closes with [`CloseReason::PeerClosed`] (or
    /// [`CloseReason::PeerClosedMidFrame`] if a frame was cut short).
    pub fn handle_eof(&mut self, now: Instant) {
        self.tick(now);
        if let State::Lingering(_) = self.state {
            return self.end_linger();
        }
        if matches!(self.state, State::Open) {
            self.state = State::draining(CloseReason::PeerClosed, true);
            self.decode_more();
        }
        self.settle();
    }

    /// The socket failed: the connection closes at once with [`CloseReason::Transport`]
    /// (or, while lingering, with the reason it was closing for: a peer that resets rather
    /// than closes is what lingering waits for too).
    pub fn handle_transport_error(&mut self, kind: io::ErrorKind, now: Instant) {
        self.tick(now);
        if let State::Lingering(_) = self.state {
            return self.end_linger();
        }
        self.abort(CloseReason::Transport(kind));
    }

    /// The next event, or `None` until the connection changes again.
    ///
    /// With completion tracking on, a message is withheld while `max_in_flight` requests are
    /// in flight (completing one releases it) and while the send queue is at its bound
    /// (written output releases it).
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.front_withheld() {
            // Too many in flight, or the peer is not reading our replies (found by the
            // connection fuzz target).
            return None;
        }
        // Decoding only ever stops with bytes left over when the event queue is at its
        // bound: only then does taking an event let it go on.
        let was_full = self.events.len() >= self.config.max_queued_events;
        let event = self.events.pop_front()?;
        if let Event::Message(_) = &event
            && self.config.max_in_flight > 0
        {
            self.in_flight += 1;
        }
        if was_full {
            self.decode_after_full();
        }
        self.settle();
        Some(event)
    }

    /// Queues a message frame to the peer.
    ///
    /// Refused when the body exceeds the peer's limit, when the connection is closing, or
    /// when the send queue is full (see [`SendFull`] for what happens then).
    pub fn send(&mut self, method: u16, body: Bytes, now: Instant) -> Result<(), SendError> {
        self.tick(now);
        self.check_send_room()?;
        let m = self.config.marks;
        let n = self.sendq.len();
        let res = self.sendq.push_frame(
            m,
            FrameKind::Message,
            method,
            body,
            self.config.peer_max_frame_len,
        );
        res?;
        self.stats.frames_sent += 1;
        self.sent(n);
        Ok(())
    }

    /// Queues a request frame (kind 3, the correlation extension): a message whose reply
    /// the peer tags with `correlation` (it arrives as a [`Request`] whose
    /// [`reply_to`](Request::reply_to) is `Some(correlation)`). Only a lynn peer answers
    /// such frames; a lynn_tcp peer ignores them. Refused like [`send`](Self::send).
    pub fn send_request(
        &mut self,
        method: u16,
        correlation: CorrelationId,
        body: Bytes,
        now: Instant,
    ) -> Result<(), SendError> {
        self.tick(now);
        self.check_send_room()?;
        let n = self.sendq.len();
        self.sendq.push_tagged(
            self.config.marks,
            FrameKind::Request,
            method,
            correlation,
            body,
            self.config.peer_max_frame_len,
        )?;
        self.stats.frames_sent += 1;
        self.sent(n);
        Ok(())
    }

    /// Queues bytes that hold one or more whole frames encoded with this connection's marks,
    /// for example a broadcast encoded once with
    /// [`encode_to_bytes`](crate::codec::encode_to_bytes) and shared by every recipient.
    /// The caller vouches for the bytes; they are queued as they are.
    pub fn send_encoded(&mut self, frames: Bytes, now: Instant) -> Result<(), SendError> {
        self.tick(now);
        self.check_send_room()?;
        if frames.is_empty() {
            return Ok(());
        }
        let n = self.sendq.len();
        self.sendq.push_encoded(frames);
        self.stats.frames_sent += 1;
        self.sent(n);
        Ok(())
    }

    /// Marks request `id` as handled, with an optional reply `(method, body)`.
    ///
    /// The reply to a request frame (kind 3) leaves as a reply frame tagged with the
    /// request's correlation id; any other as a message frame. Replies leave in request order: a reply to a later request waits for every earlier
    /// one to complete. Replies are not subject to the send queue bound (they are bounded by
    /// `max_in_flight`). A reply too large for the peer completes the request without a
    /// reply and returns the encode error. After the connection closed, completions are
    /// accepted and discarded.
    pub fn complete(
        &mut self,
        id: RequestId,
        reply: Option<(u16, Bytes)>,
        now: Instant,
    ) -> Result<(), CompleteError> {
        self.tick(now);
        if matches!(self.state, State::Closed) {
            return Ok(());
        }
        // Position of `id` among the requests in flight; an id below `released` wraps to a
        // huge index and is refused like one never delivered.
        let index = id.0.wrapping_sub(self.released);
        if index >= self.in_flight as u64
            || matches!(self.early.get(index as usize), Some(Slot::Done(_)))
        {
            return Err(CompleteError::NotInFlight { id: id.0 });
        }
        let mut max = crate::codec::max_body_len(self.config.peer_max_frame_len);
        if self
            .tagged
            .as_deque()
            .is_some_and(|t| t.iter().any(|(r, _)| *r == id))
        {
            max = max.saturating_sub(crate::codec::CORRELATION_LEN as u64);
        }
        let (reply, result) = match reply {
            Some((_, body)) if body.len() as u64 > max => (
                None,
                Err(CompleteError::Encode(
                    crate::error::EncodeError::BodyTooLarge {
                        body_len: body.len(),
                        max_body_len: max,
                    },
                )),
            ),
            reply => (reply, Ok(())),
        };
        let n = self.sendq.len();
        if index == 0 {
            // The oldest request in flight (the common case): its reply goes straight to the
            // send queue, then any later replies that completed early and waited for it.
            self.release(reply);
            if !self.early.is_empty() {
                self.release_early();
            }
        } else {
            self.complete_early(index as usize, reply);
        }
        if self.sendq.len() > n {
            self.mark_sent(n);
        }
        self.settle();
        result
    }

    /// Up to `dst.len()` chunks of queued output, in order, for one vectored write. Returns
    /// how many slots were filled.
    #[inline]
    pub fn transmit_chunks<'a>(&'a self, dst: &mut [&'a [u8]]) -> usize {
        self.sendq.chunks(dst)
    }

    /// `n` bytes from the front of the queued output were written.
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        self.tick(now);
        let n = n.min(self.sendq.len());
        self.sendq.advance(n);
        self.stats.bytes_sent += n as u64;
        if n > 0 {
            self.last_write_progress = self.now;
            self.last_io = self.now;
        }
        if self.want_writable && self.sendq.len() <= self.config.send_queue_limit / 2 {
            self.want_writable = false;
            if matches!(self.state, State::Open) {
                self.events.push_back(Event::Writable);
            }
        } else if matches!(self.state, State::Open) && self.paused_since.is_none() {
            // The common case, settled already: less queued output cannot pause reading
            // (`settle` would find nothing to do; ~12 instructions per write).
            return;
        }
        self.settle();
    }

    /// Graceful close: stop reading, let requests in flight complete, flush the queue, then
    /// produce [`Event::Closed`] with [`CloseReason::Local`]. Flushing is bounded by the write
    /// timeout; waiting for the application's completions is not (a handler that never
    /// completes holds the connection), so runtimes bound the whole drain with their own
    /// shutdown deadline. The same holds for the drains after EOF and after an invalid frame.
    pub fn close(&mut self, now: Instant) {
        self.close_with(CloseReason::Local, now);
    }

    /// Graceful close for `reason`, like [`close`](Self::close): requests already delivered
    /// are answered and flushed before [`Event::Closed`] carries `reason`. For example a
    /// message for an unknown method under the router's close policy:
    /// `close_with(CloseReason::UnknownMethod { method }, now)`.
    pub fn close_with(&mut self, reason: CloseReason, now: Instant) {
        self.tick(now);
        if matches!(self.state, State::Open) {
            self.recv.clear();
            self.state = State::draining(reason, false);
        }
        self.settle();
    }

    /// Immediate close with `reason`: undelivered events and unsent output are dropped.
    pub fn abort(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.events.clear();
        self.sendq.clear();
        self.recv = BytesMut::new();
        self.in_flight = 0;
        self.early.clear();
        self.events.push_back(Event::Closed(reason));
        self.state = State::Closed;
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) has work to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Pairwise rather than `[..].into_iter().flatten().min()`: called once per runtime
        // loop turn, and the iterator version cost ~75 instructions.
        fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, None) => a,
                (None, b) => b,
            }
        }
        let buffers = if self.recv.is_empty() && self.sendq.is_empty() {
            // The common state between turns: only the release timer can run.
            self.release_deadline()
        } else {
            earlier(self.read_deadline(), self.write_deadline())
        };
        let buffers = earlier(buffers, self.linger_deadline());
        earlier(
            earlier(self.heartbeat_deadline(), self.idle_deadline()),
            buffers,
        )
    }

    /// Runs the timers due at `now`: sends a heartbeat, or closes on an idle, read or write
    /// timeout; frees the buffers of a connection quiet for `release_buffers_after`. Calls
    /// before the deadline do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(self.linger_deadline()) {
            self.end_linger();
        }
        if due(self.write_deadline()) {
            self.abort(CloseReason::WriteTimeout);
        } else if due(self.read_deadline()) {
            self.abort(CloseReason::ReadTimeout);
        } else if due(self.idle_deadline()) {
            self.abort(CloseReason::IdleTimeout);
        } else if due(self.heartbeat_deadline()) {
            self.last_sent = self.now;
            if self.sendq.len() < self.config.send_queue_limit {
                let n = self.sendq.len();
                let m = self.config.marks;
                let _ = self
                    .sendq
                    .push_frame(m, FrameKind::Heartbeat, 0, Bytes::new(), u64::MAX);
                self.stats.heartbeats_sent += 1;
                self.stats.frames_sent += 1;
                self.sent(n);
            }
        }
        if due(self.release_deadline()) {
            self.release_buffers();
        }
        self.settle();
    }

    fn heartbeat_deadline(&self) -> Option<Instant> {
        let interval = self.config.heartbeat_interval?;
        (matches!(self.state, State::Open)).then(|| self.last_sent.checked_add(interval))?
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let timeout = self.config.idle_timeout?;
        (matches!(self.state, State::Open) && self.paused_since.is_none())
            .then(|| self.last_alive.checked_add(timeout))?
    }

    fn read_deadline(&self) -> Option<Instant> {
        let timeout = self.config.read_timeout?;
        let partial = !self.recv.is_empty();
        (matches!(self.state, State::Open) && self.paused_since.is_none() && partial)
            .then(|| self.last_bytes_in.checked_add(timeout))?
    }

    fn write_deadline(&self) -> Option<Instant> {
        let timeout = self.config.write_timeout?;
        (!matches!(self.state, State::Closed) && !self.sendq.is_empty())
            .then(|| self.last_write_progress.checked_add(timeout))?
    }

    /// While both buffers are empty and hold memory (closing frees them).
    fn release_deadline(&self) -> Option<Instant> {
        let after = self.config.release_buffers_after?;
        let holds_memory = self.recv.capacity() > 0 || self.sendq.capacity() > 0;
        (self.recv.is_empty() && self.sendq.is_empty() && holds_memory)
            .then(|| self.last_io.checked_add(after))?
    }

    /// Frees the (empty) buffers; the next read or send allocates them again.
    #[cold]
    fn release_buffers(&mut self) {
        self.free_receive_buffer();
        self.sendq.clear();
    }

    #[cold]
    fn free_receive_buffer(&mut self) {
        self.recv = BytesMut::new();
        self.recv_grown = false;
    }

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn decoding(&self) -> bool {
        matches!(self.state, State::Open | State::Draining { eof: true, .. })
    }

    fn check_send_room(&mut self) -> Result<(), SendError> {
        if !matches!(self.state, State::Open) {
            return Err(SendError::Closed);
        }
        let (queued, limit) = (self.sendq.len(), self.config.send_queue_limit);
        if queued < limit {
            return Ok(());
        }
        match self.config.send_full {
            SendFull::Reject => self.want_writable = true,
            SendFull::Close => self.abort(CloseReason::SlowConsumer),
        }
        self.stats.send_refused += 1;
        Err(SendError::QueueFull { queued, limit })
    }

    /// Bookkeeping after frames were queued onto a queue that held `before` bytes.
    fn sent(&mut self, before: usize) {
        self.mark_sent(before);
        self.update_pause();
    }

    /// [`sent`](Self::sent) without the pause update, for callers that settle afterwards.
    fn mark_sent(&mut self, before: usize) {
        if before == 0 {
            self.last_write_progress = self.now;
        }
        self.last_sent = self.now;
    }

    /// Releases the oldest request in flight, queueing its reply (size checked by the
    /// caller).
    #[inline]
    fn release(&mut self, reply: Option<(u16, Bytes)>) {
        let tag = match self.tagged.front() {
            Some(&(r, tag)) if r.0 == self.released => {
                self.tagged.pop_front();
                Some(tag)
            }
            _ => None,
        };
        self.released += 1;
        self.in_flight -= 1;
        if let Some((method, body)) = reply {
            let m = self.config.marks;
            let _ = match tag {
                None => self
                    .sendq
                    .push_frame(m, FrameKind::Message, method, body, u64::MAX),
                Some(tag) => {
                    self.sendq
                        .push_tagged(m, FrameKind::Reply, method, tag, body, u64::MAX)
                }
            };
            self.stats.frames_sent += 1;
        }
    }

    /// After the oldest request was released: drops its slot in `early` and releases the
    /// requests after it that completed early, up to the next one still waiting.
    #[cold]
    fn release_early(&mut self) {
        self.early.pop_front();
        while let Some(Slot::Done(_)) = self.early.front() {
            let Some(Slot::Done(reply)) = self.early.pop_front() else {
                break;
            };
            self.release(reply);
        }
    }

    /// Request `released + index` (not the oldest) completed: its reply waits in `early`.
    #[cold]
    fn complete_early(&mut self, index: usize, reply: Option<(u16, Bytes)>) {
        let early = self.early.make();
        if early.len() <= index {
            early.resize_with(index + 1, || Slot::Waiting);
        }
        early[index] = Slot::Done(reply);
    }

    /// [`decode_more`](Self::decode_more) once a full event queue has room again: rare, and
    /// kept out of line so that `poll_event` stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn decode_after_full(&mut self) {
        self.decode_more();
    }

    fn decode_more(&mut self) {
        self.decode_more_with(None::<&mut fn(&mut InlineMessage<'_>) -> Inline>);
    }

    /// Decodes buffered frames into events, first offering messages to `inline` if given.
    fn decode_more_with<F>(&mut self, mut inline: Option<&mut F>)
    where
        F: FnMut(&mut InlineMessage<'_>) -> Inline,
    {
        // Every arm that changes the state also leaves the loop, so `decoding` is checked
        // once, not per frame.
        if !self.decoding() {
            self.recv_seen = self.recv.len();
            return;
        }
        let queued_before = self.sendq.len();
        // Bytes at the front of `recv` answered in place and not yet dropped: dropped once,
        // before the next split or at the end (`BytesMut::advance` per frame cost ~30
        // instructions).
        let mut answered = 0;
        while self.events.len() < self.config.max_queued_events {
            if let Some(f) = inline.as_deref_mut()
                && self.may_answer_inline()
            {
                self.answer_inline(&mut answered, f);
            }
            match self.decoder.decode_head(&self.recv[answered..]) {
                Ok(Some(head)) => {
                    self.drop_answered(std::mem::take(&mut answered));
                    let mut frame = self.recv.split_to(head.len);
                    frame.advance(HEADER_LEN);
                    frame.truncate(head.len - OVERHEAD);
                    self.on_frame(head, frame.freeze());
                }
                Ok(None) => {
                    self.drop_answered(std::mem::take(&mut answered));
                    if let State::Draining { eof: true, .. } = self.state {
                        // Everything the peer sent before closing is decoded.
                        let reason = match self.recv.len() {
                            0 => CloseReason::PeerClosed,
                            buffered => CloseReason::PeerClosedMidFrame { buffered },
                        };
                        self.recv.clear();
                        self.state = State::draining(reason, false);
                    }
                    break;
                }
                Err(e) => {
                    self.stats.invalid_frames += 1;
                    answered = 0;
                    self.recv.clear();
                    // Frames before the bad one are still delivered and answered; then the
                    // connection closes (bounded by the write timeout, like any drain).
                    self.state = State::draining(CloseReason::Protocol(e), false);
                    break;
                }
            }
        }
        self.drop_answered(answered);
        self.recv_seen = self.recv.len();
        if self.sendq.len() > queued_before {
            self.mark_sent(queued_before);
        }
    }

    /// Drops the first `n` bytes of the receive buffer (answered in place). When that is
    /// all of it, the buffer is reused from where it starts (`clear`), rather than advanced
    /// past them and later reclaimed by `reserve`.
    #[inline]
    fn drop_answered(&mut self, n: usize) {
        if n == self.recv.len() {
            self.recv.clear();
        } else {
            self.recv.advance(n);
        }
    }

    /// Whether messages decoded now may be answered in place: no reply before them is still
    /// owed (nothing queued as an event, nothing in flight). Answering in place keeps it so.
    #[inline]
    fn may_answer_inline(&self) -> bool {
        self.events.is_empty() && self.in_flight == 0
    }

    /// Lends the messages `*at` bytes into the receive buffer to `f`, one after the other,
    /// while it answers them and the send queue is below its bound; moves `*at` past the
    /// messages answered. Stops before anything else (a frame that is not a message, a
    /// message deferred, an incomplete or invalid frame), leaving it to the caller's
    /// decoding.
    ///
    /// Frames are peeked, not decoded, so that the one that stops the run is simply decoded
    /// again by the caller, and the loop carries no decode result. The answered messages
    /// (and the frames decoded) are counted once, at the end: nothing can look at the
    /// counters in between (`f` has no access to the connection). ~40 instructions fewer
    /// per message than answering one frame per decode.
    #[inline]
    fn answer_inline<F>(&mut self, at: &mut usize, f: &mut F)
    where
        F: FnMut(&mut InlineMessage<'_>) -> Inline,
    {
        let Connection {
            config,
            decoder,
            recv,
            sendq,
            stats,
            ..
        } = self;
        let first_id = stats.messages_received;
        let (mut pos, mut answered, mut replied) = (*at, 0, 0);
        // Read once from the shared settings, not once per message through the `Arc`.
        let (limit, marks, peer_max_frame_len) = (
            config.send_queue_limit,
            config.marks,
            config.peer_max_frame_len,
        );
        while sendq.len() < limit {
            let rest = &recv[pos..];
            let Ok(Some(head)) = decoder.peek_head(rest) else {
                break;
            };
            if !head.is_message() {
                break;
            }
            let mut msg = InlineMessage {
                id: RequestId(first_id + answered),
                method: head.method,
                body: &rest[head.body()],
                out: Out::Queue {
                    sendq,
                    marks,
                    peer_max_frame_len,
                },
                reply: Replied::No,
            };
            let outcome = f(&mut msg);
            let has_reply = msg.replied();
            if outcome == Inline::Deferred && !has_reply {
                break;
            }
            stats.message_sizes.count(head.len - OVERHEAD);
            replied += u64::from(has_reply);
            answered += 1;
            pos += head.len;
        }
        if answered == 0 {
            return;
        }
        decoder.count_decoded(pos - *at, answered);
        // Each answered message was received (and took the next id), delivered and
        // completed at once.
        stats.frames_received += answered;
        stats.messages_received += answered;
        // The frames' bytes less their framing: the bodies, added up once.
        stats.message_sizes.bytes += (pos - *at) as u64 - answered * OVERHEAD as u64;
        *at = pos;
        stats.frames_sent += replied;
        if config.max_in_flight > 0 {
            self.released += answered;
        }
        if config.liveness == Liveness::AnyFrame {
            self.last_alive = self.now;
        }
    }

    /// Counts a received message whose body is `len` bytes and gives it the next id (ids
    /// count messages received).
    #[inline]
    fn count_message(&mut self, len: usize) -> RequestId {
        let id = RequestId(self.stats.messages_received);
        self.stats.frames_received += 1;
        self.stats.messages_received += 1;
        self.stats.message_sizes.record(len);
        if self.config.liveness == Liveness::AnyFrame {
            self.last_alive = self.now;
        }
        id
    }

    fn on_frame(&mut self, head: FrameHead, body: Bytes) {
        let alive = match head.kind() {
            FrameKind::Message => {
                let id = self.count_message(body.len());
                self.events.push_back(Event::Message(Request {
                    id,
                    method: head.method,
                    body,
                    reply_to: None,
                }));
                return;
            }
            kind @ (FrameKind::Request | FrameKind::Reply) => {
                let mut body = body;
                // The decoder checked that the id is there.
                let correlation = CorrelationId::split_from(&mut body).unwrap_or(CorrelationId(0));
                let id = self.count_message(body.len());
                let reply_to = if kind == FrameKind::Reply {
                    Some(correlation)
                } else {
                    if self.config.max_in_flight > 0 {
                        self.tagged.make().push_back((id, correlation));
                    }
                    None
                };
                self.events.push_back(Event::Message(Request {
                    id,
                    method: head.method,
                    body,
                    reply_to,
                }));
                return;
            }
            FrameKind::Heartbeat => {
                self.stats.frames_received += 1;
                self.stats.heartbeats_received += 1;
                self.events.push_back(Event::Heartbeat);
                true
            }
            FrameKind::Unknown(_) => {
                self.stats.frames_received += 1;
                self.stats.unknown_kinds += 1;
                self.config.liveness == Liveness::AnyFrame
            }
        };
        if alive {
            self.last_alive = self.now;
        }
    }

    /// Moves to `Closed` when a closing connection has nothing left to do, and tracks
    /// read-pausing. Called at the end of every state change.
    #[inline]
    fn settle(&mut self) {
        if let State::Draining { .. } = self.state {
            self.settle_draining();
        }
        self.update_pause();
    }

    #[cold]
    fn settle_draining(&mut self) {
        if let State::Draining { reason, eof: false } = &self.state
            && self.events.is_empty()
            && self.in_flight == 0
            && self.sendq.is_empty()
        {
            let reason = CloseReason::clone(reason);
            // Lingering waits for the peer's end of stream: not when that is what ended it.
            let peer_done = matches!(
                reason,
                CloseReason::PeerClosed | CloseReason::PeerClosedMidFrame { .. }
            );
            match self.config.linger {
                Some(linger) if !peer_done => self.start_linger(reason, linger),
                _ => self.abort(reason),
            }
        }
    }

    /// Timers that measure the peer stop while we are not reading and resume when reading
    /// does, shifted by the length of the pause: backpressure is never mistaken for a silent
    /// peer, and a pause does not count as a sign of life either.
    #[inline]
    fn update_pause(&mut self) {
        let paused = matches!(self.state, State::Open) && !self.wants_read();
        if self.paused_since.is_none() && !paused {
            return;
        }
        self.update_pause_slow(paused);
    }

    #[cold]
    fn update_pause_slow(&mut self, paused: bool) {
        match (self.paused_since, paused) {
            (None, true) => self.paused_since = Some(self.now),
            (Some(since), false) => {
                let (now, pause) = (self.now, self.now.saturating_duration_since(since));
                // A timestamp from before the pause moves by the pause; one from during it
                // (a buffered frame decoded meanwhile) means "just now".
                let resume = |t: Instant| if t < since { t + pause } else { now };
                self.last_alive = resume(self.last_alive);
                self.last_bytes_in = resume(self.last_bytes_in);
                self.paused_since = None;
            }
            _ => {}
        }
    }
}
