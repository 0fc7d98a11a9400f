use super::*;
use crate::StatsReport;
use lynn_proto::codec::{self, FrameKind, Marks};
use lynn_proto::{Connection, ConnectionConfig, Instant};

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
    assert!(m.render().contains("lynn_network_tcp_errors_total 1\n"));
}

/// A server connection that received one message of each body length in `lens`.
fn received(lens: &[usize]) -> Connection {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
    for &len in lens {
        let body = vec![7; len];
        let frame = codec::encode_to_bytes(Marks::default(), FrameKind::Message, 1, &body, 1 << 21);
        conn.handle_bytes(&frame.unwrap(), now);
    }
    conn
}

#[test]
fn renders_reported_stats_and_gauges() {
    let m = Metrics::default();
    for _ in 0..2 {
        StatsReport::default().report(&received(&[1]), &m);
    }
    m.send_refused(1);
    let text = m.render();
    assert!(text.contains("lynn_messages_received_total 2\n"), "{text}");
    let bytes = 2 * (1 + codec::OVERHEAD);
    assert!(text.contains(&format!("lynn_network_bytes_received_total {bytes}\n")));
    assert!(text.contains("lynn_send_queue_full_total 1\n"));
    assert!(text.contains("# TYPE lynn_connections_active gauge\n"));
    assert!(text.contains("# TYPE lynn_connections_total counter\n"));
    assert_eq!(m.messages_received(), 2);
}

#[test]
fn histograms_have_lynn_tcp_buckets() {
    let m = Metrics::default();
    let mut report = StatsReport::default();
    let conn = received(&[0, 100, 128, 129, 4096, 1 << 20, (1 << 20) + 1]);
    report.report(&conn, &m);
    m.observe_processing(Duration::from_millis(7));
    let text = m.render();
    let has = |line: &str| assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
    has("lynn_message_size_bytes_bucket{le=\"0\"} 1");
    has("lynn_message_size_bytes_bucket{le=\"128\"} 3");
    has("lynn_message_size_bytes_bucket{le=\"512\"} 4");
    has("lynn_message_size_bytes_bucket{le=\"2048\"} 4");
    has("lynn_message_size_bytes_bucket{le=\"10240\"} 5");
    has("lynn_message_size_bytes_bucket{le=\"102400\"} 5");
    // Bounds are written as Go's client writes them (Prometheus 3 normalises `le`).
    has("lynn_message_size_bytes_bucket{le=\"1.048576e+06\"} 6");
    has("lynn_message_size_bytes_bucket{le=\"+Inf\"} 7");
    has("lynn_message_size_bytes_count 7");
    let sum = 100 + 128 + 129 + 4096 + (1 << 20) + (1 << 20) + 1;
    has(&format!("lynn_message_size_bytes_sum {sum}.0"));
    // Seven processed at once (the report), one deferred for 7 ms.
    has("lynn_message_processing_duration_seconds_bucket{le=\"0.001\"} 7");
    has("lynn_message_processing_duration_seconds_bucket{le=\"0.005\"} 7");
    has("lynn_message_processing_duration_seconds_bucket{le=\"0.01\"} 8");
    has("lynn_message_processing_duration_seconds_bucket{le=\"5\"} 8");
    has("lynn_message_processing_duration_seconds_count 8");

    // A deferred request moves out of the "at once" bucket.
    report.deferred();
    report.report(&conn, &m);
    let text = m.render();
    assert!(text.contains("lynn_message_processing_duration_seconds_bucket{le=\"0.001\"} 6\n"));
}

#[test]
fn a_client_reports_no_processing_durations() {
    let m = Metrics::client();
    StatsReport::default().report(&received(&[3]), &m);
    let text = m.render();
    assert!(text.contains("# TYPE lynn_message_processing_duration_seconds histogram\n"));
    assert!(!text.contains("lynn_message_processing_duration_seconds_count"));
    assert!(text.contains("lynn_message_size_bytes_count 1\n"));
}

#[test]
fn failures_and_tls_reasons_are_counted() {
    let m = Metrics::default();
    m.tls_handshake_failed("certificate");
    m.tls_handshake_failed("certificate");
    m.tls_handshake_failed("something else");
    m.connection_failed();
    assert_eq!(m.tls_handshake_failures("certificate"), 2);
    assert_eq!(
        m.tls_handshake_failures("io"),
        1,
        "an unknown reason counts as io"
    );
    assert_eq!(m.connections_failed(), 4);
    let text = m.render();
    assert!(text.contains("lynn_tls_handshake_failures_total{reason=\"certificate\"} 2\n"));
    assert!(text.contains("lynn_tls_handshake_failures_total{reason=\"timeout\"} 0\n"));
    assert!(text.contains("lynn_connections_failed_total 4\n"));
    let mut open = String::new();
    m.encode_openmetrics(&mut open).unwrap();
    assert!(open.ends_with("# EOF\n"));
}
