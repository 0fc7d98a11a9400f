//! The client-calls target: [`ClientCalls`] with a client [`Connection`] against a lynn
//! server's `Connection`, under arbitrary calls, answers, pushes, forged replies, time, byte
//! delivery and connection loss, checked against a model of the pending requests.
//!
//! Every call's body starts with its number (its tag, a little-endian `u32`), pushes and
//! forged replies carry numbers of their own, and the server replies with the request's
//! body, so every message the client receives says where it came from. The model learns
//! which requests are pending by decoding the client's output (a request is pending from
//! the moment its frame is queued), so it knows their order, ids and deadlines, and
//! predicts exactly what each message, timeout, loss and `finish` must answer.

use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};

use crate::client_calls::{Answer, Call, ClientCalls, Delivery};
use crate::codec::{self, Decoder, Frame, FrameKind, Marks};
use crate::{
    ClientConfig, ClientError, CloseReason, Connection, ConnectionConfig, CorrelationId, Event,
    Instant, Request,
};

/// Tags of server pushes start here, tags of forged replies at [`FORGED`].
const PUSH: u32 = 1 << 30;
const FORGED: u32 = 1 << 31;

#[derive(Arbitrary, Debug)]
struct Setup {
    ids: bool,
    /// `1 + n % 4`.
    max_pending: u8,
    /// `n % 5`.
    offline: u8,
    /// `1 + n % 64` milliseconds; `None` waits forever.
    timeout: Option<u8>,
    /// The client's send queue bound, `15 + n % 128` bytes.
    send_queue: u8,
    /// The client's `peer_max_frame_len`, `5 + n % 32`: some bodies do not fit.
    tight: Option<u8>,
    /// The server's `max_in_flight`, `1 + n % 8`.
    server_in_flight: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Reply {
    /// The request's method and body.
    Echo,
    /// Its body under method `n % 4`.
    Method(u8),
    Silent,
}

#[derive(Arbitrary, Debug)]
enum Id {
    /// `n % 16`: near the ids in use.
    Small(u8),
    Any(u32),
}

/// Methods are `n % 4`, so that they collide; a body is the tag and `extra % 16` bytes more.
/// New operations go last, so that saved inputs keep their meaning.
#[derive(Arbitrary, Debug)]
enum Op {
    /// `send` (`wait`) or `try_send`: method, extra, wait.
    Send(u8, u8, bool),
    /// A request: method, extra.
    Request(u8, u8),
    /// The server completes its held message `pick % len`: pick, reply.
    Answer(u8, Reply),
    /// The server pushes: method, extra.
    Push(u8, u8),
    /// `ms % 80` milliseconds pass, then `handle_timeout` with `unread_pushes`.
    Advance(u8, Option<u8>),
    /// `handle_timeout` a nanosecond before `poll_timeout`.
    JustBefore,
    /// `handle_timeout` at `poll_timeout`, with `unread_pushes`.
    AtDeadline(Option<u8>),
    /// Up to `write` bytes (0: all) of the client's (`to_server`) or the server's output
    /// go into the pipe, then up to `read` (0: all) to the other side: to_server, write, read.
    Flow(bool, u8, u8),
    /// A reply frame (kind 4) naming an id, after the server's output: id, method, extra.
    Forge(Id, u8, u8),
    /// The connection (if any) is lost, and a new one is made.
    Reconnect,
    Finish,
    /// The connection (if any) is lost; calls wait offline until `Reconnect`.
    Lose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ans {
    Ok,
    Disconnected,
    Failed,
}

/// A call, by tag.
struct Rec {
    request: bool,
    wait: bool,
    method: u16,
    body: Bytes,
    answer: Option<Ans>,
    /// Its frame was queued on a connection.
    sent: bool,
}

/// A pending request, oldest first.
struct Pend {
    tag: u32,
    method: u16,
    corr: Option<CorrelationId>,
    deadline: Option<Instant>,
}

/// What is on the way on the current connection, and known of it.
#[derive(Default)]
struct Wire {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// Messages the server received and has not completed.
    held: Vec<Request>,
    /// Bytes of the client's output written, and decoded.
    written: usize,
    registered: usize,
    /// v1: a message that is no request's reply met a pending request of its method, or a
    /// request went without its reply: replies may now go to other requests (by design).
    shaken: bool,
    /// v1: a timeout gave the connection up; `Closed(CorrelationLost)` is due.
    closing: bool,
}

struct Harness {
    cfg: ClientConfig,
    server_cfg: Arc<ConnectionConfig>,
    calls: ClientCalls<u32, u32>,
    client: Option<Connection>,
    server: Connection,
    wire: Wire,
    now: Instant,
    log: Vec<Rec>,
    pending: Vec<Pend>,
    got: Vec<Answer<u32, u32>>,
    /// Pushes and forged frames so far.
    others: u32,
}

pub(super) fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let setup = Setup::arbitrary(u)?;
    let ops = Vec::<Op>::arbitrary(u)?;
    let mut h = Harness::new(&setup);
    for op in ops {
        if let Op::Finish = op {
            h.finish();
            return Ok(());
        }
        h.op(op);
        let due = h.pending.iter().filter_map(|p| p.deadline).min();
        assert_eq!(
            h.calls.poll_timeout(),
            due,
            "poll_timeout: not the first deadline"
        );
    }
    h.settle_all();
    h.finish();
    Ok(())
}

fn tag_of(body: &[u8]) -> u32 {
    body.first_chunk::<4>()
        .map_or(u32::MAX, |b| u32::from_le_bytes(*b))
}

fn body(tag: u32, extra: u8) -> Bytes {
    let mut v = tag.to_le_bytes().to_vec();
    v.resize(4 + usize::from(extra % 16), extra);
    Bytes::from(v)
}

/// An answer callback that keeps the answers in `got`.
fn sink(got: &mut Vec<Answer<u32, u32>>) -> impl FnMut(Answer<u32, u32>) + '_ {
    |a| got.push(a)
}

