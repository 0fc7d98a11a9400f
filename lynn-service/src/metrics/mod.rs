//! [`Metrics`]: one server's or client's counters, with lynn_tcp's metric names, in a
//! [prometheus-client] [`Registry`] of their own.
//!
//! **Why prometheus-client.** It is the Prometheus organisation's own Rust client, kept up
//! to date with the exposition formats (the classic text format and OpenMetrics), and it
//! works from a registry the application owns rather than a process-wide default one, so
//! each server and client has its own and two servers in one process never collide. The
//! `prometheus` crate (what lynn_tcp used) keeps a global default registry and is
//! maintained outside the Prometheus organisation; the `metrics` crate is a facade whose
//! recorder is one global per process, and it needs an exporter crate besides to produce
//! the text.
//!
//! **What it costs.** prometheus-client's own `Histogram` takes a lock on every
//! observation, so nothing here is observed per message: the simple counters are the
//! crate's lock-free [`Counter`]s and [`Gauge`]s, updated per connection or per event;
//! what changes per message is counted by each connection in its own
//! [`ConnectionStats`](lynn_proto::ConnectionStats) (the message size buckets included),
//! published once per loop turn through a [`StatsReport`](crate::StatsReport) and summed
//! when scraped, by a [collector](prometheus_client::collector::Collector) that encodes
//! the sums, the two histograms and the process's memory and threads. See `collect.rs`.
//!
//! **Reading them.** [`Metrics::render`] gives the Prometheus text format (what lynn_tcp
//! served), [`Metrics::encode`] writes it into a buffer of yours, and
//! [`Metrics::registry`] is the registry itself, for an application that serves metrics
//! from its own HTTP server (axum, hyper, ...) or combines them with its own registry
//! (prometheus-client's `encode_registry` writes several registries into one exposition).
//! A server with `metrics_addr` set serves them itself ([`MetricsEndpoint`]).
//!
//! ```
//! use lynn_proto::CloseReason;
//! use lynn_service::Metrics;
//!
//! let metrics = Metrics::default();
//! metrics.connection_opened();
//! metrics.connection_closed(&CloseReason::IdleTimeout);
//! let text = metrics.render();
//! assert!(text.contains("lynn_connections_active 0"));
//! assert!(text.contains("lynn_connections_closed_total{reason=\"idle_timeout\"} 1"));
//! ```
//!
//! [prometheus-client]: https://docs.rs/prometheus-client
//! [`Counter`]: prometheus_client::metrics::counter::Counter
//! [`Gauge`]: prometheus_client::metrics::gauge::Gauge

mod collect;
mod durations;
mod endpoint;
mod reasons;
mod register;
mod system;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use self::collect::Derived;
pub use self::endpoint::MetricsEndpoint;
use self::reasons::{CLOSE_LABELS, REJECT_LABELS, Reasons, TLS_LABELS};
use crate::stats_report::Reported;
use lynn_proto::CloseReason;
use lynn_proto::admission::Rejection;

/// One server's or client's counters, in a [`Registry`] of their own. Share it behind an
/// `Arc`.
#[derive(Debug)]
pub struct Metrics {
    connections: Counter,
    active: Gauge,
    closed: Reasons,
    failed: Counter,
    rejected: Reasons,
    tls_failed: Reasons,
    dropped: Counter,
    tcp_errors: Counter,
    /// Handlers started and not finished (`lynn_system_queue_size`).
    in_flight: Gauge,
    unknown_methods: Counter,
    handler_errors: Counter,
    handler_panics: Counter,
    frame_bytes: Gauge,
    over_budget: Counter,
    /// What the collector sums and derives when scraped.
    derived: Arc<Derived>,
    registry: Registry,
}

impl Default for Metrics {
    /// A server's metrics.
    fn default() -> Self {
        Metrics::new(true)
    }
}

impl Metrics {
    /// A client's metrics: the same names, but no processing durations (a client runs no
    /// handlers).
    pub fn client() -> Self {
        Metrics::new(false)
    }

    fn new(server: bool) -> Self {
        let m = Metrics {
            connections: Counter::default(),
            active: Gauge::default(),
            closed: Reasons::new(&CLOSE_LABELS),
            failed: Counter::default(),
            rejected: Reasons::new(&REJECT_LABELS),
            tls_failed: Reasons::new(&TLS_LABELS),
            dropped: Counter::default(),
            tcp_errors: Counter::default(),
            in_flight: Gauge::default(),
            unknown_methods: Counter::default(),
            handler_errors: Counter::default(),
            handler_panics: Counter::default(),
            frame_bytes: Gauge::default(),
            over_budget: Counter::default(),
            derived: Arc::new(Derived::new(server)),
            registry: Registry::default(),
        };
        m.registered()
    }

