//! [`Durations`]: the processing durations of deferred requests (handlers that did not
//! finish at once), in lynn_tcp's buckets, lock-free.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of `lynn_message_processing_duration_seconds`' buckets (lynn_tcp's).
pub(crate) const DURATION_BOUNDS: [Duration; 9] = [
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// The durations of the deferred requests that finished, in [`DURATION_BOUNDS`] buckets (the last one over the largest bound). Updated with one
/// atomic addition per bucket and per sum, only for requests that were deferred (their
/// handler waited on something), so a shared line costs nothing next to that wait.
#[derive(Debug, Default)]
pub(crate) struct Durations {
    buckets: [AtomicU64; DURATION_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

/// [`Durations`] read at one scrape.
pub(crate) struct Snapshot {
    pub(crate) buckets: [u64; DURATION_BOUNDS.len() + 1],
    pub(crate) sum: Duration,
}

impl Durations {
    /// A deferred request finished after `d`.
    pub(crate) fn observe(&self, d: Duration) {
        let i = DURATION_BOUNDS
            .iter()
            .position(|bound| d <= *bound)
            .unwrap_or(DURATION_BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: self.buckets.each_ref().map(|b| b.load(Relaxed)),
            sum: Duration::from_nanos(self.sum_nanos.load(Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_lynn_tcp_buckets() {
        let d = Durations::default();
        for ms in [0, 1, 2, 30, 700, 6000] {
            d.observe(Duration::from_millis(ms));
        }
        let s = d.snapshot();
        assert_eq!(s.buckets, [2, 1, 0, 0, 1, 0, 0, 1, 0, 1]);
        assert_eq!(s.sum, Duration::from_millis(6733));
    }
}