/// All of `c`'s queued output.
fn output(c: &Connection) -> Vec<u8> {
    let mut slots = [&[][..]; 256];
    let n = c.transmit_chunks(&mut slots);
    let out = slots[..n].concat();
    assert_eq!(
        out.len(),
        c.pending_transmit(),
        "transmit_chunks hides output"
    );
    out
}

impl Harness {
    fn new(s: &Setup) -> Harness {
        let mut cfg = ClientConfig::builder()
            .correlation_ids(s.ids)
            .max_pending_requests(1 + usize::from(s.max_pending % 4))
            .offline_queue(usize::from(s.offline % 5))
            .request_timeout(
                s.timeout
                    .map(|n| Duration::from_millis(1 + u64::from(n % 64))),
            )
            .heartbeat_interval(None)
            .build()
            .expect("valid client config");
        cfg.connection.send_queue_limit = 15 + usize::from(s.send_queue % 128);
        if let Some(n) = s.tight {
            cfg.connection.peer_max_frame_len = 5 + u64::from(n % 32);
        }
        let mut server_cfg = ConnectionConfig::server();
        server_cfg.max_in_flight = 1 + usize::from(s.server_in_flight % 8);
        let server_cfg = Arc::new(server_cfg);
        let now = Instant::now();
        let mut h = Harness {
            calls: ClientCalls::new(&cfg),
            server: Connection::new(server_cfg.clone(), now).expect("valid server config"),
            cfg,
            server_cfg,
            client: None,
            wire: Wire::default(),
            now,
            log: Vec::new(),
            pending: Vec::new(),
            got: Vec::new(),
            others: 0,
        };
        h.reconnect();
        h
    }

    fn op(&mut self, op: Op) {
        match op {
            Op::Send(method, extra, wait) => self.call(false, method, extra, wait),
            Op::Request(method, extra) => self.call(true, method, extra, false),
            Op::Answer(pick, reply) => self.answer(pick, reply),
            Op::Push(method, extra) => {
                let body = body(PUSH + self.others, extra);
                self.others += 1;
                let _ = self.server.send(u16::from(method % 4), body, self.now);
            }
            Op::Advance(ms, unread) => {
                self.now += Duration::from_millis(u64::from(ms % 80));
                self.expire(unread);
            }
            Op::JustBefore => {
                if let Some(d) = self.calls.poll_timeout()
                    && d > self.now
                {
                    self.now = d - Duration::from_nanos(1);
                    self.expire(None);
                }
            }
            Op::AtDeadline(unread) => {
                if let Some(d) = self.calls.poll_timeout() {
                    self.now = self.now.max(d);
                    self.expire(unread);
                }
            }
            Op::Flow(to_server, write, read) => _ = self.flow(to_server, write, read),
            Op::Forge(id, method, extra) => self.forge(id, method, extra),
            Op::Reconnect => self.reconnect(),
            Op::Lose => self.lose(),
            Op::Finish => unreachable!("handled by run"),
        }
    }