    /// A connection was admitted (or connected) and is open.
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.active.inc();
    }

    /// A connection ended.
    pub fn connection_closed(&self, reason: &CloseReason) {
        self.active.dec();
        self.closed.of(reason.label()).inc();
        if let CloseReason::Transport(_) = reason {
            self.tcp_errors.inc();
        }
    }

    /// A connection attempt was refused by admission.
    pub fn connection_rejected(&self, rejection: &Rejection) {
        self.rejected.of(rejection.label()).inc();
        self.failed.inc();
    }

    /// A connection attempt failed for another reason than admission or TLS (a client's
    /// reconnect attempt, say).
    pub fn connection_failed(&self) {
        self.failed.inc();
    }

    /// A TLS handshake failed; `reason` is `"timeout"`, `"protocol"`, `"certificate"` or
    /// `"io"` (anything else counts as `"io"`). Counted as a failed connection attempt too.
    pub fn tls_handshake_failed(&self, reason: &'static str) {
        self.tls_failed.of(reason).inc();
        self.failed.inc();
    }

    /// Accepting a connection failed (out of descriptors, say).
    pub fn accept_failed(&self) {
        self.tcp_errors.inc();
    }

    /// Where connections' counters are reported.
    pub(crate) fn reported(&self) -> &Reported {
        &self.derived.reported
    }

    /// Handlers started (`+n`) or finished (`-n`).
    pub fn in_flight_add(&self, n: i64) {
        self.in_flight.inc_by(n);
    }

    /// A deferred request (its handler did not finish within the loop turn that read it,
    /// see [`StatsReport::deferred`](crate::StatsReport::deferred)) finished `elapsed`
    /// after it arrived, by the connection's loop clock.
    pub fn observe_processing(&self, elapsed: Duration) {
        self.derived.durations.observe(elapsed);
    }

    /// `n` sends were refused by full queues (for example fanout recipients skipped).
    pub fn send_refused(&self, n: u64) {
        self.derived.send_refused.inc_by(n);
    }

    /// A message for an unknown method arrived.
    pub fn unknown_method(&self) {
        self.unknown_methods.inc();
    }

    /// A handler returned an error. Out of line, as the other rare counts: a per-message
    /// caller (`answer_inline`) then passes the metrics on as one pointer, rather than the
    /// counters' own pointers loaded for every message.
    #[cold]
    #[inline(never)]
    pub fn handler_error(&self) {
        self.handler_errors.inc();
    }

    /// A handler panicked.
    #[cold]
    #[inline(never)]
    pub fn handler_panic(&self) {
        self.handler_panics.inc();
    }

    /// A message was dropped: a late reply, a push that did not fit the client's incoming
    /// queue, or an outbound message for a connection already closing.
    pub fn message_dropped(&self) {
        self.dropped.inc();
    }

    /// Bytes held by large frames still arriving moved by `n` (see
    /// [`FrameBudget`](lynn_proto::FrameBudget)).
    pub fn frame_bytes_add(&self, n: i64) {
        self.frame_bytes.inc_by(n);
    }

    /// A connection reached the frame budget (it stops reading, or closes).
    pub fn over_frame_budget(&self) {
        self.over_budget.inc();
    }

    /// Bytes held by large frames still arriving, now.
    pub fn frame_bytes(&self) -> i64 {
        self.frame_bytes.get()
    }

    /// Messages dropped so far (see [`message_dropped`](Self::message_dropped)).
    pub fn messages_dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Open connections now.
    pub fn active_connections(&self) -> i64 {
        self.active.get()
    }

    /// Messages received so far.
    pub fn messages_received(&self) -> u64 {
        self.derived.reported.totals().stats.messages_received
    }

    /// Connections closed so far with the reason labelled `label` (see
    /// [`CloseReason::label`]).
    pub fn closed_with(&self, label: &str) -> u64 {
        self.closed.get(label)
    }

    /// Connections rejected so far for the reason labelled `label` (see
    /// [`Rejection::label`]).
    pub fn rejected_with(&self, label: &str) -> u64 {
        self.rejected.get(label)
    }

    /// Failed connection attempts so far (`lynn_connections_failed_total`).
    pub fn connections_failed(&self) -> u64 {
        self.failed.get()
    }

    /// TLS handshakes failed so far for `reason` (see
    /// [`tls_handshake_failed`](Self::tls_handshake_failed)).
    pub fn tls_handshake_failures(&self, reason: &str) -> u64 {
        self.tls_failed.get(reason)
    }

    /// Handler errors and panics so far.
    pub fn handler_failures(&self) -> (u64, u64) {
        (self.handler_errors.get(), self.handler_panics.get())
    }

    /// The registry holding every metric: encode it with prometheus-client's
    /// `encoding::text::encode` (OpenMetrics) or `encoding::prometheus_text::encode`, or
    /// next to an application's own registry with `encode_registry`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Writes every metric to `out` in the Prometheus text format (version 0.0.4; its
    /// content type is [`Metrics::CONTENT_TYPE`]).
    pub fn encode(&self, out: &mut impl fmt::Write) -> fmt::Result {
        prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
    }

    /// Writes every metric to `out` in the OpenMetrics text format, `# EOF` included (its
    /// content type is [`Metrics::OPENMETRICS_CONTENT_TYPE`]).
    pub fn encode_openmetrics(&self, out: &mut impl fmt::Write) -> fmt::Result {
        prometheus_client::encoding::text::encode(out, &self.registry)
    }

    /// The content type of [`encode`](Self::encode)'s output.
    pub const CONTENT_TYPE: &'static str =
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

    /// The content type of [`encode_openmetrics`](Self::encode_openmetrics)'s output.
    pub const OPENMETRICS_CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a `String` does not fail.
        let _ = self.encode(&mut out);
        out
    }
}

#[cfg(test)]
mod tests;
