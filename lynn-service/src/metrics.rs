//! [`Metrics`]: process-wide counters, named after lynn_tcp's where it has the same
//! counter, rendered in the Prometheus text format.
//!
//! The core keeps them as plain atomics and renders text; serving that text over HTTP is the
//! runtime's job. A connection's own counters ([`ConnectionStats`](lynn_proto::ConnectionStats))
//! reach them through a [`StatsReport`](crate::StatsReport), which writes to a slot of that
//! connection's alone (see there for how fresh a reading is).
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

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::stats_report::Reported;
use lynn_proto::CloseReason;
use lynn_proto::admission::Rejection;

const CLOSE_LABELS: [&str; 12] = [
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

const REJECT_LABELS: [&str; 5] = [
    "max_connections",
    "max_per_ip",
    "rate_limited",
    "ip_rate_limited",
    "too_many_tracked_ips",
];

/// Why TLS handshakes failed (`HandshakeError::reason`).
const TLS_LABELS: [&str; 4] = ["timeout", "protocol", "certificate", "io"];

/// Process-wide counters of one server or client. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    active: AtomicI64,
    in_flight: AtomicI64,
    accepted: AtomicU64,
    rejected: [AtomicU64; REJECT_LABELS.len()],
    closed: [AtomicU64; CLOSE_LABELS.len()],
    /// Connections' counters.
    reported: Reported,
    unknown_methods: AtomicU64,
    /// Sends refused outside any connection's counters (fanout recipients skipped).
    send_refused: AtomicU64,
    handler_errors: AtomicU64,
    handler_panics: AtomicU64,
    /// Messages received and dropped (a client's late replies and overflowing pushes).
    dropped: AtomicU64,
    /// Bytes held by large frames still arriving, across connections.
    frame_bytes: AtomicI64,
    /// Times a connection stopped reading (or closed) at the frame budget.
    over_budget: AtomicU64,
    /// TLS handshakes failed, by `TLS_LABELS`.
    tls_failed: [AtomicU64; TLS_LABELS.len()],
}

fn index(labels: &[&str], label: &str) -> usize {
    labels
        .iter()
        .position(|l| *l == label)
        .unwrap_or(labels.len() - 1)
}

impl Metrics {
    /// A connection was admitted and is open.
    pub fn connection_opened(&self) {
        self.accepted.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
    }

    /// A connection ended.
    pub fn connection_closed(&self, reason: &CloseReason) {
        self.active.fetch_sub(1, Relaxed);
        self.closed[index(&CLOSE_LABELS, reason.label())].fetch_add(1, Relaxed);
    }

    /// A connection attempt was refused by admission.
    pub fn connection_rejected(&self, rejection: &Rejection) {
        self.rejected[index(&REJECT_LABELS, rejection.label())].fetch_add(1, Relaxed);
    }

    /// A TLS handshake failed; `reason` is `"timeout"`, `"protocol"`, `"certificate"` or
    /// `"io"` (anything else counts as `"io"`).
    pub fn tls_handshake_failed(&self, reason: &'static str) {
        self.tls_failed[index(&TLS_LABELS, reason)].fetch_add(1, Relaxed);
    }

    /// TLS handshakes failed so far for `reason` (see
    /// [`tls_handshake_failed`](Self::tls_handshake_failed)).
    pub fn tls_handshake_failures(&self, reason: &str) -> u64 {
        TLS_LABELS
            .iter()
            .position(|l| *l == reason)
            .map_or(0, |i| self.tls_failed[i].load(Relaxed))
    }

    /// Where connections' counters are reported.
    pub(crate) fn reported(&self) -> &Reported {
        &self.reported
    }

    /// Handlers started (`+n`) or finished (`-n`).
    pub fn in_flight_add(&self, n: i64) {
        self.in_flight.fetch_add(n, Relaxed);
    }

    /// `n` sends were refused by full queues (for example fanout recipients skipped).
    pub fn send_refused(&self, n: u64) {
        self.send_refused.fetch_add(n, Relaxed);
    }

    /// A message for an unknown method arrived.
    pub fn unknown_method(&self) {
        self.unknown_methods.fetch_add(1, Relaxed);
    }

    /// A handler returned an error.
    pub fn handler_error(&self) {
        self.handler_errors.fetch_add(1, Relaxed);
    }

