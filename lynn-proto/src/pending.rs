//! [`PendingRequests`]: matching replies to a client's requests.
//!
//! Two ways to match, one per request:
//!
//! - **By correlation id** (the extension, [`FrameKind::Request`](crate::FrameKind) and
//!   `Reply`): a reply names its request, so replies may come in any order, a request that
//!   expires is simply forgotten, and a reply that names no pending request is late
//!   ([`ReplyMatch::Late`]): dropped, never handed to another request.
//! - **By order** (v1, no ids): a lynn server answers each connection's requests in order,
//!   so the next message with the method a request expects is its reply, and a message that
//!   matches nothing is a push. When such a request expires, nothing can tell its late reply
//!   from the next one: [`Expired::ambiguous`] says the order is lost, and the caller must
//!   give up the connection (see [`ClientCalls`](crate::client_calls::ClientCalls)).
//!
//! Entries never outlive their request: the table holds at most `max` live requests.
//!
//! ```
//! use std::time::Duration;
//! use lynn_proto::{CorrelationId, Instant, PendingRequests, ReplyMatch};
//!
//! let now = Instant::now();
//! let mut pending = PendingRequests::new(8, Some(Duration::from_secs(5)));
//! let a = pending.next_correlation();
//! let b = pending.next_correlation();
//! pending.push(1, Some(a), "request A", now).unwrap();
//! pending.push(1, Some(b), "request B", now).unwrap();
//! // Replies in any order find their own request.
//! assert_eq!(pending.match_reply(1, Some(b)), ReplyMatch::Waiter("request B"));
//! assert_eq!(pending.match_reply(1, Some(a)), ReplyMatch::Waiter("request A"));
//! assert_eq!(pending.match_reply(1, Some(a)), ReplyMatch::Late);
//! assert_eq!(pending.match_reply(9, None), ReplyMatch::Unmatched);
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use crate::Instant;
use crate::codec::CorrelationId;

/// What an incoming message is to [`PendingRequests`].
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyMatch<W> {
    /// The reply to the request that registered this waiter.
    Waiter(W),
    /// A reply naming a request that is no longer pending (it expired): drop it.
    Late,
    /// Not a reply: deliver it as a push.
    Unmatched,
}

/// A request whose deadline passed, from [`PendingRequests::poll_expired`].
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<W> {
    /// Whoever waits for the reply.
    pub waiter: W,
    /// The request was matched by order (no correlation id): its reply may still come and
    /// would be taken for the reply of a later request, so the connection's order is lost.
    pub ambiguous: bool,
}

#[derive(Debug)]
struct Entry<W> {
    method: u16,
    correlation: Option<CorrelationId>,
    deadline: Option<Instant>,
    waiter: W,
}

/// Requests awaiting replies, oldest first, bounded. `W` is whatever wakes the caller (a
/// oneshot sender, a slot index, …).
#[derive(Debug)]
pub struct PendingRequests<W> {
    entries: VecDeque<Entry<W>>,
    max: usize,
    timeout: Option<Duration>,
    next: u32,
}

impl<W> PendingRequests<W> {
    /// At most `max` requests; requests expire after `timeout`.
    pub fn new(max: usize, timeout: Option<Duration>) -> Self {
        PendingRequests {
            entries: VecDeque::new(),
            max,
            timeout,
            next: 0,
        }
    }

    /// Requests pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `push` would refuse a request now.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A correlation id no pending request uses, for the next request.
    pub fn next_correlation(&mut self) -> CorrelationId {
        loop {
            let id = CorrelationId(self.next);
            self.next = self.next.wrapping_add(1);
            // At most `max` ids are in use, so this ends.
            if !self.entries.iter().any(|e| e.correlation == Some(id)) {
                return id;
            }
        }
    }

    /// Registers a sent request whose reply will carry `reply_method` (matched by order) or
    /// `correlation` (matched by id). Gives the waiter back when `max` requests are pending.
    pub fn push(
        &mut self,
        reply_method: u16,
        correlation: Option<CorrelationId>,
        waiter: W,
        now: Instant,
    ) -> Result<(), W> {
        if self.is_full() {
            return Err(waiter);
        }
        let deadline = self.timeout.and_then(|t| now.checked_add(t));
        self.entries.push_back(Entry {
            method: reply_method,
            correlation,
            deadline,
            waiter,
        });
        Ok(())
    }