    fn call(&mut self, request: bool, method: u8, extra: u8, wait: bool) {
        let tag = self.log.len() as u32;
        let (method, body) = (u16::from(method % 4), body(tag, extra));
        let offline = self.client.is_none().then(|| self.offline());
        let rec = Rec {
            request,
            wait,
            method,
            body: body.clone(),
            answer: None,
            sent: false,
        };
        self.log.push(rec);
        let call = match request {
            true => Call::Request {
                method,
                body,
                waiter: tag,
            },
            false => Call::Send {
                method,
                body,
                wait,
                ack: tag,
            },
        };
        let (before, client) = (self.pending.len(), self.client.as_mut());
        self.calls
            .call(client, call, self.now, &mut sink(&mut self.got));
        self.sending(before);
        if let Some(n) = offline {
            // Disconnected: kept offline exactly while there is room.
            let (rec, limit) = (&self.log[tag as usize], self.cfg.offline_queue);
            let kept = rec.answer == if request { None } else { Some(Ans::Ok) };
            assert!(!kept || n < limit, "call {tag} kept offline beyond {limit}");
            let refused = rec.answer == Some(Ans::Disconnected);
            assert!(!refused || n >= limit, "call {tag} refused, room offline");
        }
        self.drain();
    }

    /// Calls kept offline; exact while disconnected (nothing waits for room then).
    fn offline(&self) -> usize {
        let kept = |r: &Rec| r.answer == if r.request { None } else { Some(Ans::Ok) };
        self.log.iter().filter(|r| !r.sent && kept(r)).count()
    }

    /// Takes an answer: the right kind, once per call.
    fn record(&mut self, a: Answer<u32, u32>) -> (u32, Result<Bytes, ClientError>) {
        let (tag, request, result) = match a {
            Answer::Sent(t, r) => (t, false, r.map(|()| Bytes::new())),
            Answer::Replied(t, r) => (t, true, r),
        };
        let rec = &mut self.log[tag as usize];
        assert!(
            rec.request == request,
            "call {tag} answered as the other kind"
        );
        assert!(rec.answer.is_none(), "call {tag} answered twice");
        rec.answer = Some(match result {
            Ok(_) => Ans::Ok,
            Err(ClientError::Disconnected) => Ans::Disconnected,
            Err(_) => Ans::Failed,
        });
        (tag, result)
    }

    /// Answers while calls go out (`call`, `connected`, `Writable`), then the frames queued.
    fn sending(&mut self, before: usize) {
        let mut refused = 0;
        for a in std::mem::take(&mut self.got) {
            let (tag, r) = self.record(a);
            let rec = &self.log[tag as usize];
            assert!(!rec.sent, "call {tag} failed after it was sent");
            match r {
                Ok(_) => assert!(!rec.request, "request {tag} replied while sending"),
                Err(ClientError::QueueFull) => assert!(!rec.request && !rec.wait, "{tag} full"),
                Err(ClientError::Disconnected | ClientError::Encode(_)) => {}
                Err(ClientError::TooManyPending) if rec.request => refused += 1,
                Err(e) => panic!("call {tag} failed while sending: {e:?}"),
            }
        }
        let new = self.scan();
        let max = self.cfg.max_pending_requests;
        assert!(
            refused == 0 || before + new >= max,
            "TooManyPending with at most {} of {max} pending",
            before + new
        );
    }

    /// Registers the frames the client queued since the last scan; returns the requests.
    fn scan(&mut self) -> usize {
        let Some(client) = &self.client else { return 0 };
        let queued = output(client);
        let mut buf = BytesMut::from(&queued[self.wire.registered - self.wire.written..]);
        self.wire.registered = self.wire.written + queued.len();
        let mut decoder = Decoder::new(Marks::default(), u64::MAX);
        let mut frames = Vec::new();
        while let Some(f) = decoder.decode(&mut buf).expect("client output decodes") {
            frames.push(f);
        }
        assert!(buf.is_empty(), "client queued part of a frame");
        frames.into_iter().map(|f| self.register(f)).sum()
    }

