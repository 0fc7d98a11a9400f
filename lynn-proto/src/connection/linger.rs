//! The lingering close of a [`Connection`] (see [`Linger`]).

use bytes::BytesMut;

use super::{Connection, State};
use crate::Instant;
use crate::config::Linger;
use crate::error::CloseReason;

/// The state of a lingering connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Lingering {
    /// Why the connection closes; `Event::Closed` carries it at the end.
    reason: CloseReason,
    until: Instant,
    /// Bytes still to read and discard.
    left: u64,
    /// The runtime was told to end the write side.
    shut: bool,
}

impl Connection {
    /// Whether the runtime should end the write side of the socket now (TCP FIN, as
    /// `shutdown(Write)`): true once, when a connection closing on its side has flushed
    /// its output and lingers for the peer's end of stream (see [`Linger`]). Check it after
    /// writing.
    #[inline]
    pub fn poll_shutdown_write(&mut self) -> bool {
        match &mut self.state {
            State::Lingering(l) if !l.shut => {
                l.shut = true;
                true
            }
            _ => false,
        }
    }

    /// Whether the connection lingers for the peer's end of stream.
    pub fn is_lingering(&self) -> bool {
        matches!(self.state, State::Lingering(_))
    }

    pub(super) fn start_linger(&mut self, reason: CloseReason, linger: Linger) {
        self.free_receive_buffer();
        self.state = State::Lingering(Box::new(Lingering {
            reason,
            until: self.now + linger.timeout,
            left: linger.max_bytes,
            shut: false,
        }));
    }

    pub(super) fn linger_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Lingering(l) => Some(l.until),
            _ => None,
        }
    }

    /// Input that arrived while not decoding: dropped (lingering counts it against its
    /// byte bound and keeps the buffer for the next read).
    #[cold]
    pub(super) fn discard_input(&mut self, new: usize) {
        self.recv_seen = 0;
        let State::Lingering(l) = &mut self.state else {
            self.recv = BytesMut::new();
            return;
        };
        self.recv.clear();
        l.left = l.left.saturating_sub(new as u64);
        if l.left == 0 {
            self.end_linger();
        }
    }

    /// The peer ended its side, lingering timed out or read its bound: closed.
    pub(super) fn end_linger(&mut self) {
        if let State::Lingering(l) = &self.state {
            let reason = l.reason.clone();
            self.abort(reason);
        }
    }
}
