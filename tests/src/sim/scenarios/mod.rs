//! The conformance scenarios on the simulation: async functions that start the real
//! shared server ([`SimServer`]) serving [`crate::app`], and talk to it with the shared
//! client (`lynn_service::Client<SimRuntime>`) or raw peers ([`RawSim`](super::raw::RawSim)).
//! They check what `crate::scenarios` checks over sockets, with waits in virtual time.
//!
//! [`run`] runs one under every seed of [`SEEDS`], each in a world of its own; with
//! `LYNN_SIM_SEEDS=n` in the environment, under seeds `0..n` instead (to explore more
//! interleavings; a failure names its seed).

pub mod admission;
pub mod backpressure;
pub mod bad_frames;
pub mod broadcast;
pub mod echo;
pub mod liveness;
pub mod reconnect;
pub mod requests;
pub mod shutdown;

use std::future::Future;
use std::time::Duration;

use lynn_proto::{ClientConfig, ClientConfigBuilder, Message, ServerConfig, ServerConfigBuilder};

use super::{Sim, SimRuntime, SimServer, Trace, elapsed, idle, tick, timeout};
use crate::app::App;

/// The seeds every scenario runs under.
pub const SEEDS: [u64; 4] = [1, 7, 42, 2026];

/// The shared client on the simulated runtime.
pub type Client = lynn_service::Client<SimRuntime>;

/// Where servers listen (port 0: the next simulated port).
pub const SERVER_ADDR: &str = "10.0.0.1:0";

/// How long (virtual time) a wait on a condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `scenario` in a new world seeded with `seed`; returns what the world did.
pub fn run_seed<F: Future<Output = ()>>(seed: u64, scenario: impl FnOnce() -> F) -> Trace {
    let sim = Sim::new(seed);
    sim.block_on(scenario());
    sim.trace()
}

/// The seeds [`run`] uses: [`SEEDS`], or `0..n` with `LYNN_SIM_SEEDS=n`.
pub fn seeds() -> Vec<u64> {
    match std::env::var("LYNN_SIM_SEEDS") {
        Ok(n) => (0..n.parse().expect("LYNN_SIM_SEEDS is a number")).collect(),
        Err(_) => SEEDS.to_vec(),
    }
}

/// Names the seed of a run that panics.
struct SeedOfFailure(u64);

impl Drop for SeedOfFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failed under seed {}", self.0);
        }
    }
}

/// Runs `scenario` under every seed of [`seeds`]; returns the virtual time each took
/// (also printed, for `--nocapture`). A failure names its seed.
pub fn run<F: Future<Output = ()>>(scenario: impl Fn() -> F) -> Vec<Duration> {
    let seeds = seeds();
    let mut times = Vec::new();
    for &seed in &seeds {
        let _named = SeedOfFailure(seed);
        times.push(run_seed(seed, &scenario).elapsed);
    }
    if seeds.len() <= SEEDS.len() {
        eprintln!("virtual time per seed {seeds:?}: {times:?}");
    }
    times
}

/// A server config on the next simulated port with a 5 s shutdown timeout.
pub fn server_config() -> ServerConfigBuilder {
    ServerConfig::builder()
        .addr(SERVER_ADDR)
        .shutdown_timeout(Duration::from_secs(5))
}

/// A client config for `addr`: bounded connect and request times, no reconnect.
pub fn client_config(addr: &str) -> ClientConfigBuilder {
    ClientConfig::builder()
        .addr(addr)
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(15)))
        .reconnect(None)
}

/// Starts a server with `config` serving the suite's [`App`].
pub async fn start(config: ServerConfigBuilder) -> SimServer {
    start_app(config, App::default()).await
}

/// Starts a server with `config` serving `app`.
pub async fn start_app(config: ServerConfigBuilder, app: App) -> SimServer {
    SimServer::start(config.build().expect("valid config"), app)
        .await
        .expect("the server starts")
}

/// Connects a client with `config`.
pub async fn connect(config: ClientConfigBuilder) -> Client {
    Client::connect_with(config.build().expect("valid config"))
        .await
        .expect("the client connects")
}

/// Lets the world run, and the clock move from timer to timer, until `cond` holds; panics
/// naming `what` after [`DEADLINE`] of virtual time (or when no timer is left).
pub async fn settle(what: &str, mut cond: impl FnMut() -> bool) {
    let end = elapsed() + DEADLINE;
    loop {
        idle().await;
        if cond() {
            return;
        }
        assert!(elapsed() < end, "timed out waiting for {what}");
        tick().await;
    }
}

/// The next push `client` receives within `within` of virtual time.
pub async fn recv_within(client: &Client, within: Duration) -> Option<Message> {
    timeout(within, client.recv()).await.flatten()
}

/// A body of `len` bytes whose content depends on `seed` and the position.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    crate::support::pattern(len, seed)
}
