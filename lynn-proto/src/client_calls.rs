//! [`ClientCalls`]: a client's sends and requests, minus the IO.
//!
//! A runtime's client task keeps one for its whole life, across reconnects, and feeds it
//! the handles' calls, the connection's events and the time. It decides everything else,
//! the same way in every runtime:
//!
//! - connected: a call goes to the [`Connection`]; a request's reply is matched with
//!   [`PendingRequests`] (its timeout starts when it is sent);
//! - send queue full: a waiting call (`send`, `request`) waits for room, in order; a
//!   non-waiting one (`try_send`) fails with [`ClientError::QueueFull`];
//! - disconnected or closing: sends and requests wait in the offline queue (`config.offline_queue`
//!   calls, 0 refuses with [`ClientError::Disconnected`]) and leave first after the next
//!   connect;
//! - every call is answered exactly once, through an [`Answer`].
//!
//! # Replies
//!
//! With `config.correlation_ids`, each request carries an id its reply echoes: replies may
//! come in any order, a request that expires fails alone with [`ClientError::Timeout`], and
//! its late reply is dropped ([`Delivery::Late`], to be counted). Without ids (lynn_tcp's
//! v1 wire), replies are matched by order; when a request expires, a later reply can no
//! longer be told from its late one, so the expired request fails with `Timeout`, every
//! other pending request with [`ClientError::CorrelationLost`], and the connection is
//! closed with [`CloseReason::CorrelationLost`] (the runtime then reconnects under its
//! policy), as careful HTTP/1.1 clients do with a pipelined connection. Nothing is kept for
//! an expired request in either mode.
//!
//! # Pushes
//!
//! A message that is no reply is a push, for the application's `recv`
//! ([`Delivery::Push`]). Replies never queue behind pushes; the runtime holds pushes in a
//! bounded queue under the [`PushFull`](crate::PushFull) policy. Only under
//! `PushFull::Wait` does a full queue stop reading (and so hold up replies); the runtime
//! then passes the number of unread pushes to [`ClientCalls::handle_timeout`], and a
//! request that expires meanwhile fails with [`ClientError::PushesUnread`] instead of a
//! bare `Timeout`.
//!
//! ```
//! use lynn_proto::client_calls::{Answer, Call, ClientCalls};
//! use lynn_proto::{ClientConfig, Connection, Instant};
//!
//! let config = ClientConfig::builder().offline_queue(8).build().unwrap();
//! let mut calls: ClientCalls<&str, &str> = ClientCalls::new(&config);
//! let now = Instant::now();
//! let mut answers = Vec::new();
//! // Disconnected: the request waits offline; its timeout has not started.
//! let call = Call::Request { method: 1, body: "hi".into(), waiter: "w" };
//! calls.call(None, call, now, &mut |a| answers.push(a));
//! assert!(answers.is_empty() && calls.poll_timeout().is_none());
//! // Connected: the offline queue leaves first, and the request awaits its reply.
//! let mut conn = Connection::new(config.connection.clone(), now).unwrap();
//! calls.connected(&mut conn, now);
//! assert!(conn.wants_write() && calls.poll_timeout().is_some());
//! ```

use std::collections::VecDeque;

use bytes::Bytes;

use crate::codec::{self, CorrelationId};
use crate::error::{CloseReason, EncodeError, SendError};
use crate::runtime::{ClientError, Message};
use crate::{ClientConfig, Connection, Event, Instant, PendingRequests, ReplyMatch};

/// Calls that may wait for room in the send queue before the task stops taking more
/// ([`ClientCalls::wants_calls`]).
pub const WAITING_LIMIT: usize = 256;

/// One call from a client handle. `A` answers a send, `W` a request.
#[derive(Debug)]
pub enum Call<A, W> {
    /// Send one message.
    Send {
        /// Method id.
        method: u16,
        /// Body.
        body: Bytes,
        /// Wait for room when the send queue is full (`send`), or fail at once (`try_send`).
        wait: bool,
        /// Answered with the outcome.
        ack: A,
    },
    /// Send a request and wait for its reply (the reply frame with its correlation id, or,
    /// without ids, the next message with the same method).
    Request {
        /// Method id.
        method: u16,
        /// Body.
        body: Bytes,
        /// Answered with the reply or the failure.
        waiter: W,
    },
}

impl<A, W> Call<A, W> {
    /// The answer that fails this call with `error` (for calls that find the client over).
    pub fn fail(self, error: ClientError) -> Answer<A, W> {
        match self {
            Call::Send { ack, .. } => Answer::Sent(ack, Err(error)),
            Call::Request { waiter, .. } => Answer::Replied(waiter, Err(error)),
        }
    }
}

