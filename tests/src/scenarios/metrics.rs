//! The metrics endpoint, scraped over real HTTP after real traffic: every lynn_tcp metric
//! name with its type, the histograms' buckets, and the counts the traffic made.

use std::collections::HashMap;
use std::time::Duration;

use crate::app::{App, DELAY, ECHO, delay_body};
use crate::raw::{self, RawPeer};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{client_config, pattern, server_config, wait_until};

/// lynn_tcp's 17 metrics (`src/infrastructure/metrics/metrics.rs`): name and type.
pub const LYNN_TCP_METRICS: [(&str, &str); 17] = [
    ("lynn_connections_total", "counter"),
    ("lynn_connections_active", "gauge"),
    ("lynn_connections_closed_total", "counter"),
    ("lynn_connections_failed_total", "counter"),
    ("lynn_messages_received_total", "counter"),
    ("lynn_messages_sent_total", "counter"),
    ("lynn_messages_invalid_total", "counter"),
    ("lynn_messages_dropped_total", "counter"),
    ("lynn_message_size_bytes", "histogram"),
    ("lynn_message_processing_duration_seconds", "histogram"),
    ("lynn_network_bytes_received_total", "counter"),
    ("lynn_network_bytes_sent_total", "counter"),
    ("lynn_network_tcp_retransmits_total", "counter"),
    ("lynn_network_tcp_errors_total", "counter"),
    ("lynn_system_memory_used_bytes", "gauge"),
    ("lynn_system_active_threads", "gauge"),
    ("lynn_system_queue_size", "gauge"),
];

/// The `le` labels of lynn_tcp's message size buckets, as prometheus-client writes them.
const SIZE_BUCKETS: [&str; 8] = [
    "0",
    "128",
    "512",
    "2048",
    "10240",
    "102400",
    "1.048576e+06",
    "+Inf",
];

/// The `le` labels of lynn_tcp's processing duration buckets.
const DURATION_BUCKETS: [&str; 10] = [
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.5", "1", "5", "+Inf",
];

/// An exposition read into `# TYPE` lines and samples.
struct Scrape {
    text: String,
    types: HashMap<String, String>,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut types = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (series, value) = line.rsplit_once(' ').expect("series value");
                samples.insert(series.to_string(), value.parse().expect("a number"));
            }
        }
        Scrape {
            text,
            types,
            samples,
        }
    }

    /// The sample of `series` (a name with its labels); panics if there is none.
    fn get(&self, series: &str) -> f64 {
        match self.samples.get(series) {
            Some(v) => *v,
            None => panic!("no sample {series} in\n{}", self.text),
        }
    }
}

/// `GET url` with a real HTTP client; the status, content type and body.
fn get(url: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut request = ureq::get(url);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let mut response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::StatusCode(code)) => return (code, String::new(), String::new()),
        Err(e) => panic!("GET {url}: {e}"),
    };
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.body_mut().read_to_string().expect("a text body");
    (response.status().as_u16(), content_type, body)
}

