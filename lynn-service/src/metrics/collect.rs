//! The metrics computed when scraped: sums of every connection's reported counters, the
//! message size and processing duration histograms, the process's memory and threads.
//!
//! None of them is updated per message through a shared structure: a connection counts in
//! its own [`ConnectionStats`], published once per loop turn to a slot of its own
//! ([`Reported`]), and this collector adds the slots up. The processing duration
//! histogram is split the same way: requests answered within the loop turn that read them
//! (synchronous routes, handlers ready at once: nearly all of them) are not counted one by
//! one but derived by each connection's report, as its messages received less its requests
//! deferred; only a deferred request's duration is observed, into lock-free buckets
//! ([`Durations`]).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;

use super::durations::{DURATION_BOUNDS, Durations};
use super::system;
use crate::stats_report::Reported;
use lynn_proto::ConnectionStats;
use lynn_proto::stats::MESSAGE_SIZE_BOUNDS;

/// What the collector reads, shared with the [`Metrics`](super::Metrics) that update it.
#[derive(Debug, Default)]
pub(super) struct Derived {
    /// Every connection's counters.
    pub(super) reported: Reported,
    /// Deferred requests' processing durations.
    pub(super) durations: Durations,
    /// Sends refused outside any connection's counters (fanout recipients skipped).
    pub(super) send_refused: Counter,
    /// A server's (handlers run: processing durations are reported).
    server: bool,
}

impl Derived {
    pub(super) fn new(server: bool) -> Self {
        Derived {
            server,
            ..Derived::default()
        }
    }
}

/// The collector registered in every [`Metrics`](super::Metrics)' registry.
#[derive(Debug)]
pub(super) struct Collect(pub(super) std::sync::Arc<Derived>);

/// A histogram's values at one scrape: buckets not cumulative, `+Inf` last.
struct ConstHistogram<'a> {
    sum: f64,
    buckets: &'a [(f64, u64)],
}

impl EncodeMetric for ConstHistogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        let count = self.buckets.iter().map(|(_, n)| n).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum, count, self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: Option<u64>) -> fmt::Result {
    let g = ConstGauge::new(v.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)));
    let metric = enc.encode_descriptor(name, help, None, g.metric_type())?;
    match v {
        Some(_) => g.encode(metric),
        // No source on this platform: the family is described, with no sample.
        None => Ok(()),
    }
}

fn histogram(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &ConstHistogram<'_>,
) -> fmt::Result {
    h.encode(enc.encode_descriptor(name, help, None, h.metric_type())?)
}

impl Collector for Collect {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let derived = &*self.0;
        let totals = derived.reported.totals();
        let s = totals.stats;
        let e = &mut enc;
        counter(
            e,
            "lynn_messages_received",
            "Messages received.",
            s.messages_received,
        )?;
        counter(
            e,
            "lynn_messages_sent",
            "Messages queued for sending (replies, pushes, each pre-encoded fanout chunk; \
             heartbeats not included).",
            s.frames_sent.saturating_sub(s.heartbeats_sent),
        )?;
        counter(
            e,
            "lynn_messages_invalid",
            "Invalid frames received (each closes its connection).",
            s.invalid_frames,
        )?;
        counter(
            e,
            "lynn_network_bytes_received",
            "Bytes read from sockets.",
            s.bytes_received,
        )?;
        counter(
            e,
            "lynn_network_bytes_sent",
            "Bytes written to sockets.",
            s.bytes_sent,
        )?;
        // No sample: described only, with why.
        e.encode_descriptor(
            "lynn_network_tcp_retransmits",
            "Not collected, so no sample: the kernel counts retransmits per socket \
             (Linux TCP_INFO, a getsockopt per connection) or per host (/proc/net/snmp, \
             node_exporter's node_netstat_Tcp_RetransSegs), not per process.",
            None,
            MetricType::Counter,
        )?;
        counter(
            e,
            "lynn_heartbeats_received",
            "Heartbeat frames received.",
            s.heartbeats_received,
        )?;
        counter(
            e,
            "lynn_heartbeats_sent",
            "Heartbeat frames sent.",
            s.heartbeats_sent,
        )?;
        counter(
            e,
            "lynn_unknown_kinds",
            "Frames of an unknown kind, ignored.",
            s.unknown_kinds,
        )?;
        counter(
            e,
            "lynn_send_queue_full",
            "Sends refused by a full send queue.",
            s.send_refused + derived.send_refused.get(),
        )?;
        let sizes = message_sizes(&s, totals.common_sizes);
        histogram(
            e,
            "lynn_message_size_bytes",
            "Body sizes of the messages received, in bytes.",
            &ConstHistogram {
                sum: s.message_sizes.bytes as f64,
                buckets: &sizes,
            },
        )?;
        self.encode_durations(e, totals.at_once)?;
        let proc = system::read();
        gauge(
            e,
            "lynn_system_memory_used_bytes",
            "The process's resident memory (VmRSS of /proc/self/status; no sample where \
             there is no /proc).",
            proc.resident_bytes,
        )?;
        gauge(
            e,
            "lynn_system_active_threads",
            "The process's threads (/proc/self/status; no sample where there is no /proc).",
            proc.threads,
        )
    }
}

impl Collect {
    fn encode_durations(&self, e: &mut DescriptorEncoder<'_>, at_once: u64) -> fmt::Result {
        const NAME: &str = "lynn_message_processing_duration_seconds";
        if !self.0.server {
            e.encode_descriptor(
                NAME,
                "No sample: a client runs no handlers.",
                None,
                MetricType::Histogram,
            )?;
            return Ok(());
        }
        let d = self.0.durations.snapshot();
        // Requests never deferred were answered within the turn that read them: 0 s by the
        // loop clock, in the first bucket.
        let mut buckets = [(0.0, 0); DURATION_BOUNDS.len() + 1];
        for (i, slot) in buckets.iter_mut().enumerate() {
            let bound = DURATION_BOUNDS
                .get(i)
                .map_or(f64::INFINITY, |d| d.as_secs_f64());
            *slot = (bound, d.buckets[i]);
        }
        buckets[0].1 += at_once;
        histogram(
            e,
            NAME,
            "From the loop turn that read a request to the turn that answered it (the \
             connection's clock is read once per turn): requests answered within the turn \
             that read them count as 0 s; time inside a handler that answers at once is not \
             measured.",
            &ConstHistogram {
                sum: d.sum.as_secs_f64(),
                buckets: &buckets,
            },
        )
    }
}

/// `s`'s message size buckets, with their bounds (`+Inf` last), given the count of the
/// common one.
fn message_sizes(s: &ConnectionStats, common: u64) -> [(f64, u64); MESSAGE_SIZE_BOUNDS.len() + 1] {
    let counts = s.message_sizes.buckets(common);
    let mut buckets = [(f64::INFINITY, 0); MESSAGE_SIZE_BOUNDS.len() + 1];
    for (i, slot) in buckets.iter_mut().enumerate() {
        let bound = MESSAGE_SIZE_BOUNDS
            .get(i)
            .map_or(f64::INFINITY, |&b| b as f64);
        *slot = (bound, counts[i]);
    }
    buckets
}
