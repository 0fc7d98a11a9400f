//! A client's requests against a lynn server's `Connection`, in both correlation modes, with
//! simulated time: unanswered requests, late and out-of-order replies, the pending bound
//! after many timeouts, and timeouts behind unread pushes.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lynn_proto::client_calls::{Answer, Call, ClientCalls, Delivery};
use lynn_proto::codec::{Decoder, encode_to_bytes};
use lynn_proto::{
    ClientConfig, ClientError, CloseReason, Connection, ConnectionConfig, Event, FrameKind,
    Instant, Marks, Request,
};

type Calls = ClientCalls<(), char>;
type Got = Vec<(char, Result<String, String>)>;

struct Pair {
    client: Connection,
    server: Connection,
    calls: Calls,
    got: Got,
    /// Requests the server received and has not answered, oldest first.
    held: Vec<Request>,
    late: usize,
    pushes: Vec<Bytes>,
    closed: Option<CloseReason>,
    now: Instant,
}

fn config(ids: bool, max_pending: usize) -> ClientConfig {
    ClientConfig::builder()
        .request_timeout(Some(Duration::from_secs(1)))
        .max_pending_requests(max_pending)
        .correlation_ids(ids)
        .build()
        .unwrap()
}

impl Pair {
    fn new(config: &ClientConfig) -> Pair {
        let now = Instant::now();
        let mut pair = Pair {
            client: Connection::new(config.connection.clone(), now).unwrap(),
            server: Connection::new(ConnectionConfig::server(), now).unwrap(),
            calls: Calls::new(config),
            got: Got::new(),
            held: Vec::new(),
            late: 0,
            pushes: Vec::new(),
            closed: None,
            now,
        };
        pair.calls.connected(&mut pair.client, now);
        pair
    }

    /// A new connection after the old one closed, as a reconnecting runtime makes it.
    fn reconnect(&mut self, config: &ClientConfig) {
        let Pair { calls, got, .. } = self;
        calls.disconnected(&mut |a| record(got, a));
        self.client = Connection::new(config.connection.clone(), self.now).unwrap();
        self.server = Connection::new(ConnectionConfig::server(), self.now).unwrap();
        self.held.clear();
        self.closed = None;
        self.calls.connected(&mut self.client, self.now);
    }

    fn request(&mut self, c: char, method: u16) {
        let call = Call::Request {
            method,
            body: Bytes::from(c.to_string()),
            waiter: c,
        };
        let Pair {
            calls, client, got, ..
        } = self;
        calls.call(Some(client), call, self.now, &mut |a| record(got, a));
        self.pump();
    }

