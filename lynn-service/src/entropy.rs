//! [`reconnect_entropy`]: what makes each client's reconnect jitter its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Entropy for [`ReconnectConfig::with_distinct_seed`], different for every call: the
/// process id and the wall-clock nanoseconds (so processes differ) mixed with a
/// process-wide count of calls (so the clients of one process differ, whichever adapter
/// made them). The core reads no clock and keeps no global state; this is where an adapter
/// gets both.
///
/// [`ReconnectConfig::with_distinct_seed`]: lynn_proto::reconnect::ReconnectConfig::with_distinct_seed
pub fn reconnect_entropy() -> u64 {
    static CLIENTS: AtomicU64 = AtomicU64::new(0);
    let n = CLIENTS.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (u64::from(std::process::id()) << 32) ^ nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_of_one_process_get_distinct_seeds() {
        let policy = lynn_proto::reconnect::ReconnectConfig::default();
        let a = policy.clone().with_distinct_seed(reconnect_entropy());
        let b = policy.with_distinct_seed(reconnect_entropy());
        assert_ne!(a.seed, b.seed);
    }
}