    /// Classifies an incoming message with `method`, which is a reply to `reply_to` when it
    /// came as a reply frame.
    pub fn match_reply(&mut self, method: u16, reply_to: Option<CorrelationId>) -> ReplyMatch<W> {
        let found = match reply_to {
            Some(id) => self.entries.iter().position(|e| e.correlation == Some(id)),
            None => self
                .entries
                .iter()
                .position(|e| e.correlation.is_none() && e.method == method),
        };
        match (found.and_then(|i| self.entries.remove(i)), reply_to) {
            (Some(e), _) => ReplyMatch::Waiter(e.waiter),
            (None, Some(_)) => ReplyMatch::Late,
            (None, None) => ReplyMatch::Unmatched,
        }
    }

    /// The earliest deadline of a pending request.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries.iter().filter_map(|e| e.deadline).min()
    }

    /// Removes one request whose deadline is at or before `now`. Call until it returns
    /// `None`.
    #[must_use]
    pub fn poll_expired(&mut self, now: Instant) -> Option<Expired<W>> {
        let i = self
            .entries
            .iter()
            .position(|e| e.deadline.is_some_and(|d| d <= now))?;
        let e = self.entries.remove(i)?;
        Some(Expired {
            waiter: e.waiter,
            ambiguous: e.correlation.is_none(),
        })
    }

    /// Forgets every request (the connection is gone, or its order lost), returning their
    /// waiters.
    pub fn drain(&mut self) -> impl Iterator<Item = W> + '_ {
        self.entries.drain(..).map(|e| e.waiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_order_matches_oldest_of_same_method_and_leaves_others() {
        let now = Instant::now();
        let mut p = PendingRequests::new(4, None);
        p.push(1, None, 'a', now).unwrap();
        p.push(2, None, 'b', now).unwrap();
        p.push(1, None, 'c', now).unwrap();
        assert_eq!(p.match_reply(2, None), ReplyMatch::Waiter('b'));
        assert_eq!(p.match_reply(1, None), ReplyMatch::Waiter('a'));
        assert_eq!(p.match_reply(1, None), ReplyMatch::Waiter('c'));
        assert_eq!(p.match_reply(1, None), ReplyMatch::Unmatched);
    }

    #[test]
    fn bounded_by_live_requests_only() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new(1, Some(Duration::from_secs(1)));
        p.push(1, None, 'a', t0).unwrap();
        assert_eq!(p.push(1, None, 'b', t0), Err('b'));
        let t1 = t0 + Duration::from_secs(1);
        let e = p.poll_expired(t1).unwrap();
        assert_eq!((e.waiter, e.ambiguous), ('a', true));
        assert!(p.is_empty(), "an expired request leaves nothing behind");
        p.push(1, None, 'c', t1).unwrap();
    }

    #[test]
    fn by_id_expired_request_makes_its_reply_late_not_anothers() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new(4, Some(Duration::from_secs(1)));
        let a = p.next_correlation();
        let b = p.next_correlation();
        assert_ne!(a, b);
        p.push(1, Some(a), 'a', t0).unwrap();
        p.push(1, Some(b), 'b', t0 + Duration::from_millis(500))
            .unwrap();
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(p.poll_expired(t0 + Duration::from_millis(999)), None);
        let e = p.poll_expired(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!((e.waiter, e.ambiguous), ('a', false));
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
        assert_eq!(p.match_reply(1, Some(a)), ReplyMatch::Late);
        assert_eq!(p.match_reply(1, None), ReplyMatch::Unmatched, "a push");
        assert_eq!(p.match_reply(1, Some(b)), ReplyMatch::Waiter('b'));
    }

    #[test]
    fn ids_in_use_are_skipped_when_the_counter_wraps() {
        let now = Instant::now();
        let mut p = PendingRequests::new(4, None);
        p.next = u32::MAX;
        let last = p.next_correlation();
        p.push(1, Some(last), 'x', now).unwrap();
        p.push(1, Some(CorrelationId(0)), 'y', now).unwrap();
        assert_eq!(last, CorrelationId(u32::MAX));
        assert_eq!(p.next_correlation(), CorrelationId(1), "0 is in use");
    }

    #[test]
    fn drain_returns_every_waiter() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new(4, Some(Duration::from_secs(1)));
        p.push(1, None, 'a', t0).unwrap();
        p.push(2, None, 'b', t0 + Duration::from_secs(2)).unwrap();
        let _ = p.poll_expired(t0 + Duration::from_secs(1));
        assert_eq!(p.drain().collect::<Vec<_>>(), vec!['b']);
        assert!(p.is_empty());
    }
}
