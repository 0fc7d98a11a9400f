//! Errors, split the way h11 splits them: what the remote peer did wrong ends that one
//! connection with a [`CloseReason`]; what the local caller did wrong is returned to it as an
//! error and changes nothing.

use std::io;

use thiserror::Error;

/// The peer sent bytes that are not a valid frame. Terminal for that connection only.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid frame #{frame} at stream offset {offset}: {kind}")]
pub struct DecodeError {
    /// Stream offset of the first byte of the offending frame.
    pub offset: u64,
    /// Index of the offending frame in the stream (frames before it were valid).
    pub frame: u64,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// What made a frame invalid.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The first two bytes were not this endpoint's header mark.
    #[error("header mark {found:#06x}, expected {expected:#06x}")]
    BadHeaderMark {
        /// The endpoint's header mark.
        expected: u16,
        /// What the peer sent.
        found: u16,
    },
    /// The length field was below 5 (kind + method + tail).
    #[error("length field {len} is below the minimum of 5")]
    LengthTooSmall {
        /// The declared length.
        len: u64,
    },
    /// The length field exceeded this endpoint's `max_frame_len`.
    #[error("length field {len} exceeds the limit of {max}")]
    LengthTooLarge {
        /// The declared length.
        len: u64,
        /// The endpoint's limit.
        max: u64,
    },
    /// A request or reply frame (kind 3 or 4) too short to hold its 4-byte correlation id.
    #[error("length field {len} of a request or reply is below the minimum of 9")]
    MissingCorrelationId {
        /// The declared length.
        len: u64,
    },
    /// The last two bytes of the frame were not this endpoint's tail mark.
    #[error("tail mark {found:#06x}, expected {expected:#06x}")]
    BadTailMark {
        /// The endpoint's tail mark.
        expected: u16,
        /// What the peer sent.
        found: u16,
    },
}

/// The caller asked to encode a frame the receiving peer would reject.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The body does not fit under the peer's `max_frame_len`.
    #[error("body of {body_len} bytes exceeds the peer's limit of {max_body_len} bytes")]
    BodyTooLarge {
        /// Size of the refused body.
        body_len: usize,
        /// Largest body the peer accepts.
        max_body_len: u64,
    },
}

/// Why [`Connection::send`](crate::Connection::send) refused a frame. Nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The frame would exceed the peer's limit.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The send queue is at its bound. Wait for [`Event::Writable`](crate::Event::Writable)
    /// and try again, or give up on this peer.
    #[error("send queue full ({queued} bytes queued, limit {limit})")]
    QueueFull {
        /// Bytes queued now.
        queued: usize,
        /// The configured bound.
        limit: usize,
    },
    /// The connection is closing or closed; it accepts no new frames.
    #[error("connection is closed")]
    Closed,
}

/// Why a connection ended. Delivered once, as the last event of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The local side closed it ([`Connection::close`](crate::Connection::close)) after
    /// flushing what was queued.
    #[error("closed locally")]
    Local,
    /// The peer closed its side cleanly between frames.
    #[error("peer closed the connection")]
    PeerClosed,
    /// The peer closed its side in the middle of a frame.
    #[error("peer closed the connection mid-frame ({buffered} bytes of a partial frame)")]
    PeerClosedMidFrame {
        /// Bytes of the unfinished frame.
        buffered: usize,
    },
    /// The peer sent an invalid frame.
    #[error(transparent)]
    Protocol(#[from] DecodeError),
    /// Nothing (or, in heartbeat-only mode, no heartbeat) arrived within the idle timeout.
    #[error("no traffic from the peer within the idle timeout")]
    IdleTimeout,
    /// A partial frame sat unfinished longer than the read timeout.
    #[error("a partial frame stalled longer than the read timeout")]
    ReadTimeout,
    /// Queued output made no progress within the write timeout.
    #[error("queued output made no progress within the write timeout")]
    WriteTimeout,
    /// The send queue overflowed under the close-on-full policy (a slow consumer).
    #[error("send queue overflowed (slow consumer)")]
    SlowConsumer,
    /// The peer called a method no route handles, under the close policy.
    #[error("unknown method {method}")]
    UnknownMethod {
        /// The method id.
        method: u16,
    },
    /// The runtime's socket failed.
    #[error("transport error: {0}")]
    Transport(io::ErrorKind),
    /// A client's request timed out without correlation ids, so later replies could no
    /// longer be matched to their requests; the client closed the connection.
    #[error("reply order lost after a request timed out")]
    CorrelationLost,
    /// A large frame still arriving would have held more memory than the server's
    /// [`FrameBudget`](crate::FrameBudget) allows, under its close policy.
    #[error("a large partial frame exceeded the server's frame memory budget")]
    FrameBudget,
}

impl CloseReason {
    /// A stable snake_case label for metrics (`lynn_connections_closed_total{reason=…}`).
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::Local => "local",
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::PeerClosedMidFrame { .. } => "peer_closed_mid_frame",
            CloseReason::Protocol(_) => "protocol_error",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::ReadTimeout => "read_timeout",
            CloseReason::WriteTimeout => "write_timeout",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::UnknownMethod { .. } => "unknown_method",
            CloseReason::Transport(_) => "transport_error",
            CloseReason::CorrelationLost => "correlation_lost",
            CloseReason::FrameBudget => "frame_budget",
        }
    }

    /// Whether the peer misbehaved (as opposed to a clean or locally decided close).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosedMidFrame { .. }
                | CloseReason::Protocol(_)
                | CloseReason::IdleTimeout
                | CloseReason::ReadTimeout
                | CloseReason::UnknownMethod { .. }
                | CloseReason::FrameBudget
        )
    }
}

/// The caller misused [`Connection::complete`](crate::Connection::complete).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// The id was never delivered on this connection, or was already completed.
    #[error("request {id} is not in flight on this connection")]
    NotInFlight {
        /// The offending id.
        id: u64,
    },
    /// The reply does not fit under the peer's limit. The request was completed without a
    /// reply, so later replies are not held up.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A configuration value that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid configuration: {field} {problem}")]
pub struct ConfigError {
    /// The option's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}
