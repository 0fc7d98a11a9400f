//! Counters a runtime can export, without the core knowing how they are exported.

/// Counters of one [`Connection`](crate::Connection), monotonically increasing.
///
/// A runtime that exports process-wide metrics adds the change in these counters to its
/// own totals (see [`ConnectionStats::delta_since`]), so the core stays free of atomics and
/// of any metrics library.
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

impl ConnectionStats {
    /// Per-field difference `self - earlier`, for adding to process-wide totals.
    pub fn delta_since(&self, earlier: &ConnectionStats) -> ConnectionStats {
        ConnectionStats {
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            frames_received: self.frames_received.saturating_sub(earlier.frames_received),
            frames_sent: self.frames_sent.saturating_sub(earlier.frames_sent),
            messages_received: self
                .messages_received
                .saturating_sub(earlier.messages_received),
            heartbeats_received: self
                .heartbeats_received
                .saturating_sub(earlier.heartbeats_received),
            heartbeats_sent: self.heartbeats_sent.saturating_sub(earlier.heartbeats_sent),
            unknown_kinds: self.unknown_kinds.saturating_sub(earlier.unknown_kinds),
            invalid_frames: self.invalid_frames.saturating_sub(earlier.invalid_frames),
            send_refused: self.send_refused.saturating_sub(earlier.send_refused),
        }
    }
}
