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
    /// The body sizes of the messages received (`messages_received` of them).
    pub message_sizes: MessageSizes,
}

/// Upper bounds (inclusive) of the message size buckets, in bytes: lynn_tcp's
/// `lynn_message_size_bytes` buckets. A last bucket holds the larger messages.
pub const MESSAGE_SIZE_BOUNDS: [u64; 7] = [0, 128, 512, 2048, 10240, 102_400, 1_048_576];

/// The bucket of [`MESSAGE_SIZE_BOUNDS`] that is not counted message by message: bodies of
/// 1 to 128 bytes, the common case, are what `messages_received` leaves over.
const COMMON_BUCKET: usize = 1;

/// The body sizes of the messages one connection received, as a histogram over
/// [`MESSAGE_SIZE_BOUNDS`].
///
/// Cheap per message: a body of 1 to 128 bytes costs one comparison (its count is derived
/// from `messages_received`, see [`common`](Self::common)); the total of the body bytes
/// is added up per read, not per message, where messages are answered in place.
///
/// In this order: the two words a publisher reads every turn first, next to the other
/// counters; the buckets, read only when `uncommon` moved, after them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MessageSizes {
    /// Body bytes of every message received.
    pub bytes: u64,
    /// The sum of `others`: changes exactly when they do.
    uncommon: u64,
    /// Messages per bucket but [`COMMON_BUCKET`] (left out), the last one over the
    /// largest bound.
    others: [u64; 7],
}

impl MessageSizes {
    /// Whether a body of `len` bytes falls in the common bucket (1 to 128 bytes), which
    /// [`count`](Self::count) does not count one by one.
    #[inline(always)]
    pub fn is_common(len: usize) -> bool {
        // 1..=128 wraps to 0..=127: one comparison.
        len.wrapping_sub(1) < 128
    }

    /// Counts one message whose body is `len` bytes, but not its bytes (add those to
    /// [`bytes`](Self::bytes)).
    #[inline(always)]
    pub fn count(&mut self, len: usize) {
        if !Self::is_common(len) {
            self.count_uncommon(len);
        }
    }

    #[cold]
    #[inline(never)]
    fn count_uncommon(&mut self, len: usize) {
        let len = len as u64;
        let bucket = MESSAGE_SIZE_BOUNDS
            .iter()
            .position(|&bound| len <= bound)
            .unwrap_or(MESSAGE_SIZE_BOUNDS.len());
        // Past the common bucket, which `others` leaves out.
        let at = bucket - usize::from(bucket > COMMON_BUCKET);
        self.others[at] += 1;
        self.uncommon += 1;
    }

    /// Counts one message of `len` bytes, bytes included.
    #[inline]
    pub fn record(&mut self, len: usize) {
        self.count(len);
        self.bytes += len as u64;
    }

    /// Messages counted outside the common bucket (1 to 128 bytes). A publisher that saw
    /// the same number before has the same buckets already.
    #[inline]
    pub fn uncommon(&self) -> u64 {
        self.uncommon
    }

    /// Messages of the common bucket (1 to 128 bytes), of the `messages` received in all.
    #[inline]
    pub fn common(&self, messages: u64) -> u64 {
        messages.saturating_sub(self.uncommon)
    }

    /// Messages per bucket of [`MESSAGE_SIZE_BOUNDS`] (not cumulative), the last one over
    /// the largest bound, given the count of the common bucket (see
    /// [`common`](Self::common)).
    pub fn buckets(&self, common: u64) -> [u64; 8] {
        let mut buckets = [0; 8];
        let (before, after) = self.others.split_at(COMMON_BUCKET);
        buckets[..COMMON_BUCKET].copy_from_slice(before);
        buckets[COMMON_BUCKET] = common;
        buckets[COMMON_BUCKET + 1..].copy_from_slice(after);
        buckets
    }

    /// The counts that [`count`](Self::count) keeps, in seven words ([`bytes`](Self::bytes)
    /// not included), for a publisher that copies them only when [`uncommon`](Self::uncommon)
    /// changed.
    #[inline]
    pub fn pack(&self) -> [u64; 7] {
        self.others
    }

    /// The inverse of [`pack`](Self::pack), with `bytes`.
    pub fn unpack(bytes: u64, others: [u64; 7]) -> Self {
        MessageSizes {
            bytes,
            uncommon: others.iter().sum(),
            others,
        }
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &MessageSizes) {
        self.bytes += other.bytes;
        for (total, n) in self.others.iter_mut().zip(other.others) {
            *total += n;
        }
        self.uncommon += other.uncommon;
    }
}

/// How many counters a [`ConnectionStats`] holds.
pub const STATS_FIELDS: usize = 10;
/// How many words [`ConnectionStats::pack`] makes: 64 bytes, one cache line.
pub const PACKED_WORDS: usize = 8;
/// Where `bytes_sent` is in [`ConnectionStats::pack`].
pub const BYTES_SENT_INDEX: usize = 1;

impl ConnectionStats {
    /// The counters in eight words (`message_sizes` left out), so that a connection's published copy (see
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

    /// The inverse of [`pack`](Self::pack) (with no `message_sizes`).
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
            message_sizes: MessageSizes::default(),
        }
    }

    /// The counters but `message_sizes` as an array, in field order.
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

    /// The inverse of [`to_array`](Self::to_array) (with no `message_sizes`).
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
            message_sizes: MessageSizes::default(),
        }
    }

    /// Adds `other`'s counters to these (for totals over connections).
    pub fn add(&mut self, other: &ConnectionStats) {
        let mut sum = self.to_array();
        for (total, n) in sum.iter_mut().zip(other.to_array()) {
            *total += n;
        }
        let mut sizes = self.message_sizes;
        sizes.add(&other.message_sizes);
        *self = ConnectionStats {
            message_sizes: sizes,
            ..ConnectionStats::from_array(sum)
        };
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
            message_sizes: MessageSizes::default(),
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

    #[test]
    fn message_sizes_fall_in_lynn_tcp_buckets() {
        let mut sizes = MessageSizes::default();
        let lens = [
            0,
            1,
            128,
            129,
            512,
            513,
            2048,
            10240,
            10241,
            102_400,
            1 << 20,
            (1 << 20) + 1,
        ];
        for len in lens {
            sizes.record(len);
        }
        assert_eq!(sizes.bytes, lens.iter().sum::<usize>() as u64);
        assert_eq!(sizes.uncommon(), 10);
        let buckets = sizes.buckets(sizes.common(lens.len() as u64));
        assert_eq!(buckets, [1, 2, 2, 2, 1, 2, 1, 1]);
        let again = MessageSizes::unpack(sizes.bytes, sizes.pack());
        assert_eq!(again, sizes);
        let mut twice = sizes;
        twice.add(&sizes);
        assert_eq!(twice.buckets(4), buckets.map(|n| 2 * n));
    }
}
