//! Counters a runtime can export, without the core knowing how they are exported.

/// Counters of one [`Connection`](crate::Connection), monotonically increasing.
///
/// A runtime that exports process-wide metrics publishes them with a `StatsReport`
/// (lynn-service), so the core stays free of atomics and of any metrics library.
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
pub const STATS_FIELDS: usize = 10;
/// How many words [`ConnectionStats::pack`] makes: 64 bytes, one cache line.
pub const PACKED_WORDS: usize = 8;
/// Where `bytes_sent` is in [`ConnectionStats::pack`].
pub const BYTES_SENT_INDEX: usize = 1;

impl ConnectionStats {
    /// The counters in eight words, so that a connection's published copy (see
    /// lynn-service's `StatsReport`) is one cache line, written once per loop turn:
    /// `frames_received` is left out (it is the sum of the messages, heartbeats and unknown
    /// kinds received), and `invalid_frames`, at most one per connection, is the top bit of
    /// the `unknown_kinds` word.
    #[inline]
    pub fn pack(self) -> [u64; PACKED_WORDS] {
        debug_assert_eq!(
            self.frames_received,
            self.messages_received + self.heartbeats_received + self.unknown_kinds
        );
        [
            self.bytes_received,
            self.bytes_sent,
            self.frames_sent,
            self.messages_received,
            self.heartbeats_received,
            self.heartbeats_sent,
            self.send_refused,
            self.unknown_kinds | (self.invalid_frames.min(1) << 63),
        ]
    }

    /// The inverse of [`pack`](Self::pack).
    pub fn unpack(words: [u64; PACKED_WORDS]) -> Self {
        let [
            bytes_received,
            bytes_sent,
            frames_sent,
            messages_received,
            heartbeats_received,
            heartbeats_sent,
            send_refused,
            kinds,
        ] = words;
        let unknown_kinds = kinds & !(1 << 63);
        ConnectionStats {
            bytes_received,
            bytes_sent,
            frames_received: messages_received + heartbeats_received + unknown_kinds,
            frames_sent,
            messages_received,
            heartbeats_received,
            heartbeats_sent,
            unknown_kinds,
            invalid_frames: kinds >> 63,
            send_refused,
        }
    }

    /// The counters as an array, in field order.
    pub fn to_array(self) -> [u64; STATS_FIELDS] {
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
    pub fn from_array(a: [u64; STATS_FIELDS]) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_every_counter_in_eight_words() {
        let stats = ConnectionStats {
            bytes_received: 1 << 40,
            bytes_sent: 2,
            frames_received: 3 + 4 + 5,
            frames_sent: 6,
            messages_received: 3,
            heartbeats_received: 4,
            heartbeats_sent: 7,
            unknown_kinds: 5,
            invalid_frames: 1,
            send_refused: 8,
        };
        assert_eq!(ConnectionStats::unpack(stats.pack()), stats);
        let none = ConnectionStats {
            invalid_frames: 0,
            ..stats
        };
        assert_eq!(ConnectionStats::unpack(none.pack()), none);
        assert_eq!(stats.pack()[BYTES_SENT_INDEX], 2);
        assert_eq!(size_of::<[u64; PACKED_WORDS]>(), 64);
    }
}