    fn register(&mut self, f: Frame) -> usize {
        let mut body = f.body;
        let corr = match f.kind {
            FrameKind::Request => CorrelationId::split_from(&mut body),
            FrameKind::Message => None,
            k => panic!("client sent a {k:?} frame"),
        };
        let tag = tag_of(&body);
        let rec = self.log.get_mut(tag as usize).expect("client sent no call");
        assert!(!rec.sent, "call {tag} sent twice");
        rec.sent = true;
        assert!(
            f.method == rec.method && body == rec.body,
            "call {tag} altered"
        );
        if !rec.request {
            assert!(corr.is_none(), "send {tag} as a request frame");
            assert!(
                rec.answer == Some(Ans::Ok),
                "send {tag} went out without Ok"
            );
            return 0;
        }
        assert!(
            rec.answer.is_none(),
            "request {tag} went out after its answer"
        );
        let ids = self.cfg.correlation_ids;
        assert!(corr.is_some() == ids, "request {tag}: wrong frame kind");
        let fresh = corr.is_none() || self.pending.iter().all(|p| p.corr != corr);
        assert!(fresh, "correlation id {corr:?} used twice");
        let deadline = self.cfg.request_timeout.map(|t| self.now + t);
        let method = f.method;
        self.pending.push(Pend {
            tag,
            method,
            corr,
            deadline,
        });
        let max = self.cfg.max_pending_requests;
        assert!(self.pending.len() <= max, "more than {max} pending");
        1
    }

