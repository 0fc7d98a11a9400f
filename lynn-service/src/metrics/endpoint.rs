//! [`MetricsEndpoint`]: `GET /metrics` over HTTP/1.1, served by [tiny_http] on a thread of
//! its own, so it works the same whatever runs the connections (tokio, smol, lynn-blocking's
//! executor) and takes nothing from them.
//!
//! The format is negotiated: the Prometheus text format (version 0.0.4, what lynn_tcp
//! served), or OpenMetrics for a scraper whose `Accept` header asks for
//! `application/openmetrics-text`. Any other path is 404, any other method 405.
//!
//! Meant for a scraper on a trusted network: tiny_http reads each HTTP connection on a
//! thread of its pool with no timeout, so bind it to a private address. An application
//! that serves HTTP already can mount [`Metrics::encode`] in its own server instead.
//!
//! [tiny_http]: https://docs.rs/tiny_http

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response};

use super::Metrics;

/// How often the serving thread looks whether it should stop.
const POLL: Duration = Duration::from_millis(100);
/// How long it waits before listening again after its listener failed.
const RELISTEN: Duration = Duration::from_secs(1);

/// The built-in metrics endpoint: serves one [`Metrics`] at `GET /metrics` until dropped.
///
/// A server with `config.metrics_addr` set runs one itself (see `Server::metrics_addr`);
/// bind one for a client's metrics, or any other `Arc<Metrics>`.
///
/// ```
/// use std::sync::Arc;
/// use lynn_service::{Metrics, MetricsEndpoint};
///
/// let endpoint = MetricsEndpoint::bind("127.0.0.1:0", Arc::new(Metrics::default())).unwrap();
/// println!("scrape http://{}/metrics", endpoint.local_addr());
/// drop(endpoint); // stops serving and closes the port
/// ```
#[derive(Debug)]
pub struct MetricsEndpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Listens at `addr` and serves `metrics` from a thread of its own.
    pub fn bind(addr: impl ToSocketAddrs, metrics: Arc<Metrics>) -> io::Result<Self> {
        MetricsEndpoint::serve(TcpListener::bind(addr)?, metrics)
    }

    /// Serves `metrics` on `listener` (a blocking one) from a thread of its own.
    pub fn serve(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None).map_err(io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lynn-metrics".into())
            .spawn(move || run(server, addr, &metrics, &stopped))?;
        Ok(MetricsEndpoint {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsEndpoint {
    /// Stops serving (within 100 ms) and closes the port.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers requests until `stop`. tiny_http ends its accept loop at the first failed
/// accept (out of descriptors, say): listen again at the same address then, after a pause.
fn run(mut server: tiny_http::Server, addr: SocketAddr, metrics: &Metrics, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match server.recv_timeout(POLL) {
            Ok(Some(request)) => answer(request, metrics),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%addr, error = %e, "metrics endpoint: accept failed, listening again");
                drop(server);
                server = match relisten(addr, stop) {
                    Some(server) => server,
                    None => return,
                };
            }
        }
    }
}

/// A new server at `addr`, retried every [`RELISTEN`] until it listens or `stop`.
fn relisten(addr: SocketAddr, stop: &AtomicBool) -> Option<tiny_http::Server> {
    loop {
        std::thread::sleep(RELISTEN);
        if stop.load(Ordering::Acquire) {
            return None;
        }
        match TcpListener::bind(addr) {
            Ok(listener) => match tiny_http::Server::from_listener(listener, None) {
                Ok(server) => return Some(server),
                Err(e) => tracing::debug!(%addr, error = %e, "metrics endpoint not serving"),
            },
            Err(e) => tracing::debug!(%addr, error = %e, "metrics endpoint not listening"),
        }
    }
}

/// Whether the scraper asks for OpenMetrics.
fn wants_openmetrics(request: &Request) -> bool {
    request.headers().iter().any(|h| {
        h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
    })
}

fn answer(request: Request, metrics: &Metrics) {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = match (request.method(), path) {
        (Method::Get | Method::Head, "/metrics") => {
            let mut body = String::with_capacity(16 << 10);
            let content_type = if wants_openmetrics(&request) {
                let _ = metrics.encode_openmetrics(&mut body);
                Metrics::OPENMETRICS_CONTENT_TYPE
            } else {
                let _ = metrics.encode(&mut body);
                Metrics::CONTENT_TYPE
            };
            with_header(Response::from_string(body), "Content-Type", content_type)
        }
        (Method::Get | Method::Head, _) => {
            Response::from_string("not found\n").with_status_code(404)
        }
        _ => with_header(
            Response::from_string("method not allowed\n").with_status_code(405),
            "Allow",
            "GET, HEAD",
        ),
    };
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "metrics scrape not answered");
    }
}

fn with_header<R: io::Read>(response: Response<R>, name: &str, value: &str) -> Response<R> {
    match Header::from_bytes(name, value) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}
