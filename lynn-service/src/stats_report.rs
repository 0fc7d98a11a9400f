//! [`StatsReport`]: publishes one connection's [`ConnectionStats`] to the shared
//! [`Metrics`], as every runtime's drive loop does.
//!
//! Each connection that counted anything gets a slot of atomics that only it writes: a
//! report stores its current counters there, plain stores with no read-modify-write on a
//! cache line other connections share (four shared atomic additions per loop turn cost
//! ~150 instructions per response in the echo benchmark). A slot is one cache line (the
//! counters packed into eight words), so a report writes one line per loop turn. The
//! metrics keep every slot and sum them when read; the slot of a connection that is gone
//! (its `StatsReport` dropped) is folded into the totals of closed connections when the
//! metrics are next read or a slot is next handed out, so no count is lost at close.
//!
//! How fresh a reading is: runtimes report at least once per loop turn, after the turn's
//! writes (servers also just before them, so a peer that sees a reply finds its message
//! counted; after them lynn-tokio and lynn-smol store only the bytes written, with
//! [`report_written`](StatsReport::report_written)), and once more when the connection
//! ends, so a reading misses at most what the turn in progress counted.
//!
//! ```
//! use lynn_proto::{Connection, ConnectionConfig, Instant};
//! use lynn_service::{Metrics, StatsReport};
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(ConnectionConfig::client(), now).unwrap();
//! let metrics = Metrics::default();
//! let mut report = StatsReport::default();
//! conn.send(1, "hi".into(), now).unwrap();
//! report.report(&conn, &metrics);
//! report.report(&conn, &metrics); // the same counters: nothing added
//! drop(report); // the connection is gone: its counts stay
//! assert!(metrics.render().contains("lynn_messages_sent_total 1"));
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::Metrics;
use lynn_proto::stats::{BYTES_SENT_INDEX, MessageSizes, PACKED_WORDS};
use lynn_proto::{Connection, ConnectionStats};

/// Publishes one connection's counters to one [`Metrics`]. Allocation-free until the
/// connection counts something.
#[derive(Debug, Default)]
pub struct StatsReport {
    slot: Option<Arc<Slot>>,
    /// [`MessageSizes::uncommon`] when the size buckets were last stored.
    uncommon_seen: u64,
    /// Requests deferred (see [`deferred`](Self::deferred)).
    deferred: u64,
}

impl StatsReport {
    /// Makes `conn`'s counters, as they are now, part of `metrics` (pass the same `metrics`
    /// every time). Cheap: a few plain stores.
    #[inline(always)]
    pub fn report(&mut self, conn: &Connection, metrics: &Metrics) {
        let stats = conn.stats();
        let slot = match &self.slot {
            Some(slot) => slot,
            None if *stats == ConnectionStats::default() => return,
            None => self.slot.insert(metrics.reported().register()),
        };
        slot.store(stats);
        // Counts derived here, from the connection's own consistent counters, rather than
        // by whoever reads the slot: each stored word only grows, so any reading, however
        // torn between two reports, adds up to counts that never go back.
        let sizes = &stats.message_sizes;
        let messages = stats.messages_received;
        slot.derived[BYTES].store(sizes.bytes, Relaxed);
        slot.derived[COMMON].store(sizes.common(messages), Relaxed);
        slot.derived[AT_ONCE].store(messages.saturating_sub(self.deferred), Relaxed);
        if sizes.uncommon() != self.uncommon_seen {
            self.uncommon_seen = sizes.uncommon();
            slot.store_uncommon(sizes);
        }
    }

    /// [`report`](Self::report) after `conn` only wrote output since the last report
    /// ([`Connection::handle_written`], and transport errors, which count nothing): stores
    /// the one counter that moved, `bytes_sent`, rather than all of them.
    #[inline]
    pub fn report_written(&mut self, conn: &Connection, metrics: &Metrics) {
        match &self.slot {
            Some(slot) => slot.hot[BYTES_SENT_INDEX].store(conn.stats().bytes_sent, Relaxed),
            None => self.report(conn, metrics),
        }
    }

    /// A request of the connection was deferred: its handler did not finish within the
    /// turn that read it. The others count as processed at once (in
    /// `lynn_message_processing_duration_seconds`' first bucket) at the next report.
    #[inline]
    pub fn deferred(&mut self) {
        self.deferred += 1;
    }
}

/// Where the words that [`StatsReport::report`] derives are in [`Slot::derived`].
const BYTES: usize = 0;
const COMMON: usize = 1;
const AT_ONCE: usize = 2;

