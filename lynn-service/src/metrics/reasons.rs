//! The labelled counters' labels: why a connection closed, was refused, or failed its TLS
//! handshake.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub(super) const CLOSE_LABELS: [&str; 12] = [
    "local",
    "peer_closed",
    "peer_closed_mid_frame",
    "protocol_error",
    "idle_timeout",
    "read_timeout",
    "write_timeout",
    "slow_consumer",
    "unknown_method",
    "correlation_lost",
    "frame_budget",
    "transport_error",
];

/// Why TLS handshakes failed (`HandshakeError::reason`).
pub(super) const TLS_LABELS: [&str; 4] = ["timeout", "protocol", "certificate", "io"];

pub(super) const REJECT_LABELS: [&str; 5] = [
    "max_connections",
    "max_per_ip",
    "rate_limited",
    "ip_rate_limited",
    "too_many_tracked_ips",
];

/// The label of the labelled counters: why a connection closed, was refused, or failed
/// its TLS handshake.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Reason {
    pub(super) reason: &'static str,
}

/// A labelled counter family with a handle kept per known label, so that counting takes
/// no lock (the family's map is locked only when a label is first seen, at construction).
#[derive(Debug)]
pub(super) struct Reasons {
    pub(super) family: Family<Reason, Counter>,
    handles: Vec<Counter>,
    labels: &'static [&'static str],
}

impl Reasons {
    pub(super) fn new(labels: &'static [&'static str]) -> Self {
        let family = Family::<Reason, Counter>::default();
        let handles = labels
            .iter()
            .map(|&reason| family.get_or_create(&Reason { reason }).clone())
            .collect();
        Reasons {
            family,
            handles,
            labels,
        }
    }

    /// The counter of `label` (an unknown one counts as the last label).
    pub(super) fn of(&self, label: &str) -> &Counter {
        let i = self.labels.iter().position(|l| *l == label);
        &self.handles[i.unwrap_or(self.labels.len() - 1)]
    }

    pub(super) fn get(&self, label: &str) -> u64 {
        let i = self.labels.iter().position(|l| *l == label);
        i.map_or(0, |i| self.handles[i].get())
    }
}