    /// A handler panicked.
    pub fn handler_panic(&self) {
        self.handler_panics.fetch_add(1, Relaxed);
    }

    /// A received message was dropped: a late reply, or a push that did not fit the
    /// client's incoming queue.
    pub fn message_dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Bytes held by large frames still arriving moved by `n` (see
    /// [`FrameBudget`](lynn_proto::FrameBudget)).
    pub fn frame_bytes_add(&self, n: i64) {
        self.frame_bytes.fetch_add(n, Relaxed);
    }

    /// A connection reached the frame budget (it stops reading, or closes).
    pub fn over_frame_budget(&self) {
        self.over_budget.fetch_add(1, Relaxed);
    }

    /// Bytes held by large frames still arriving, now.
    pub fn frame_bytes(&self) -> i64 {
        self.frame_bytes.load(Relaxed)
    }

    /// Messages dropped so far (see [`message_dropped`](Self::message_dropped)).
    pub fn messages_dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Open connections now.
    pub fn active_connections(&self) -> i64 {
        self.active.load(Relaxed)
    }

    /// Messages received so far.
    pub fn messages_received(&self) -> u64 {
        self.reported.totals().messages_received
    }

    /// Connections closed so far with the reason labelled `label` (see
    /// [`CloseReason::label`]).
    pub fn closed_with(&self, label: &str) -> u64 {
        CLOSE_LABELS
            .iter()
            .position(|l| *l == label)
            .map_or(0, |i| self.closed[i].load(Relaxed))
    }

    /// Connections rejected so far for the reason labelled `label` (see
    /// [`Rejection::label`]).
    pub fn rejected_with(&self, label: &str) -> u64 {
        REJECT_LABELS
            .iter()
            .position(|l| *l == label)
            .map_or(0, |i| self.rejected[i].load(Relaxed))
    }

    /// Handler errors and panics so far.
    pub fn handler_failures(&self) -> (u64, u64) {
        (
            self.handler_errors.load(Relaxed),
            self.handler_panics.load(Relaxed),
        )
    }

    /// The whole HTTP/1.1 response to `request` (the bytes a client sent, at least its
    /// request line): the metrics for `GET /metrics`, 404 for any other path, 405 for any
    /// other method. A runtime serving metrics only accepts, reads, writes this and closes.
    ///
    /// ```
    /// let m = lynn_service::Metrics::default();
    /// let ok = m.http_response(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(ok.starts_with(b"HTTP/1.1 200 OK\r\n"));
    /// assert!(m.http_response(b"GET / HTTP/1.1\r\n\r\n").starts_with(b"HTTP/1.1 404"));
    /// ```
    pub fn http_response(&self, request: &[u8]) -> Vec<u8> {
        let line = request
            .split(|&b| b == b'\r' || b == b'\n')
            .next()
            .unwrap_or(&[]);
        let mut parts = line.split(|&b| b == b' ');
        let (status, body) = match (parts.next(), parts.next()) {
            (Some(b"GET"), Some(b"/metrics")) => ("200 OK", self.render()),
            (Some(b"GET"), _) => ("404 Not Found", "not found\n".to_string()),
            _ => ("405 Method Not Allowed", "method not allowed\n".to_string()),
        };
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// All metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        let gauges = [
            ("lynn_connections_active", "Open connections.", &self.active),
            (
                "lynn_requests_in_flight",
                "Handlers running.",
                &self.in_flight,
            ),
            (
                "lynn_frame_bytes_held",
                "Bytes held by large frames still arriving.",
                &self.frame_bytes,
            ),
        ];
        for (name, help, v) in gauges {
            one(name, "gauge", help, v.load(Relaxed).to_string());
        }
        let stats = self.reported.totals();
        let counters = [
            (
                "lynn_connections_accepted_total",
                "Connections admitted.",
                self.accepted.load(Relaxed),
            ),
            (
                "lynn_messages_received_total",
                "Message frames received.",
                stats.messages_received,
            ),
            (
                "lynn_messages_sent_total",
                "Frames queued for sending.",
                stats.frames_sent,
            ),
            (
                "lynn_bytes_received_total",
                "Bytes read from sockets.",
                stats.bytes_received,
            ),
            (
                "lynn_bytes_sent_total",
                "Bytes written to sockets.",
                stats.bytes_sent,
            ),
            (
                "lynn_heartbeats_received_total",
                "Heartbeat frames received.",
                stats.heartbeats_received,
            ),
            (
                "lynn_heartbeats_sent_total",
                "Heartbeat frames sent.",
                stats.heartbeats_sent,
            ),
            (
                "lynn_invalid_frames_total",
                "Invalid frames received.",
                stats.invalid_frames,
            ),
            (
                "lynn_unknown_kinds_total",
                "Frames of unknown kind ignored.",
                stats.unknown_kinds,
            ),
            (
                "lynn_messages_dropped_total",
                "Received messages dropped: late replies, pushes beyond the incoming queue.",
                self.dropped.load(Relaxed),
            ),
            (
                "lynn_unknown_methods_total",
                "Messages for unknown methods.",
                self.unknown_methods.load(Relaxed),
            ),
            (
                "lynn_send_queue_full_total",
                "Sends refused by a full queue.",
                stats.send_refused + self.send_refused.load(Relaxed),
            ),
            (
                "lynn_handler_errors_total",
                "Handlers that returned an error.",
                self.handler_errors.load(Relaxed),
            ),
            (
                "lynn_handler_panics_total",
                "Handlers that panicked.",
                self.handler_panics.load(Relaxed),
            ),
            (
                "lynn_frame_budget_exceeded_total",
                "Times a connection reached the frame memory budget.",
                self.over_budget.load(Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            one(name, "counter", help, v.to_string());
        }
        for (name, help, labels, values) in [
            (
                "lynn_connections_closed_total",
                "Connections closed, by reason.",
                &CLOSE_LABELS[..],
                &self.closed[..],
            ),
            (
                "lynn_connections_rejected_total",
                "Connections refused by admission, by limit.",
                &REJECT_LABELS[..],
                &self.rejected[..],
            ),
            (
                "lynn_tls_handshake_failures_total",
                "TLS handshakes failed, by reason.",
                &TLS_LABELS[..],
                &self.tls_failed[..],
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (label, v) in labels.iter().zip(values) {
                let _ = writeln!(out, "{name}{{reason=\"{label}\"}} {}", v.load(Relaxed));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_reason_has_its_own_label() {
        use lynn_proto::{DecodeError, DecodeErrorKind};
        let reasons = [
            CloseReason::Local,
            CloseReason::PeerClosed,
            CloseReason::PeerClosedMidFrame { buffered: 1 },
            CloseReason::Protocol(DecodeError {
                offset: 0,
                frame: 0,
                kind: DecodeErrorKind::LengthTooSmall { len: 0 },
            }),
            CloseReason::IdleTimeout,
            CloseReason::ReadTimeout,
            CloseReason::WriteTimeout,
            CloseReason::SlowConsumer,
            CloseReason::UnknownMethod { method: 3 },
            CloseReason::CorrelationLost,
            CloseReason::FrameBudget,
            CloseReason::Transport(std::io::ErrorKind::BrokenPipe),
        ];
        let m = Metrics::default();
        for (i, r) in reasons.iter().enumerate() {
            assert_eq!(CLOSE_LABELS[i], r.label());
            m.connection_closed(r);
            assert_eq!(m.closed_with(r.label()), 1);
        }
    }

    #[test]
    fn renders_reported_stats_and_gauges() {
        use crate::StatsReport;
        use lynn_proto::codec::{self, FrameKind, Marks};
        use lynn_proto::{Connection, ConnectionConfig, Instant};

        let now = Instant::now();
        let m = Metrics::default();
        let frame = codec::encode_to_bytes(Marks::default(), FrameKind::Message, 1, b"x", 1 << 20);
        let frame = frame.unwrap();
        for _ in 0..2 {
            let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
            conn.handle_bytes(&frame, now);
            StatsReport::default().report(&conn, &m);
        }
        m.send_refused(1);
        let text = m.render();
        assert!(text.contains("lynn_messages_received_total 2\n"), "{text}");
        let bytes = 2 * frame.len();
        assert!(text.contains(&format!("lynn_bytes_received_total {bytes}\n")));
        assert!(text.contains("lynn_send_queue_full_total 1\n"));
        assert!(text.contains("# TYPE lynn_connections_active gauge\n"));
        assert_eq!(m.messages_received(), 2);
    }
}