    /// Moves bytes both ways and drains both sides' events until nothing changes.
    fn pump(&mut self) {
        loop {
            let mut moved = move_bytes(&mut self.client, &mut self.server, self.now);
            while let Some(e) = self.server.poll_event() {
                match e {
                    Event::Message(req) => self.held.push(req),
                    // The server's socket closes: the client reads the end of the stream.
                    Event::Closed(_) => {
                        self.client.handle_eof(self.now);
                        moved = true;
                    }
                    _ => {}
                }
            }
            moved |= move_bytes(&mut self.server, &mut self.client, self.now);
            while let Some(e) = self.client.poll_event() {
                moved = true;
                let Pair {
                    calls, client, got, ..
                } = self;
                match calls.handle_event(client, e, self.now, &mut |a| record(got, a)) {
                    Delivery::Push(m) => self.pushes.push(m.body),
                    Delivery::Late => self.late += 1,
                    Delivery::Closed(r) => self.closed = Some(r),
                    Delivery::Nothing => {}
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The server answers its held request `i` by echoing it (or completes it silently).
    fn answer(&mut self, i: usize, reply: bool) {
        let req = self.held.remove(i);
        let reply = reply.then(|| (req.method, req.body.clone()));
        self.server.complete(req.id, reply, self.now).unwrap();
        self.pump();
    }

    fn push(&mut self, body: &'static str) {
        self.server
            .send(9, Bytes::from_static(body.as_bytes()), self.now)
            .unwrap();
        self.pump();
    }

    fn advance(&mut self, d: Duration, unread: Option<usize>) {
        self.now += d;
        let Pair {
            calls, client, got, ..
        } = self;
        calls.handle_timeout(client, self.now, unread, &mut |a| record(got, a));
        self.pump();
    }

    fn take(&mut self) -> Got {
        std::mem::take(&mut self.got)
    }
}

fn record(got: &mut Got, a: Answer<(), char>) {
    if let Answer::Replied(c, r) = a {
        got.push((
            c,
            r.map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| e.to_string()),
        ));
    }
}

fn move_bytes(from: &mut Connection, to: &mut Connection, now: Instant) -> bool {
    let mut moved = false;
    while from.wants_write() && to.wants_read() {
        let mut chunks = [&[][..]; 8];
        let n = from.transmit_chunks(&mut chunks);
        let bytes: Vec<u8> = chunks[..n].concat();
        to.handle_bytes(&bytes, now);
        from.handle_written(bytes.len(), now);
        moved = true;
    }
    // A closing side ends its write side once flushed (a lingering close): the other side
    // sees the end of the stream.
    if !from.wants_write() && from.poll_shutdown_write() {
        to.handle_eof(now);
        moved = true;
    }
    moved
}

fn ok(c: char) -> (char, Result<String, String>) {
    (c, Ok(c.to_string()))
}

fn err(c: char, e: ClientError) -> (char, Result<String, String>) {
    (c, Err(e.to_string()))
}

#[test]
fn by_order_an_unanswered_request_replaces_the_connection_and_later_requests_succeed() {
    let cfg = config(false, 8);
    let mut p = Pair::new(&cfg);
    p.request('a', 2);
    p.answer(0, false); // the route does not answer `a`
    p.advance(Duration::from_millis(500), None);
    p.request('b', 2);
    p.advance(Duration::from_millis(500), None);
    assert_eq!(
        p.take(),
        [
            err('a', ClientError::Timeout),
            err('b', ClientError::CorrelationLost)
        ]
    );
    // `b`'s reply, now ambiguous, is never handed to anyone: the connection is closing.
    p.answer(0, true);
    assert_eq!(p.closed, Some(CloseReason::CorrelationLost));
    assert!(p.got.is_empty());
    p.reconnect(&cfg);
    for c in ['c', 'd', 'e'] {
        p.request(c, 2);
        p.answer(0, true);
    }
    assert_eq!(p.take(), [ok('c'), ok('d'), ok('e')]);
}

#[test]
fn by_id_an_unanswered_request_times_out_alone_and_its_late_reply_is_dropped() {
    let cfg = config(true, 8);
    let mut p = Pair::new(&cfg);
    p.request('a', 2);
    p.advance(Duration::from_millis(500), None);
    p.request('b', 2);
    p.advance(Duration::from_millis(500), None);
    assert_eq!(p.take(), [err('a', ClientError::Timeout)]);
    assert_eq!(p.closed, None, "nothing is ambiguous with ids");
    p.answer(0, true); // `a`'s late reply
    assert_eq!((p.late, p.got.len()), (1, 0), "dropped and counted");
    p.answer(0, true);
    p.request('c', 2);
    p.answer(0, true);
    assert_eq!(p.take(), [ok('b'), ok('c')]);
    assert!(p.pushes.is_empty());
}

#[test]
fn by_id_replies_out_of_order_find_their_requests() {
    let cfg = config(true, 8);
    let mut p = Pair::new(&cfg);
    let mut wire = BytesMut::new();
    for c in ['x', 'y', 'z'] {
        let call = Call::Request {
            method: 1,
            body: Bytes::from(c.to_string()),
            waiter: c,
        };
        let Pair {
            calls,
            client,
            got,
            now,
            ..
        } = &mut p;
        calls.call(Some(client), call, *now, &mut |a| record(got, a));
    }
    let mut chunks = [&[][..]; 8];
    let n = p.client.transmit_chunks(&mut chunks);
    wire.extend_from_slice(&chunks[..n].concat());
    let mut decoder = Decoder::new(Marks::default(), u64::MAX);
    let mut requests = Vec::new();
    while let Some(f) = decoder.decode(&mut wire).unwrap() {
        assert_eq!(f.kind, FrameKind::Request);
        requests.push(f);
    }
    // ...and answer them backwards, as a server that answers by id may.
    for f in requests.iter().rev() {
        let reply = encode_to_bytes(
            Marks::default(),
            FrameKind::Reply,
            f.method,
            &f.body,
            u64::MAX,
        );
        p.client.handle_bytes(&reply.unwrap(), p.now);
    }
    p.pump();
    assert_eq!(p.take(), [ok('z'), ok('y'), ok('x')]);
}

#[test]
fn many_timeouts_leave_the_pending_bound_free() {
    for ids in [false, true] {
        let cfg = config(ids, 3);
        let mut p = Pair::new(&cfg);
        for round in 0..10 {
            for c in ['a', 'b', 'c'] {
                p.request(c, 2);
            }
            // The route answers none of them.
            while !p.held.is_empty() {
                p.answer(0, false);
            }
            p.advance(Duration::from_secs(1), None);
            let got = p.take();
            assert_eq!(got.len(), 3, "ids {ids}, round {round}: {got:?}");
            assert!(got.iter().all(|(_, r)| r.is_err()));
            assert!(
                !got.iter()
                    .any(|(_, r)| *r == Err(ClientError::TooManyPending.to_string()))
            );
            if p.closed.is_some() || p.client.is_closed() {
                p.reconnect(&cfg);
            }
        }
        p.request('z', 2);
        p.answer(0, true);
        assert_eq!(p.take(), [ok('z')], "ids {ids}");
    }
}

#[test]
fn pushes_while_requests_are_pending_are_pushes_in_both_modes() {
    for ids in [false, true] {
        let cfg = config(ids, 8);
        let mut p = Pair::new(&cfg);
        p.request('a', 9);
        p.push("news");
        if ids {
            assert_eq!(p.pushes, [Bytes::from_static(b"news")]);
            assert!(p.got.is_empty());
        } else {
            // v1 cannot tell a push from a reply of the same method: lynn_tcp's limit.
            assert_eq!(p.take(), [('a', Ok("news".into()))]);
        }
        p.push("other");
        assert_eq!(p.pushes.last().unwrap(), "other");
    }
}

#[test]
fn a_timeout_behind_unread_pushes_names_the_cause() {
    let cfg = config(true, 8);
    let mut p = Pair::new(&cfg);
    p.request('a', 2);
    p.advance(Duration::from_secs(1), Some(20));
    assert_eq!(
        p.take(),
        [err('a', ClientError::PushesUnread { unread: 20 })]
    );
}

/// The README's sample bytes of the correlation extension, both ways.
#[test]
fn extension_sample_bytes() {
    const REQUEST: &[u8] = b"\xd9\x23\x0e\0\0\0\0\0\0\0\x03\x01\x00\x07\0\0\0hello\x27\x1e";
    let now = Instant::now();
    let mut client = Connection::new(ConnectionConfig::client(), now).unwrap();
    let mut server = Connection::new(ConnectionConfig::server(), now).unwrap();
    let id = lynn_proto::CorrelationId(7);
    client
        .send_request(1, id, Bytes::from_static(b"hello"), now)
        .unwrap();
    let mut chunks = [&[][..]; 4];
    let n = client.transmit_chunks(&mut chunks);
    assert_eq!(chunks[..n].concat(), REQUEST);
    server.handle_bytes(REQUEST, now);
    let Some(Event::Message(req)) = server.poll_event() else {
        panic!("no request")
    };
    assert_eq!(
        (req.method, &req.body[..], req.reply_to),
        (1, &b"hello"[..], None)
    );
    server.complete(req.id, Some((1, req.body)), now).unwrap();
    let n = server.transmit_chunks(&mut chunks);
    let mut reply = REQUEST.to_vec();
    reply[10] = 4;
    assert_eq!(chunks[..n].concat(), reply);
    client.handle_bytes(&reply, now);
    let Some(Event::Message(got)) = client.poll_event() else {
        panic!("no reply")
    };
    assert_eq!((&got.body[..], got.reply_to), (&b"hello"[..], Some(id)));
}

/// A request or reply frame too short to hold its id closes the connection as invalid.
#[test]
fn short_tagged_frame_is_invalid() {
    let now = Instant::now();
    for kind in [3u8, 4] {
        let mut server = Connection::new(ConnectionConfig::server(), now).unwrap();
        let bad = [
            0xd9, 0x23, 8, 0, 0, 0, 0, 0, 0, 0, kind, 1, 0, 7, 0, 0, 0x27, 0x1e,
        ];
        server.handle_bytes(&bad, now);
        // Nothing was owed: the write side ends at once, and the connection lingers until
        // the peer's end of stream.
        assert!(server.poll_shutdown_write());
        assert_eq!(server.poll_event(), None);
        server.handle_eof(now);
        match server.poll_event() {
            Some(Event::Closed(CloseReason::Protocol(e))) => assert_eq!(
                e.kind,
                lynn_proto::DecodeErrorKind::MissingCorrelationId { len: 8 }
            ),
            other => panic!("kind {kind}: {other:?}"),
        }
    }
}

/// Offline requests beyond `max_pending_requests` go out as replies free their slots, and
/// a call made meanwhile waits behind them (found by the client_calls fuzz target: they
/// stayed offline until the next reconnect, and later calls overtook them).
#[test]
fn offline_requests_wait_for_free_slots_and_keep_their_order() {
    let cfg = ClientConfig::builder()
        .max_pending_requests(1)
        .offline_queue(4)
        .correlation_ids(true)
        .build()
        .unwrap();
    let mut p = Pair::new(&cfg);
    let (calls, got) = (&mut p.calls, &mut p.got);
    for c in ['a', 'b'] {
        let call = Call::Request {
            method: 1,
            body: Bytes::from(c.to_string()),
            waiter: c,
        };
        calls.call(None, call, p.now, &mut |a| record(got, a));
    }
    calls.connected(&mut p.client, p.now);
    let send = Call::Send {
        method: 1,
        body: Bytes::from_static(b"s"),
        wait: true,
        ack: (),
    };
    calls.call(Some(&mut p.client), send, p.now, &mut |a| record(got, a));
    p.pump();
    let bodies = |p: &Pair| p.held.iter().map(|r| r.body.clone()).collect::<Vec<_>>();
    assert_eq!(
        bodies(&p),
        ["a"],
        "one slot: only `a` is out, the send waits behind `b`"
    );
    p.answer(0, true);
    assert_eq!(
        bodies(&p),
        ["b", "s"],
        "`b` took the freed slot, then the send"
    );
    p.answer(0, true);
    assert_eq!(p.take(), [ok('a'), ok('b')]);
}

/// A request kept offline must fit the frame with its correlation id (found by the
/// client_calls fuzz target: one that fit only untagged blocked the offline queue).
#[test]
fn an_offline_request_too_large_for_its_id_is_refused_at_once() {
    let cfg = ClientConfig::builder()
        .max_frame_len(20)
        .offline_queue(4)
        .correlation_ids(true)
        .build()
        .unwrap();
    let mut calls = Calls::new(&cfg);
    let mut got = Got::new();
    let call = |body: &'static str, c| Call::Request {
        method: 1,
        body: Bytes::from_static(body.as_bytes()),
        waiter: c,
    };
    let now = Instant::now();
    calls.call(None, call("fourteen bytes", 'a'), now, &mut |a| {
        record(&mut got, a)
    });
    calls.call(None, call("ok", 'b'), now, &mut |a| record(&mut got, a));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].1.as_ref().unwrap_err().contains("exceeds"),
        "{got:?}"
    );
    let mut client = Connection::new(cfg.connection.clone(), now).unwrap();
    calls.connected(&mut client, now);
    assert!(client.wants_write(), "`b` went out");
}
