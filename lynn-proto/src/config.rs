//! Per-connection settings, with presets for the server and the client side.

use std::time::Duration;

use crate::codec::{DEFAULT_MAX_FRAME_LEN, Marks, OVERHEAD};
use crate::error::ConfigError;

/// What proves that a peer is alive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Liveness {
    /// Any received frame counts (lynn's default): a busy peer that never sends heartbeats
    /// is never evicted. Bytes of an unfinished frame do not count (a peer trickling one
    /// byte at a time is still evicted).
    #[default]
    AnyFrame,
    /// Only heartbeat frames count, as in lynn_tcp.
    HeartbeatOnly,
}

/// What [`Connection::send`](crate::Connection::send) does when the send queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum SendFull {
    /// Refuse the frame with [`SendError::QueueFull`](crate::SendError::QueueFull); the
    /// caller may wait for [`Event::Writable`](crate::Event::Writable) and retry.
    #[default]
    Reject,
    /// Close the connection with [`CloseReason::SlowConsumer`](crate::CloseReason::SlowConsumer):
    /// a peer that cannot keep up is cut off instead of being waited for.
    Close,
}

/// Settings of one [`Connection`](crate::Connection).
///
/// Start from [`ConnectionConfig::server`] or [`ConnectionConfig::client`] and change fields;
/// [`validate`](Self::validate) says what cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
// Deserialize is written by hand (serde_impl/connection.rs): a table is read over a preset,
// the server's or the client's, so that a key left out keeps that side's default.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConnectionConfig {
    /// Header and tail marks of this endpoint (default lynn_tcp's 9177 / 7719).
    pub marks: Marks,
    /// Largest length field accepted from the peer; checked before any allocation.
    pub max_frame_len: u64,
    /// Largest length field the peer accepts; larger outgoing frames are refused locally.
    pub peer_max_frame_len: u64,
    /// Send a heartbeat when nothing else was sent for this long (clients). `None`: never.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off_duration"))]
    pub heartbeat_interval: Option<Duration>,
    /// Close when the peer shows no sign of life for this long. `None`: never.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off_duration"))]
    pub idle_timeout: Option<Duration>,
    /// What counts as a sign of life for `idle_timeout`.
    pub liveness: Liveness,
    /// Close when a partial frame receives no further bytes for this long. `None`: never.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off_duration"))]
    pub read_timeout: Option<Duration>,
    /// Close when queued output makes no progress for this long. `None`: never.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off_duration"))]
    pub write_timeout: Option<Duration>,
    /// Free the receive buffer and the send queue's memory once both are empty and no
    /// bytes were received or written for this long; the next read or send allocates them
    /// again. Default 5 s: a connection that speaks more often keeps its buffers (no
    /// allocation per message); one that speaks every 30 s (a device gateway, a chat
    /// server) holds neither for most of its life (with the default `read_chunk`, ~17 KiB
    /// reserved, ~5 KiB of it resident). `None`: keep them while open. A runtime that
    /// lends its connections [`SpareBuffers`](crate::SpareBuffers) (the lynn-tokio and
    /// lynn-smol servers do) takes them back after every turn that empties them.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off_duration"))]
    pub release_buffers_after: Option<Duration>,
    /// Bound, in bytes, of the send queue. A frame is accepted while the queue holds less
    /// than this, so the queue never exceeds the bound by more than one frame.
    pub send_queue_limit: usize,
    /// What `send` does when the queue is full.
    pub send_full: SendFull,
    /// Messages delivered to the application and not yet completed, per connection. While
    /// this many are in flight, no further message is delivered and reading stops. Replies
    /// given to [`complete`](crate::Connection::complete) leave in request order. `0` turns
    /// completion tracking off: messages need no completion (typical for clients).
    pub max_in_flight: usize,
    /// Decoded events held for the application before decoding (and so reading) pauses.
    pub max_queued_events: usize,
    /// Bytes of free space to offer a read: the receive buffer is topped up to this much
    /// free space whenever less than a quarter of it is free.
    pub read_chunk: usize,
    /// How a connection that closes on its side (a graceful close, an invalid frame) waits
    /// for the peer before the socket is closed. `None`: close at once once flushed, which
    /// resets the connection (and discards replies the peer has not read yet) if input is
    /// still arriving.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub linger: Option<Linger>,
}

/// A lingering close, as nginx and Apache do it. Closing a socket whose peer is still
/// sending makes the kernel answer with a reset, and a reset makes the peer's kernel drop
/// what it received and the peer has not read yet: the replies owed to it. So once its
/// output is flushed, a connection closing on its side ends its write side (the peer sees
/// the end of the stream after the last reply), then reads and discards input until the
/// peer's end of stream, `timeout`, or `max_bytes`, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields, expecting = "\"off\" or a linger table")
)]
pub struct Linger {
    /// Longest wait for the peer's end of stream (default 2 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub timeout: Duration,
    /// Most bytes read and discarded (default 1 MiB).
    pub max_bytes: u64,
}

impl Default for Linger {
    fn default() -> Self {
        Linger {
            timeout: Duration::from_secs(2),
            max_bytes: 1024 * 1024,
        }
    }
}

impl ConnectionConfig {
    /// Server-side defaults: 180 s idle timeout (lynn_tcp's heartbeat timeout), a partial
    /// frame closed after 30 s without further bytes, no heartbeat sending, 16 requests in
    /// flight per connection, 1 MiB send queue, buffers released after 5 s of quiet, a
    /// lingering close of up to 2 s and 1 MiB.
    pub fn server() -> Self {
        ConnectionConfig {
            marks: Marks::default(),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            peer_max_frame_len: DEFAULT_MAX_FRAME_LEN,
            heartbeat_interval: None,
            idle_timeout: Some(Duration::from_secs(180)),
            liveness: Liveness::AnyFrame,
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(60)),
            release_buffers_after: Some(Duration::from_secs(5)),
            send_queue_limit: 1024 * 1024,
            send_full: SendFull::Reject,
            max_in_flight: 16,
            max_queued_events: 64,
            read_chunk: 16 * 1024,
            linger: Some(Linger::default()),
        }
    }

    /// Client-side defaults: a heartbeat every 30 s of send silence (well inside a server's
    /// 180 s idle timeout), no idle timeout, no completion tracking.
    pub fn client() -> Self {
        ConnectionConfig {
            heartbeat_interval: Some(Duration::from_secs(30)),
            idle_timeout: None,
            max_in_flight: 0,
            ..Self::server()
        }
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.into(),
            })
        };
        if self.max_frame_len < crate::codec::MIN_LENGTH_FIELD {
            return err("max_frame_len", "must be at least 5");
        }
        if self.peer_max_frame_len < crate::codec::MIN_LENGTH_FIELD {
            return err("peer_max_frame_len", "must be at least 5");
        }
        if self.send_queue_limit < OVERHEAD {
            return err(
                "send_queue_limit",
                "must hold at least one empty frame (15 bytes)",
            );
        }
        if self.max_queued_events == 0 {
            return err("max_queued_events", "must be at least 1");
        }
        if self.read_chunk == 0 {
            return err("read_chunk", "must be at least 1");
        }
        for (field, d) in [
            ("heartbeat_interval", self.heartbeat_interval),
            ("idle_timeout", self.idle_timeout),
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
            ("release_buffers_after", self.release_buffers_after),
            ("linger", self.linger.map(|l| l.timeout)),
        ] {
            if d == Some(Duration::ZERO) {
                return err(field, "must be positive (use None to disable)");
            }
        }
        Ok(())
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self::server()
    }
}