/// Echoes of 0, 100, 1,000 and 20,000 bytes and one request deferred for 20 ms, then a
/// raw peer's invalid frame; the scrape has all of lynn_tcp's names with their types, the
/// buckets of both histograms, and counts matching that traffic.
pub fn scraped_after_traffic<R: Runtime>() {
    let config = server_config().metrics_addr("127.0.0.1:0").build().unwrap();
    let server = R::start_server(config, App::default()).expect("server starts");
    let url = format!(
        "http://{}/metrics",
        server.metrics_addr().expect("metrics addr")
    );
    let client = R::connect(client_config(server.addr()).build().unwrap()).expect("connects");
    for (i, len) in [0, 100, 1000, 20_000].into_iter().enumerate() {
        let body = pattern(len, i as u8);
        let reply = client.request(ECHO, body.clone().into()).expect("echo");
        assert!(reply == body, "echo of {len} bytes");
    }
    let late = delay_body(Duration::from_millis(20), b"late");
    let late_len = late.len();
    assert_eq!(&client.request(DELAY, late).expect("delayed")[..], b"late");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).expect("raw peer connects");
    let mut bad = raw::message(ECHO, b"x");
    bad[0] ^= 0xff;
    peer.write(&bad).expect("bad frame written");
    let metrics = server.metrics();
    wait_until("protocol error counted", || {
        metrics.closed_with("protocol_error") == 1
    });

    let (status, content_type, text) = get(&url, None);
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let scrape = Scrape::parse(text);
    for (name, kind) in LYNN_TCP_METRICS {
        // Counters are typed by their full name in the Prometheus text format.
        let typed = scrape.types.get(name).map(String::as_str);
        assert_eq!(
            typed,
            Some(kind),
            "# TYPE {name} {kind} in\n{}",
            scrape.text
        );
    }
    assert!(scrape.get("lynn_connections_total") >= 2.0);
    assert_eq!(scrape.get("lynn_connections_active"), 1.0);
    let protocol = "lynn_connections_closed_total{reason=\"protocol_error\"}";
    assert_eq!(scrape.get(protocol), 1.0);
    assert_eq!(scrape.get("lynn_connections_failed_total"), 0.0);
    assert_eq!(scrape.get("lynn_messages_received_total"), 5.0);
    assert_eq!(scrape.get("lynn_messages_sent_total"), 5.0);
    assert_eq!(scrape.get("lynn_messages_invalid_total"), 1.0);
    assert_eq!(scrape.get("lynn_messages_dropped_total"), 0.0);
    assert!(scrape.get("lynn_network_bytes_received_total") > 21_100.0);
    assert!(scrape.get("lynn_network_bytes_sent_total") > 21_100.0);
    assert_eq!(scrape.get("lynn_network_tcp_errors_total"), 0.0);
    assert_eq!(scrape.get("lynn_system_queue_size"), 0.0);
    if cfg!(target_os = "linux") {
        assert!(scrape.get("lynn_system_memory_used_bytes") > 1e6);
        assert!(scrape.get("lynn_system_active_threads") >= 2.0);
    }
    // Not collected: described, with no sample (not a made-up zero).
    assert!(
        !scrape
            .text
            .contains("\nlynn_network_tcp_retransmits_total ")
    );

    let size = |le: &str| scrape.get(&format!("lynn_message_size_bytes_bucket{{le=\"{le}\"}}"));
    let sizes = SIZE_BUCKETS.map(size);
    // 0; 100 and the delayed request's body; 1,000; 20,000 bytes.
    assert_eq!(late_len, 8);
    assert_eq!(sizes, [1.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 5.0]);
    assert_eq!(scrape.get("lynn_message_size_bytes_count"), 5.0);
    let sum = (100 + 1000 + 20_000 + late_len) as f64;
    assert_eq!(scrape.get("lynn_message_size_bytes_sum"), sum);

    let took = |le: &str| {
        scrape.get(&format!(
            "lynn_message_processing_duration_seconds_bucket{{le=\"{le}\"}}"
        ))
    };
    let durations = DURATION_BUCKETS.map(took);
    // The delayed request took at least 20 ms: above the 10 ms bucket. (The echoes are
    // answered at once, 0 s, where handlers run on the connection's task; lynn-blocking's
    // run on handler threads and take what they take.)
    assert!(durations[2] <= 4.0, "{durations:?}");
    assert_eq!(durations[9], 5.0);
    assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");
    assert_eq!(
        scrape.get("lynn_message_processing_duration_seconds_count"),
        5.0
    );
    assert!(scrape.get("lynn_message_processing_duration_seconds_sum") >= 0.02);

    // OpenMetrics on request; 404 elsewhere.
    let openmetrics = Some("application/openmetrics-text;version=1.0.0");
    let (status, content_type, text) = get(&url, openmetrics);
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, _, _) = get(&url.replace("/metrics", "/other"), None);
    assert_eq!(status, 404);

    drop(peer);
    client.close();
    server.stop();
}