/// The answer to one call, for the runtime to pass on to the caller.
#[derive(Debug)]
pub enum Answer<A, W> {
    /// A send's outcome.
    Sent(A, Result<(), ClientError>),
    /// A request's reply or failure.
    Replied(W, Result<Bytes, ClientError>),
}

/// A call kept while disconnected (a send was already answered: it is queued).
#[derive(Debug)]
struct Offline<W> {
    method: u16,
    body: Bytes,
    waiter: Option<W>,
}

/// What one connection event leaves to the runtime.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A message that is no reply: hand it to `recv`. When that queue is full, stop
    /// polling events until there is room (the core then stops reading).
    Push(Message),
    /// The connection is over: call [`ClientCalls::disconnected`].
    Closed(CloseReason),
    /// A reply to a request that had expired: dropped; count it
    /// (`lynn_messages_dropped_total`).
    Late,
    /// Nothing (a reply, already answered; a heartbeat).
    Nothing,
}

/// A client's calls in progress.
#[derive(Debug)]
pub struct ClientCalls<A, W> {
    pending: PendingRequests<W>,
    /// Calls waiting for room in the send queue, in order.
    waiting: VecDeque<Call<A, W>>,
    offline: VecDeque<Offline<W>>,
    offline_limit: usize,
    max_body: u64,
    /// Tag requests with correlation ids.
    correlate: bool,
}

impl<A, W> ClientCalls<A, W> {
    /// Empty, with the bounds of `config`.
    pub fn new(config: &ClientConfig) -> Self {
        ClientCalls {
            pending: PendingRequests::new(config.max_pending_requests, config.request_timeout),
            waiting: VecDeque::new(),
            offline: VecDeque::new(),
            offline_limit: config.offline_queue,
            max_body: codec::max_body_len(config.connection.peer_max_frame_len),
            correlate: config.correlation_ids,
        }
    }

    /// Whether the task should take further calls now (false while [`WAITING_LIMIT`] calls
    /// wait for room: the handles' bounded call channel then pushes back).
    pub fn wants_calls(&self) -> bool {
        self.waiting.len() < WAITING_LIMIT
    }

    /// Handles one call, on `conn` when connected, else offline.
    pub fn call(
        &mut self,
        conn: Option<&mut Connection>,
        call: Call<A, W>,
        now: Instant,
        answer: &mut impl FnMut(Answer<A, W>),
    ) {
        // A closing connection takes nothing new: the call waits for the next one.
        let Some(conn) = conn.filter(|c| c.is_open()) else {
            return self.queue_offline(call, answer);
        };
        if !self.waiting.is_empty() || !self.offline.is_empty() {
            // Calls ahead wait (for room, or for a free pending slot): keep the order, or
            // fail a `try_send` at once.
            match call {
                Call::Send {
                    wait: false, ack, ..
                } => answer(Answer::Sent(ack, Err(ClientError::QueueFull))),
                call => self.waiting.push_back(call),
            }
            return;
        }
        if let Some(call) = self.try_call(conn, call, now, answer) {
            self.waiting.push_back(call);
        }
    }

    /// A new connection is up: what waited offline leaves first, in order. A queued
    /// request's timeout starts now.
    pub fn connected(&mut self, conn: &mut Connection, now: Instant) {
        self.resume(conn, now, &mut |_| {});
    }

    /// What `event` leaves to the runtime; replies are answered through `answer`, and on
    /// `Writable` the calls that waited for room go out.
    pub fn handle_event(
        &mut self,
        conn: &mut Connection,
        event: Event,
        now: Instant,
        answer: &mut impl FnMut(Answer<A, W>),
    ) -> Delivery {
        match event {
            Event::Message(req) => {
                if conn.config().max_in_flight > 0 {
                    let _ = conn.complete(req.id, None, now);
                }
                match self.pending.match_reply(req.method, req.reply_to) {
                    ReplyMatch::Waiter(w) => {
                        answer(Answer::Replied(w, Ok(req.body)));
                        // A pending slot is free: an offline request may be waiting for it.
                        if !self.offline.is_empty() {
                            self.resume(conn, now, answer);
                        }
                    }
                    ReplyMatch::Late => return Delivery::Late,
                    ReplyMatch::Unmatched => {
                        return Delivery::Push(Message {
                            method: req.method,
                            body: req.body,
                        });
                    }
                }
                Delivery::Nothing
            }
            Event::Heartbeat => Delivery::Nothing,
            Event::Writable => {
                self.resume(conn, now, answer);
                Delivery::Nothing
            }
            Event::Closed(reason) => Delivery::Closed(reason),
        }
    }

