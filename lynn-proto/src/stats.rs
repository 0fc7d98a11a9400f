//! Counters a runtime can export, without the core knowing how they are exported.

/// Counters of one [`Connection`](crate::Connection), monotonically increasing.
///
/// A runtime that exports process-wide metrics publishes them with a
/// [`StatsReport`](crate::StatsReport), so the core stays free of atomics and of any
/// metrics library.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Bytes handed to the connection from the socket.
    pub bytes_received: u64,
    /// Bytes reported written to the socket.
    pub bytes_sent: u64,
    /// Valid frames decoded, of every kind.
    pub frames_received: u64,
    /// Frames queued for sending: messages, replies, heartbeats, and each pre-encoded chunk.
    pub frames_sent: u64,
    /// Message frames decoded.
    pub messages_received: u64,
    /// Heartbeat frames decoded.
    pub heartbeats_received: u64,
    /// Heartbeat frames queued by the heartbeat timer.
    pub heartbeats_sent: u64,
    /// Frames with an unknown kind byte, ignored.
    pub unknown_kinds: u64,
    /// Invalid frames (at most one per connection: the first one closes it).
    pub invalid_frames: u64,
    /// Sends refused because the send queue was full.
    pub send_refused: u64,
}

/// How many counters a [`ConnectionStats`] holds.
pub(crate) const STATS_FIELDS: usize = 10;
/// Where `bytes_sent` is in [`ConnectionStats::to_array`].
pub(crate) const BYTES_SENT_INDEX: usize = 1;

impl ConnectionStats {
    /// The counters as an array, in field order.
    pub(crate) fn to_array(self) -> [u64; STATS_FIELDS] {
        // `bytes_sent` stays at `BYTES_SENT_INDEX`.
        [
            self.bytes_received,
            self.bytes_sent,
            self.frames_received,
            self.frames_sent,
            self.messages_received,
            self.heartbeats_received,
            self.heartbeats_sent,
            self.unknown_kinds,
            self.invalid_frames,
            self.send_refused,
        ]
    }

    /// The inverse of [`to_array`](Self::to_array).
    pub(crate) fn from_array(a: [u64; STATS_FIELDS]) -> Self {
        let [
            bytes_received,
            bytes_sent,
            frames_received,
            frames_sent,
            messages_received,
            heartbeats_received,
            heartbeats_sent,
            unknown_kinds,
            invalid_frames,
            send_refused,
        ] = a;
        ConnectionStats {
            bytes_received,
            bytes_sent,
            frames_received,
            frames_sent,
            messages_received,
            heartbeats_received,
            heartbeats_sent,
            unknown_kinds,
            invalid_frames,
            send_refused,
        }
    }
}