/// One connection's counters as last reported, written only by its [`StatsReport`]: the
/// [`ConnectionStats::pack`]ed counters in one cache line, and two more lines, of which a
/// turn writes three words of the first (the message size sum, the common size bucket,
/// the requests processed at once) and the other only when a message of an uncommon size
/// came.
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct Slot {
    hot: [AtomicU64; PACKED_WORDS],
    derived: Line,
    uncommon: Line,
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Line([AtomicU64; 8]);

impl std::ops::Deref for Line {
    type Target = [AtomicU64; 8];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Slot {
    #[inline]
    fn store(&self, stats: &ConnectionStats) {
        for (counter, value) in self.hot.iter().zip(stats.pack()) {
            counter.store(value, Relaxed);
        }
    }

    #[cold]
    fn store_uncommon(&self, sizes: &MessageSizes) {
        for (counter, value) in self.uncommon.iter().zip(sizes.pack()) {
            counter.store(value, Relaxed);
        }
    }

    fn load(&self) -> Totals {
        let mut stats = ConnectionStats::unpack(self.hot.each_ref().map(|c| c.load(Relaxed)));
        let derived = self.derived.each_ref().map(|c| c.load(Relaxed));
        let uncommon = self.uncommon.each_ref().map(|c| c.load(Relaxed));
        let [a, b, c, d, e, f, g, _] = uncommon;
        stats.message_sizes = MessageSizes::unpack(derived[BYTES], [a, b, c, d, e, f, g]);
        Totals {
            stats,
            common_sizes: derived[COMMON],
            at_once: derived[AT_ONCE],
        }
    }
}

/// Every connection's counters added up (see [`Reported::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// The counters, `message_sizes` included.
    pub(crate) stats: ConnectionStats,
    /// Messages of the common size bucket (see [`MessageSizes::common`]).
    pub(crate) common_sizes: u64,
    /// Messages processed at once (not deferred).
    pub(crate) at_once: u64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.stats.add(&other.stats);
        self.common_sizes += other.common_sizes;
        self.at_once += other.at_once;
    }
}

/// Every connection's reported counters: the slots handed out, and the totals of the
/// connections whose reports are gone.
#[derive(Debug, Default)]
pub(crate) struct Reported(Mutex<Slots>);

#[derive(Debug, Default)]
struct Slots {
    live: Vec<Arc<Slot>>,
    closed: Totals,
}

impl Slots {
    /// Folds the slots whose reports are gone into `closed`.
    fn sweep(&mut self) {
        let closed = &mut self.closed;
        self.live.retain_mut(|slot| {
            // Unique: its report was dropped (and its last stores are visible to us).
            let Some(gone) = Arc::get_mut(slot) else {
                return true;
            };
            closed.add(&gone.load());
            false
        });
    }
}

impl Reported {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new slot. Sweeps when the list is full, and then grows it if it is still more
    /// than half full, so sweeping costs O(1) per slot handed out.
    fn register(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let mut slots = self.lock();
        let capacity = slots.live.capacity();
        if slots.live.len() == capacity {
            slots.sweep();
            if slots.live.len() > capacity / 2 {
                slots.live.reserve(capacity.max(8));
            }
        }
        slots.live.push(slot.clone());
        slot
    }

    /// The sum of every connection's counters, closed or not.
    pub(crate) fn totals(&self) -> Totals {
        let mut slots = self.lock();
        slots.sweep();
        let mut sum = slots.closed;
        for slot in &slots.live {
            sum.add(&slot.load());
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lynn_proto::{ConnectionConfig, Instant};

    fn connection_with(sent: usize) -> Connection {
        let now = Instant::now();
        let mut conn = Connection::new(ConnectionConfig::client(), now).unwrap();
        for _ in 0..sent {
            conn.send(1, "x".into(), now).unwrap();
        }
        conn
    }

    #[test]
    fn a_connection_that_counted_nothing_takes_no_slot() {
        let metrics = Metrics::default();
        let mut report = StatsReport::default();
        report.report(&connection_with(0), &metrics);
        assert!(report.slot.is_none());
        assert_eq!(metrics.reported().lock().live.len(), 0);
    }

    #[test]
    fn report_written_publishes_the_bytes_written() {
        let metrics = Metrics::default();
        let mut report = StatsReport::default();
        let mut conn = connection_with(2);
        let n = conn.pending_transmit();
        conn.handle_written(n, Instant::now());
        // No slot yet: a full report.
        report.report_written(&conn, &metrics);
        assert_eq!(metrics.reported().totals().stats, *conn.stats());

        conn.send(1, "y".into(), Instant::now()).unwrap();
        report.report(&conn, &metrics);
        conn.handle_written(3, Instant::now());
        report.report_written(&conn, &metrics);
        assert_eq!(metrics.reported().totals().stats, *conn.stats());
        assert_eq!(conn.stats().bytes_sent, n as u64 + 3);
    }

    #[test]
    fn totals_keep_closed_connections_and_sweeping_frees_their_slots() {
        let metrics = Metrics::default();
        let mut open = StatsReport::default();
        open.report(&connection_with(1), &metrics);
        for _ in 0..20 {
            let mut report = StatsReport::default();
            report.report(&connection_with(2), &metrics);
        }
        let live = metrics.reported().lock().live.len();
        assert!(
            live < 21,
            "full lists were swept on registration ({live} live)"
        );
        assert_eq!(metrics.reported().totals().stats.frames_sent, 41);
        assert_eq!(metrics.reported().lock().live.len(), 1, "only the open one");

        let conn = connection_with(3);
        open.report(&conn, &metrics);
        assert_eq!(
            metrics.reported().totals().stats.frames_sent,
            43,
            "a report replaces the connection's earlier counts"
        );
        drop(open);
        assert_eq!(metrics.reported().totals().stats.frames_sent, 43);
        assert_eq!(metrics.reported().lock().live.len(), 0);
    }
}