    /// The earliest request deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.poll_timeout()
    }

    /// Fails every request whose deadline passed at `now`: with
    /// [`ClientError::PushesUnread`] when the runtime stopped reading because `unread_pushes`
    /// (`Some`) wait for `recv`, else with [`ClientError::Timeout`]. When one of them was
    /// matched by order, every other pending request fails with
    /// [`ClientError::CorrelationLost`] and `conn` is closed with
    /// [`CloseReason::CorrelationLost`] (see [Replies](self#replies)).
    pub fn handle_timeout(
        &mut self,
        conn: &mut Connection,
        now: Instant,
        unread_pushes: Option<usize>,
        answer: &mut impl FnMut(Answer<A, W>),
    ) {
        let mut lost = false;
        while let Some(expired) = self.pending.poll_expired(now) {
            lost |= expired.ambiguous;
            let error = match unread_pushes {
                Some(unread) => ClientError::PushesUnread { unread },
                None => ClientError::Timeout,
            };
            answer(Answer::Replied(expired.waiter, Err(error)));
        }
        if lost {
            for w in self.pending.drain() {
                answer(Answer::Replied(w, Err(ClientError::CorrelationLost)));
            }
            conn.close_with(CloseReason::CorrelationLost, now);
        } else if !self.offline.is_empty() {
            // Expired requests freed pending slots an offline request may be waiting for.
            self.resume(conn, now, answer);
        }
    }

    /// The connection is gone: requests sent on it fail with [`ClientError::Disconnected`];
    /// calls that waited for room go to the offline queue (or fail when it has none).
    pub fn disconnected(&mut self, answer: &mut impl FnMut(Answer<A, W>)) {
        for w in self.pending.drain() {
            answer(Answer::Replied(w, Err(ClientError::Disconnected)));
        }
        let waiting = std::mem::take(&mut self.waiting);
        for call in waiting {
            self.queue_offline(call, answer);
        }
    }

    /// The client is over: every call left fails with `error()`.
    pub fn finish(
        &mut self,
        error: impl Fn() -> ClientError,
        answer: &mut impl FnMut(Answer<A, W>),
    ) {
        for w in self.pending.drain() {
            answer(Answer::Replied(w, Err(error())));
        }
        for call in self.waiting.drain(..) {
            answer(call.fail(error()));
        }
        for w in self.offline.drain(..).filter_map(|q| q.waiter) {
            answer(Answer::Replied(w, Err(error())));
        }
    }

    /// Sends offline calls, then calls that waited for room, until the queue is full.
    fn resume(
        &mut self,
        conn: &mut Connection,
        now: Instant,
        answer: &mut impl FnMut(Answer<A, W>),
    ) {
        while let Some(q) = self.offline.front() {
            if q.waiter.is_some() && self.pending.is_full() {
                break;
            }
            let sent = if q.waiter.is_some() {
                self.send_request(conn, q.method, q.body.clone(), now)
            } else {
                conn.send(q.method, q.body.clone(), now).map(|()| None)
            };
            let correlation = match sent {
                Ok(correlation) => correlation,
                Err(SendError::Encode(e)) => {
                    // Checked when queued; answered rather than left blocking the queue.
                    if let Some(Offline {
                        waiter: Some(w), ..
                    }) = self.offline.pop_front()
                    {
                        answer(Answer::Replied(w, Err(ClientError::Encode(e))));
                    }
                    continue;
                }
                // Full or closing: the rest waits for room or the next connection.
                Err(_) => return,
            };
            if let Some(q) = self.offline.pop_front()
                && let Some(w) = q.waiter
                && let Err(w) = self.pending.push(q.method, correlation, w, now)
            {
                answer(Answer::Replied(w, Err(ClientError::TooManyPending)));
            }
        }
        if !self.offline.is_empty() {
            return;
        }
        while let Some(call) = self.waiting.pop_front() {
            if let Some(call) = self.try_call(conn, call, now, answer) {
                self.waiting.push_front(call);
                return;
            }
        }
    }

    /// Tries `call` on `conn`; gives it back when it must wait for room.
    fn try_call(
        &mut self,
        conn: &mut Connection,
        call: Call<A, W>,
        now: Instant,
        answer: &mut impl FnMut(Answer<A, W>),
    ) -> Option<Call<A, W>> {
        match call {
            Call::Send {
                method,
                body,
                wait,
                ack,
            } => match conn.send(method, body.clone(), now) {
                Err(SendError::QueueFull { .. }) if wait && !conn.is_closed() => {
                    return Some(Call::Send {
                        method,
                        body,
                        wait,
                        ack,
                    });
                }
                result => answer(Answer::Sent(ack, result.map_err(client_error))),
            },
            Call::Request {
                method,
                body,
                waiter,
            } => {
                if self.pending.is_full() {
                    answer(Answer::Replied(waiter, Err(ClientError::TooManyPending)));
                    return None;
                }
                match self.send_request(conn, method, body.clone(), now) {
                    Ok(correlation) => {
                        if let Err(w) = self.pending.push(method, correlation, waiter, now) {
                            answer(Answer::Replied(w, Err(ClientError::TooManyPending)));
                        }
                    }
                    Err(SendError::QueueFull { .. }) if !conn.is_closed() => {
                        return Some(Call::Request {
                            method,
                            body,
                            waiter,
                        });
                    }
                    Err(e) => answer(Answer::Replied(waiter, Err(client_error(e)))),
                }
            }
        }
        None
    }

    /// The largest request body: a tagged request's id takes 4 bytes of the frame.
    fn max_request_body(&self) -> u64 {
        match self.correlate {
            true => self.max_body.saturating_sub(codec::CORRELATION_LEN as u64),
            false => self.max_body,
        }
    }

    /// Sends a request, tagged with a fresh correlation id when ids are on.
    fn send_request(
        &mut self,
        conn: &mut Connection,
        method: u16,
        body: Bytes,
        now: Instant,
    ) -> Result<Option<CorrelationId>, SendError> {
        if !self.correlate {
            return conn.send(method, body, now).map(|()| None);
        }
        let id = self.pending.next_correlation();
        conn.send_request(method, id, body, now).map(|()| Some(id))
    }

    fn queue_offline(&mut self, call: Call<A, W>, answer: &mut impl FnMut(Answer<A, W>)) {
        let (body_len, max_body_len) = match &call {
            Call::Send { body, .. } => (body.len(), self.max_body),
            Call::Request { body, .. } => (body.len(), self.max_request_body()),
        };
        if body_len as u64 > max_body_len {
            let e = EncodeError::BodyTooLarge {
                body_len,
                max_body_len,
            };
            return answer(call.fail(e.into()));
        }
        if self.offline.len() >= self.offline_limit {
            return answer(call.fail(ClientError::Disconnected));
        }
        match call {
            Call::Send {
                method, body, ack, ..
            } => {
                self.offline.push_back(Offline {
                    method,
                    body,
                    waiter: None,
                });
                // Queued: it leaves after reconnecting.
                answer(Answer::Sent(ack, Ok(())));
            }
            Call::Request {
                method,
                body,
                waiter,
            } => self.offline.push_back(Offline {
                method,
                body,
                waiter: Some(waiter),
            }),
        }
    }
}

