//! Helpers shared by the scenarios: bounded waits, metric reads and test-sized configs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lynn_proto::{ClientConfig, ClientConfigBuilder, ServerConfig, ServerConfigBuilder};
use lynn_service::Metrics;

/// How long any wait on a condition may take before the test fails. Generous, so that the
/// suite passes on a loaded machine; a passing run never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds; panics naming `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `f` until it returns `Some`; panics naming `what` after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The value of the unlabelled Prometheus counter or gauge `name` in `metrics`.
pub fn counter(metrics: &Metrics, name: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("metric {name} not rendered"))
}

/// A server config on an ephemeral loopback port with a short shutdown timeout.
pub fn server_config() -> ServerConfigBuilder {
    ServerConfig::builder()
        .addr("127.0.0.1:0")
        .shutdown_timeout(Duration::from_secs(5))
}

/// A client config for `addr`: bounded connect and request times, no reconnect.
pub fn client_config(addr: SocketAddr) -> ClientConfigBuilder {
    ClientConfig::builder()
        .addr(addr.to_string())
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(15)))
        .reconnect(None)
}

/// A body of `len` bytes whose content depends on `seed` and the position.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
