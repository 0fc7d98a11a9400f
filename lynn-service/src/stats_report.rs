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
use lynn_proto::stats::{BYTES_SENT_INDEX, PACKED_WORDS, STATS_FIELDS};
use lynn_proto::{Connection, ConnectionStats};

/// Publishes one connection's counters to one [`Metrics`]. Allocation-free until the
/// connection counts something.
#[derive(Debug, Default)]
pub struct StatsReport {
    slot: Option<Arc<Slot>>,
}

impl StatsReport {
    /// Makes `conn`'s counters, as they are now, part of `metrics` (pass the same `metrics`
    /// every time). Cheap: a few plain stores.
    #[inline]
    pub fn report(&mut self, conn: &Connection, metrics: &Metrics) {
        let stats = conn.stats();
        let slot = match &self.slot {
            Some(slot) => slot,
            None if *stats == ConnectionStats::default() => return,
            None => self.slot.insert(metrics.reported().register()),
        };
        slot.store(stats);
    }

    /// [`report`](Self::report) after `conn` only wrote output since the last report
    /// ([`Connection::handle_written`], and transport errors, which count nothing): stores
    /// the one counter that moved, `bytes_sent`, rather than all of them.
    #[inline]
    pub fn report_written(&mut self, conn: &Connection, metrics: &Metrics) {
        match &self.slot {
            Some(slot) => slot.0[BYTES_SENT_INDEX].store(conn.stats().bytes_sent, Relaxed),
            None => self.report(conn, metrics),
        }
    }
}

/// One connection's counters as last reported ([`ConnectionStats::pack`]ed), in one cache
/// line of its own. Written only by its [`StatsReport`].
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot([AtomicU64; PACKED_WORDS]);

impl Slot {
    #[inline]
    fn store(&self, stats: &ConnectionStats) {
        for (counter, value) in self.0.iter().zip(stats.pack()) {
            counter.store(value, Relaxed);
        }
    }

    fn load(&self) -> [u64; STATS_FIELDS] {
        ConnectionStats::unpack(self.0.each_ref().map(|c| c.load(Relaxed))).to_array()
    }
}

/// Every connection's reported counters: the slots handed out, and the totals of the
/// connections whose reports are gone.
#[derive(Debug, Default)]
pub(crate) struct Reported(Mutex<Slots>);

#[derive(Debug, Default)]
struct Slots {
    live: Vec<Arc<Slot>>,
    closed: [u64; STATS_FIELDS],
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
            for (total, value) in closed.iter_mut().zip(gone.load()) {
                *total += value;
            }
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
    pub(crate) fn totals(&self) -> ConnectionStats {
        let mut slots = self.lock();
        slots.sweep();
        let mut sum = slots.closed;
        for slot in &slots.live {
            for (total, value) in sum.iter_mut().zip(slot.load()) {
                *total += value;
            }
        }
        ConnectionStats::from_array(sum)
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
        assert_eq!(metrics.reported().totals(), *conn.stats());

        conn.send(1, "y".into(), Instant::now()).unwrap();
        report.report(&conn, &metrics);
        conn.handle_written(3, Instant::now());
        report.report_written(&conn, &metrics);
        assert_eq!(metrics.reported().totals(), *conn.stats());
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
        assert_eq!(metrics.reported().totals().frames_sent, 41);
        assert_eq!(metrics.reported().lock().live.len(), 1, "only the open one");

        let conn = connection_with(3);
        open.report(&conn, &metrics);
        assert_eq!(
            metrics.reported().totals().frames_sent,
            43,
            "a report replaces the connection's earlier counts"
        );
        drop(open);
        assert_eq!(metrics.reported().totals().frames_sent, 43);
        assert_eq!(metrics.reported().lock().live.len(), 0);
    }
}