/// The error a client call gets for a refused send.
pub fn client_error(e: SendError) -> ClientError {
    match e {
        SendError::Encode(e) => ClientError::Encode(e),
        SendError::QueueFull { .. } => ClientError::QueueFull,
        _ => ClientError::Disconnected,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ConnectionConfig;
    use crate::codec::{FrameKind, Marks};

    type Calls = ClientCalls<char, char>;
    type Got = Vec<(char, Result<String, String>)>;

    fn config(offline: usize) -> ClientConfig {
        ClientConfig::builder()
            .offline_queue(offline)
            .request_timeout(Some(Duration::from_secs(1)))
            .build()
            .unwrap()
    }

    /// Records answers as (who, Ok(body) / Err(error text)).
    fn sink(got: &mut Got) -> impl FnMut(Answer<char, char>) + '_ {
        |a| {
            got.push(match a {
                Answer::Sent(c, r) => (c, r.map(|()| String::new()).map_err(|e| e.to_string())),
                Answer::Replied(c, r) => (
                    c,
                    r.map(|b| String::from_utf8_lossy(&b).into_owned())
                        .map_err(|e| e.to_string()),
                ),
            })
        }
    }

    fn feed(conn: &mut Connection, method: u16, body: &[u8], now: Instant) -> Event {
        let f = codec::encode_to_bytes(Marks::default(), FrameKind::Message, method, body, 1 << 20);
        conn.handle_bytes(&f.unwrap(), now);
        conn.poll_event().unwrap()
    }

    fn request(c: char) -> Call<char, char> {
        Call::Request {
            method: 1,
            body: Bytes::from(c.to_string()),
            waiter: c,
        }
    }

    fn send(c: char, wait: bool) -> Call<char, char> {
        Call::Send {
            method: 2,
            body: Bytes::from(vec![b'x'; 600 * 1024]),
            wait,
            ack: c,
        }
    }

    #[test]
    fn replies_match_requests_and_the_rest_are_pushes() {
        let now = Instant::now();
        let (mut calls, mut got) = (Calls::new(&config(0)), Got::new());
        let mut conn = Connection::new(ConnectionConfig::client(), now).unwrap();
        calls.call(Some(&mut conn), request('a'), now, &mut sink(&mut got));
        let e = feed(&mut conn, 2, b"push", now);
        let d = calls.handle_event(&mut conn, e, now, &mut sink(&mut got));
        assert!(matches!(d, Delivery::Push(m) if m.method == 2));
        let e = feed(&mut conn, 1, b"reply", now);
        let d = calls.handle_event(&mut conn, e, now, &mut sink(&mut got));
        assert_eq!(d, Delivery::Nothing);
        assert_eq!(got, [('a', Ok("reply".into()))]);
    }

    #[test]
    fn full_send_queue_holds_waiting_calls_and_fails_try_send() {
        let now = Instant::now();
        let (mut calls, mut got) = (Calls::new(&config(0)), Got::new());
        let mut conn = Connection::new(ConnectionConfig::client(), now).unwrap();
        for call in [
            send('a', true),
            send('b', true),
            send('c', true),
            send('t', false),
        ] {
            calls.call(Some(&mut conn), call, now, &mut sink(&mut got));
        }
        assert_eq!(got.len(), 3, "a and b sent, c waits, t refused: {got:?}");
        assert_eq!(got[2].0, 't');
        assert!(got[2].1.as_ref().unwrap_err().contains("full"));
        // The socket takes everything: Writable, and the waiting call goes out.
        let n = conn.pending_transmit();
        conn.handle_written(n, now);
        while let Some(e) = conn.poll_event() {
            let _ = calls.handle_event(&mut conn, e, now, &mut sink(&mut got));
        }
        assert_eq!(got.last(), Some(&('c', Ok(String::new()))));
    }

    #[test]
    fn offline_queue_is_bounded_and_timeouts_start_when_sent() {
        let t0 = Instant::now();
        let (mut calls, mut got) = (Calls::new(&config(2)), Got::new());
        calls.call(None, request('r'), t0, &mut sink(&mut got));
        calls.call(None, send('s', true), t0, &mut sink(&mut got));
        calls.call(None, request('x'), t0, &mut sink(&mut got));
        assert_eq!(got.len(), 2, "s queued (answered), x refused: {got:?}");
        assert_eq!(got[1], ('x', Err(ClientError::Disconnected.to_string())));
        assert_eq!(calls.poll_timeout(), None);
        let t1 = t0 + Duration::from_secs(5);
        let mut conn = Connection::new(ConnectionConfig::client(), t1).unwrap();
        calls.connected(&mut conn, t1);
        assert_eq!(calls.poll_timeout(), Some(t1 + Duration::from_secs(1)));
        let t2 = t1 + Duration::from_secs(1);
        calls.handle_timeout(&mut conn, t2, None, &mut sink(&mut got));
        assert_eq!(got[2], ('r', Err(ClientError::Timeout.to_string())));
    }

    #[test]
    fn zero_offline_queue_refuses_and_finish_answers_everything() {
        let now = Instant::now();
        let (mut calls, mut got) = (Calls::new(&config(0)), Got::new());
        calls.call(None, send('s', true), now, &mut sink(&mut got));
        assert_eq!(got[0], ('s', Err(ClientError::Disconnected.to_string())));
        let mut calls = Calls::new(&config(4));
        let mut conn = Connection::new(ConnectionConfig::client(), now).unwrap();
        calls.call(Some(&mut conn), request('a'), now, &mut sink(&mut got));
        calls.disconnected(&mut sink(&mut got));
        assert_eq!(got[1], ('a', Err(ClientError::Disconnected.to_string())));
        calls.call(None, request('b'), now, &mut sink(&mut got));
        calls.finish(|| ClientError::Closed(None), &mut sink(&mut got));
        assert_eq!(got[2], ('b', Err(ClientError::Closed(None).to_string())));
    }
}