    /// Drains both sides' events.
    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(e) = self.server.poll_event() {
                any = true;
                if let Event::Message(req) = e {
                    self.wire.held.push(req);
                }
            }
            while let Some(e) = self.client.as_mut().and_then(Connection::poll_event) {
                any = true;
                self.client_event(e);
            }
            if !any {
                return;
            }
        }
    }

    fn client_event(&mut self, e: Event) {
        let (before, ids) = (self.pending.len(), self.cfg.correlation_ids);
        let client = self.client.as_mut().expect("connected");
        let mut handle = |e| {
            self.calls
                .handle_event(client, e, self.now, &mut sink(&mut self.got))
        };
        let req = match e {
            Event::Message(req) => req,
            Event::Closed(reason) => {
                let d = handle(Event::Closed(reason.clone()));
                assert!(d == Delivery::Closed(reason.clone()) && self.got.is_empty());
                let expected = self.wire.closing && reason == CloseReason::CorrelationLost;
                assert!(expected, "client closed unasked: {reason:?}");
                self.client = None;
                return self.lost();
            }
            e => {
                assert_eq!(handle(e), Delivery::Nothing);
                return self.sending(before);
            }
        };
        let origin = tag_of(&req.body);
        let reply = origin < PUSH && self.log[origin as usize].request;
        if !ids && !reply && req.reply_to.is_none() {
            self.wire.shaken |= self.pending.iter().any(|p| p.method == req.method);
        }
        let found = self.pending.iter().position(|p| match req.reply_to {
            Some(id) => p.corr == Some(id),
            None => p.corr.is_none() && p.method == req.method,
        });
        let d = handle(Event::Message(req.clone()));
        let got = std::mem::take(&mut self.got);
        match (d, found) {
            (Delivery::Nothing, Some(i)) => {
                let p = self.pending.remove(i);
                let ok = |w: &u32, b: &Bytes| *w == p.tag && *b == req.body;
                let ok = matches!(got.first(), Some(Answer::Replied(w, Ok(b))) if ok(w, b));
                assert!(ok, "{req:?} answered {got:?}, not request {}", p.tag);
                let mut got = got.into_iter();
                let _ = self.record(got.next().expect("one answer"));
                // Never another request's reply.
                if (req.reply_to.is_some() && reply) || (!ids && !self.wire.shaken) {
                    assert_eq!(p.tag, origin, "request {} got {origin}'s reply", p.tag);
                }
                // The freed slot lets offline calls go out: their answers follow.
                self.got = got.collect();
                self.sending(self.pending.len());
            }
            (Delivery::Push(m), None) if req.reply_to.is_none() && got.is_empty() => {
                assert_eq!((m.method, m.body), (req.method, req.body), "push altered");
            }
            (Delivery::Late, None) if req.reply_to.is_some() && got.is_empty() => {
                // A v1 peer sends no reply frames: only forged ones come late there.
                assert!(ids || origin >= FORGED, "{req:?} late without ids");
            }
            (d, found) => panic!("{req:?} gave {d:?} {got:?}; pending match {found:?}"),
        }
    }

    /// `handle_timeout` at `now`: exactly the requests due expire, in order; without ids
    /// every other pending request loses its order too, and the connection closes.
    fn expire(&mut self, unread: Option<u8>) {
        let Some(client) = self.client.as_mut() else {
            return assert!(self.pending.is_empty(), "pending while disconnected");
        };
        let (now, unread, was_open) = (self.now, unread.map(usize::from), client.is_open());
        (self.calls).handle_timeout(client, now, unread, &mut sink(&mut self.got));
        let open = client.is_open();
        let (due, rest): (Vec<Pend>, Vec<Pend>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.deadline.is_some_and(|d| d <= now));
        let lost = !self.cfg.correlation_ids && !due.is_empty();
        let error = match unread {
            Some(unread) => ClientError::PushesUnread { unread },
            None => ClientError::Timeout,
        };
        let show = |p: &Pend, e: &ClientError| format!("{} {:?}", p.tag, Err::<Bytes, _>(e));
        let mut expected: Vec<String> = due.iter().map(|p| show(p, &error)).collect();
        if lost {
            let lost = ClientError::CorrelationLost;
            expected.extend(rest.iter().map(|p| show(p, &lost)));
        } else {
            self.pending = rest;
        }
        let mut got = std::mem::take(&mut self.got);
        // Answers past the timeouts' are of offline calls sent into the freed slots.
        let resumed = got.split_off(expected.len().min(got.len()));
        let actual: Vec<String> = (got.into_iter())
            .map(|a| self.record(a))
            .map(|(tag, r)| format!("{tag} {r:?}"))
            .collect();
        assert_eq!(actual, expected, "timeout answers");
        self.got = resumed;
        self.sending(self.pending.len());
        if self.cfg.correlation_ids {
            assert_eq!(open, was_open, "a timeout with ids changed the connection");
        } else if lost {
            assert!(!open, "order lost, connection kept");
            self.wire.closing = true;
        }
        self.drain();
    }

    /// `disconnected`: the pending requests fail first, then calls waiting for room that
    /// find no place offline.
    fn lost(&mut self) {
        self.calls.disconnected(&mut sink(&mut self.got));
        let mut refused = false;
        for (tag, r) in self.drained(&ClientError::Disconnected) {
            refused |= matches!(r, Err(ClientError::Disconnected));
            let ok = matches!(r, Err(ClientError::Disconnected | ClientError::Encode(_)));
            let send = !self.log[tag as usize].request;
            assert!(ok || r.is_ok() && send, "lost connection: {tag} {r:?}");
        }
        let (n, limit) = (self.offline(), self.cfg.offline_queue);
        assert!(
            n <= limit && (!refused || n == limit),
            "{n} offline, {limit} max"
        );
    }

    /// The answers of a `disconnected` or `finish`: first every pending request with
    /// `error`, in order; then calls never sent, returned.
    fn drained(&mut self, error: &ClientError) -> Vec<(u32, Result<Bytes, ClientError>)> {
        let got = std::mem::take(&mut self.got);
        let mut pending = std::mem::take(&mut self.pending).into_iter();
        let mut rest = Vec::new();
        for a in got {
            let (tag, r) = self.record(a);
            match pending.next() {
                Some(p) => {
                    let (r, e) = (format!("{r:?}"), format!("{:?}", Err::<Bytes, _>(error)));
                    assert!(tag == p.tag && r == e, "{tag} {r}, not {} {e}", p.tag);
                }
                None if self.log[tag as usize].sent => panic!("sent call {tag} not pending"),
                None => rest.push((tag, r)),
            }
        }
        assert!(pending.next().is_none(), "pending requests left unanswered");
        rest
    }

    /// The connection is gone, both ends with whatever was on the way.
    fn lose(&mut self) {
        if self.client.take().is_some() {
            self.lost();
        }
        self.server = Connection::new(self.server_cfg.clone(), self.now).expect("valid");
        self.wire = Wire::default();
    }

    fn reconnect(&mut self) {
        self.lose();
        let mut client = Connection::new(self.cfg.connection.clone(), self.now).expect("valid");
        self.calls.connected(&mut client, self.now);
        self.client = Some(client);
        self.sending(0);
        self.drain();
    }

    /// See [`Op::Flow`]. Whether bytes moved.
    fn flow(&mut self, to_server: bool, write: u8, read: u8) -> bool {
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        let (from, to, pipe) = match to_server {
            true => (client, &mut self.server, &mut self.wire.to_server),
            false => (&mut self.server, client, &mut self.wire.to_client),
        };
        let out = output(from);
        let limit = |n: u8, len: usize| if n == 0 { len } else { len.min(usize::from(n)) };
        let w = limit(write, out.len());
        pipe.extend_from_slice(&out[..w]);
        from.handle_written(w, self.now);
        if to_server {
            self.wire.written += w;
            if from.poll_shutdown_write() {
                // The client closed and ended its write side (a lingering close): the
                // server reads the end of the stream and closes too, so the client reads
                // its end of the stream.
                to.handle_eof(self.now);
                from.handle_eof(self.now);
            }
        }
        let r = if to.wants_read() {
            limit(read, pipe.len())
        } else {
            0
        };
        if r > 0 {
            to.handle_bytes(&pipe[..r], self.now);
            pipe.drain(..r);
        }
        self.drain();
        w + r > 0
    }

    fn answer(&mut self, pick: u8, reply: Reply) {
        if self.wire.held.is_empty() {
            return;
        }
        let held = &mut self.wire.held;
        let req = held.remove(usize::from(pick) % held.len());
        let reply = match reply {
            Reply::Echo => Some((req.method, req.body.clone())),
            Reply::Method(m) => Some((u16::from(m % 4), req.body.clone())),
            Reply::Silent => None,
        };
        let request = self.log[tag_of(&req.body) as usize].request;
        if !self.cfg.correlation_ids && request {
            self.wire.shaken |= reply.as_ref().is_none_or(|(m, _)| *m != req.method);
        }
        let done = self.server.complete(req.id, reply, self.now);
        assert!(done.is_ok(), "server completion refused: {done:?}");
        self.drain();
    }

    fn forge(&mut self, id: Id, method: u8, extra: u8) {
        if self.client.is_none() {
            return;
        }
        // After all of the server's output, so that the frame starts at a frame boundary.
        let out = output(&self.server);
        self.wire.to_client.extend_from_slice(&out);
        self.server.handle_written(out.len(), self.now);
        let id = match id {
            Id::Small(n) => u32::from(n % 16),
            Id::Any(n) => n,
        };
        let mut b = id.to_le_bytes().to_vec();
        b.extend_from_slice(&body(FORGED + self.others, extra));
        self.others += 1;
        let (m, kind) = (u16::from(method % 4), FrameKind::Reply);
        let frame = codec::encode_to_bytes(Marks::default(), kind, m, &b, u64::MAX);
        let frame = frame.expect("encodes");
        self.wire.to_client.extend_from_slice(&frame);
        self.drain();
    }

    /// Delivers everything, answering every message, until nothing moves (a connection
    /// closing for lost order closes and is replaced); expires a full pending table once.
    /// Then no call may be left waiting offline or for room while requests have room:
    /// every call is answered or pending.
    fn settle_all(&mut self) {
        let mut expired = false;
        loop {
            if self.client.as_ref().is_some_and(|c| !c.is_open()) {
                self.flow(true, 0, 0);
                assert!(self.client.is_none(), "closing connection did not close");
            }
            if self.client.is_none() {
                self.reconnect();
            }
            let mut progress = self.flow(true, 0, 0) | self.flow(false, 0, 0);
            while !self.wire.held.is_empty() {
                self.answer(0, Reply::Echo);
                progress = true;
            }
            let full = self.pending.len() >= self.cfg.max_pending_requests;
            if !progress
                && full
                && !expired
                && let Some(t) = self.cfg.request_timeout
            {
                (self.now, expired) = (self.now + t, true);
                self.expire(None);
                progress = true;
            }
            if !progress {
                break;
            }
        }
        if self.pending.len() < self.cfg.max_pending_requests {
            let pending = |t: usize| self.pending.iter().any(|p| p.tag as usize == t);
            let stuck: Vec<usize> = (0..self.log.len())
                .filter(|&t| self.log[t].answer.is_none() && !pending(t))
                .collect();
            assert!(
                stuck.is_empty(),
                "calls {stuck:?} stuck, requests have room"
            );
        }
    }

    /// `finish`: the pending requests fail first, then the rest; nothing is left.
    fn finish(&mut self) {
        let closed = || ClientError::Closed(None);
        self.calls.finish(closed, &mut sink(&mut self.got));
        for (tag, r) in self.drained(&closed()) {
            assert!(
                matches!(r, Err(ClientError::Closed(None))),
                "finish: {tag} {r:?}"
            );
        }
        let open: Vec<usize> = (0..self.log.len())
            .filter(|&t| self.log[t].answer.is_none())
            .collect();
        assert!(open.is_empty(), "calls {open:?} never answered");
    }
}
