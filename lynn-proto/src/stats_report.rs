//! [`StatsReport`]: adds one connection's counter changes to the shared [`Metrics`] once
//! per loop turn, as every runtime's drive loop does.
//!
//! ```
//! use lynn_proto::{Connection, ConnectionConfig, Instant, Metrics, StatsReport};
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(ConnectionConfig::client(), now).unwrap();
//! let metrics = Metrics::default();
//! let mut report = StatsReport::default();
//! conn.send(1, "hi".into(), now).unwrap();
//! report.report(&conn, &metrics);
//! report.report(&conn, &metrics); // nothing new: nothing added
//! assert!(metrics.render().contains("lynn_messages_sent_total 1"));
//! ```

use crate::{Connection, ConnectionStats, Metrics};

/// The counters of one connection already added to the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatsReport {
    reported: ConnectionStats,
}

impl StatsReport {
    /// Adds what changed in `conn`'s counters since the last call to `metrics`.
    pub fn report(&mut self, conn: &Connection, metrics: &Metrics) {
        let now = *conn.stats();
        if now != self.reported {
            metrics.add(&now.delta_since(&self.reported));
            self.reported = now;
        }
    }
}
