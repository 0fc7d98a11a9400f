//! [`PendingRequests`]: matching replies to a client's requests.
//!
//! The lynn wire format carries no request ids. A lynn server answers each connection's
//! requests in order, so a client matches the next incoming message whose method is the one
//! a request expects to the oldest request expecting it. A message that matches nothing is a
//! push from the server, not a reply.
//!
//! A request that times out keeps its place as a tombstone: its late reply is still
//! consumed (and dropped) instead of being handed to the next request of the same method.
//!
//! ```
//! use std::time::Duration;
//! use lynn_proto::{Instant, PendingRequests, ReplyMatch};
//!
//! let now = Instant::now();
//! let mut pending = PendingRequests::new(8, Some(Duration::from_secs(5)));
//! pending.push(1, "waiter for request A", now).unwrap();
//! pending.push(1, "waiter for request B", now).unwrap();
//! assert_eq!(pending.match_reply(1), ReplyMatch::Waiter("waiter for request A"));
//! assert_eq!(pending.match_reply(9), ReplyMatch::Unmatched);
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use crate::Instant;

/// What an incoming message is to [`PendingRequests`].
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyMatch<W> {
    /// The reply to the request that registered this waiter.
    Waiter(W),
    /// The late reply to a request that timed out; drop it.
    Late,
    /// Not a reply: deliver it as a push.
    Unmatched,
}

#[derive(Debug)]
struct Entry<W> {
    method: u16,
    deadline: Option<Instant>,
    /// `None` once the request timed out (a tombstone).
    waiter: Option<W>,
}

/// Requests awaiting replies, oldest first, bounded. `W` is whatever wakes the caller (a
/// oneshot sender, a slot index, …).
#[derive(Debug)]
pub struct PendingRequests<W> {
    entries: VecDeque<Entry<W>>,
    max: usize,
    timeout: Option<Duration>,
}

impl<W> PendingRequests<W> {
    /// At most `max` entries (tombstones included); requests expire after `timeout`.
    pub fn new(max: usize, timeout: Option<Duration>) -> Self {
        PendingRequests {
            entries: VecDeque::new(),
            max,
            timeout,
        }
    }

    /// Entries held, tombstones included.
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

    /// Registers a request whose reply will carry `reply_method`. Gives the waiter back when
    /// `max` entries are pending.
    pub fn push(&mut self, reply_method: u16, waiter: W, now: Instant) -> Result<(), W> {
        if self.entries.len() >= self.max {
            return Err(waiter);
        }
        let deadline = self.timeout.and_then(|t| now.checked_add(t));
        self.entries.push_back(Entry {
            method: reply_method,
            deadline,
            waiter: Some(waiter),
        });
        Ok(())
    }

    /// Classifies an incoming message with `method`.
    pub fn match_reply(&mut self, method: u16) -> ReplyMatch<W> {
        let Some(i) = self.entries.iter().position(|e| e.method == method) else {
            return ReplyMatch::Unmatched;
        };
        match self.entries.remove(i).and_then(|e| e.waiter) {
            Some(w) => ReplyMatch::Waiter(w),
            None => ReplyMatch::Late,
        }
    }

    /// The earliest deadline of a request still waiting.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| e.waiter.is_some())
            .filter_map(|e| e.deadline)
            .min()
    }

    /// Takes the waiter of one request whose deadline is at or before `now`, leaving a
    /// tombstone. Call until it returns `None`.
    #[must_use]
    pub fn poll_expired(&mut self, now: Instant) -> Option<W> {
        self.entries
            .iter_mut()
            .find(|e| e.waiter.is_some() && e.deadline.is_some_and(|d| d <= now))
            .and_then(|e| e.waiter.take())
    }

    /// Forgets everything (the connection is gone, so no reply can come), returning the
    /// waiters still waiting.
    pub fn drain(&mut self) -> impl Iterator<Item = W> + '_ {
        self.entries.drain(..).filter_map(|e| e.waiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_oldest_of_same_method_and_leaves_others() {
        let now = Instant::now();
        let mut p = PendingRequests::new(4, None);
        p.push(1, 'a', now).unwrap();
        p.push(2, 'b', now).unwrap();
        p.push(1, 'c', now).unwrap();
        assert_eq!(p.match_reply(2), ReplyMatch::Waiter('b'));
        assert_eq!(p.match_reply(1), ReplyMatch::Waiter('a'));
        assert_eq!(p.match_reply(1), ReplyMatch::Waiter('c'));
        assert_eq!(p.match_reply(1), ReplyMatch::Unmatched);
    }

    #[test]
    fn bounded() {
        let now = Instant::now();
        let mut p = PendingRequests::new(1, None);
        p.push(1, 'a', now).unwrap();
        assert_eq!(p.push(1, 'b', now), Err('b'));
    }

    #[test]
    fn expired_request_swallows_its_late_reply() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new(4, Some(Duration::from_secs(1)));
        p.push(1, 'a', t0).unwrap();
        p.push(1, 'b', t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(p.poll_expired(t0 + Duration::from_millis(999)), None);
        assert_eq!(p.poll_expired(t0 + Duration::from_secs(1)), Some('a'));
        assert_eq!(p.poll_expired(t0 + Duration::from_secs(1)), None);
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
        // A's reply arrives late: dropped, not given to B.
        assert_eq!(p.match_reply(1), ReplyMatch::Late);
        assert_eq!(p.match_reply(1), ReplyMatch::Waiter('b'));
    }

    #[test]
    fn drain_returns_live_waiters() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new(4, Some(Duration::from_secs(1)));
        p.push(1, 'a', t0).unwrap();
        p.push(2, 'b', t0 + Duration::from_secs(2)).unwrap();
        let _ = p.poll_expired(t0 + Duration::from_secs(1));
        assert_eq!(p.drain().collect::<Vec<_>>(), vec!['b']);
        assert!(p.is_empty());
    }
}
