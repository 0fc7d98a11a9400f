//! [`ServerBuilder`]: routes, state, fallback, event stream; then bind.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use lynn_proto::{ConfigError, Endpoint, ServerConfig, ServerError};
use lynn_service::Metrics;
use lynn_service::SharedAdmission;
use lynn_service::route_table::RouteTable;
use lynn_service::switchboard::Switchboard;
use lynn_service::{IntoReply, SyncOutcome};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};

use super::events::{self, ServerEvent, ServerEvents};
use super::handle::{ServerHandle, Shared};
use super::handler::{self, Handler};
use super::listener::Listener;
use super::{App, Context, Server, SyncContext};
use crate::stream;

/// Collects routes and options for a [`Server`]. Created by [`Server::builder`].
#[must_use]
pub struct ServerBuilder<S = ()> {
    config: ServerConfig,
    state: Arc<S>,
    table: RouteTable<Handler<S>>,
    events: Option<mpsc::Sender<ServerEvent<S>>>,
    /// Worker threads for connections; `None`: connections run on the serving runtime.
    workers: Option<usize>,
}

impl<S> std::fmt::Debug for ServerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addr", &self.config.addr)
            .field("routes", &self.table.len())
            .finish()
    }
}

impl ServerBuilder<()> {
    pub(crate) fn new(config: ServerConfig) -> Self {
        ServerBuilder {
            config,
            state: Arc::new(()),
            table: RouteTable::new(),
            events: None,
            workers: None,
        }
    }

    /// Shared state every handler sees through [`Context::state`]. Only on a builder
    /// without state, and only before `route`, `fallback` and `event_stream` (they are
    /// typed by the state); otherwise `bind` fails with [`ServerError::Config`] (field
    /// `"state"`).
    pub fn state<T: Send + Sync + 'static>(self, state: T) -> ServerBuilder<T> {
        ServerBuilder {
            config: self.config,
            state: Arc::new(state),
            table: self.table.with_state(),
            events: None,
            workers: self.workers,
        }
    }
}

impl<S: Send + Sync + 'static> ServerBuilder<S> {
    /// Routes `method` to `handler`, an `async fn(Context<S>) -> impl IntoReply`. A second
    /// route for the same method makes `bind` fail with [`ServerError::Route`].
    pub fn route<F, Fut, R>(mut self, method: u16, handler: F) -> Self
    where
        F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        self.table.route(method, handler::boxed(handler));
        self
    }

    /// The handler for methods without a route. An event stream, if set (before or
    /// after), replaces it.
    pub fn fallback<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        self.table.fallback(handler::boxed(handler));
        self
    }

    /// Routes `method` to `handler`, a synchronous `fn(&mut SyncContext<S>)` returning `()`
    /// or `Result<(), E: Display>`. It answers each message in place while the connection
    /// decodes it: the body is borrowed from the receive buffer and the reply is copied
    /// into the send queue, with no future, no `Arc` and no allocation per message. The
    /// fastest route, for handlers that never wait (they run on the connection's task, so
    /// a slow one delays that connection's other messages). Not counted against
    /// `max_concurrent_handlers`. A message that comes while earlier requests of its
    /// connection are still in flight (an async route's) waits its turn and is answered
    /// with the same handler (its reply then costs one allocation). A panic or an `Err` is
    /// caught and counted in the metrics, and the message completes without a reply (one
    /// given before the failure is withdrawn).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), lynn_tokio::ServerError> {
    /// use lynn_tokio::{Server, ServerConfig};
    ///
    /// let config = ServerConfig::builder().addr("127.0.0.1:9177").build()?;
    /// Server::builder(config)
    ///     .route_sync(1, |ctx| ctx.reply(ctx.body()))
    ///     .bind()
    ///     .await?
    ///     .serve()
    ///     .await
    /// # }
    /// ```
    pub fn route_sync<F, R>(mut self, method: u16, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
        R: SyncOutcome,
    {
        self.table.route(method, handler::sync(handler));
        self
    }

    /// A synchronous handler (see [`route_sync`](Self::route_sync)) for methods without a
    /// route. An event stream, if set (before or after), replaces it.
    pub fn fallback_sync<F, R>(mut self, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
        R: SyncOutcome,
    {
        self.table.fallback(handler::sync(handler));
        self
    }

    /// Event-stream mode: connections, closes, and every message for a method without a
    /// route arrive on the returned [`ServerEvents`] (bounded by `capacity`, at least 1).
    /// Replaces any fallback, given before or after.
    pub fn event_stream(mut self, capacity: usize) -> (Self, ServerEvents<S>) {
        let (tx, rx) = ServerEvents::channel(capacity);
        self.table.event_stream(events::forwarder(tx.clone()));
        self.events = Some(tx);
        (self, rx)
    }

    /// Runs connections on `n` worker threads, each with its own single-threaded tokio
    /// runtime, instead of spawning them on the runtime that calls `serve`. Accepted
    /// connections go to the workers in turn and stay on theirs; the accept loop, the
    /// metrics endpoint and the event stream stay on the serving runtime. `n` must be at
    /// least 1 (else `bind` fails with [`ServerError::Config`], field `"workers"`).
    ///
    /// Use it for many connections per core: a connection's task never moves, and a busy
    /// worker serves its ready connections in turn (see `BENCHMARKS.md`: under saturation
    /// tokio's multi-threaded scheduler leaves some connections waiting 100+ ms). Even
    /// service has a small price at saturation: with 1,024 busy connections on one core
    /// the multi-threaded scheduler answered 1–3 % more requests per second in the echo
    /// benchmark (interleaved runs, round 10), because the connections it keeps serving
    /// stay in the CPU's caches, while its p99 latency was six to seven times the
    /// single-threaded scheduler's. Leave `workers` out when peak throughput matters more
    /// than the latency of the least served connection. Inside a handler, `tokio::spawn`
    /// spawns on that connection's worker, and `tokio::task::block_in_place` is not
    /// available (single-threaded runtime).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), lynn_tokio::ServerError> {
    /// use lynn_tokio::{Context, Server, ServerConfig};
    ///
    /// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// let config = ServerConfig::builder().addr("127.0.0.1:9177").build()?;
    /// Server::builder(config)
    ///     .workers(cores)
    ///     .fallback(|ctx: Context| async move { ctx.reply(ctx.body().clone()) })
    ///     .bind()
    ///     .await?
    ///     .serve()
    ///     .await
    /// # }
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Binds a listener at `config.addr` (`host:port`, or `unix:/path`), and the metrics
    /// endpoint if configured.
    pub async fn bind(self) -> Result<Server<S>, ServerError> {
        match Endpoint::parse(&self.config.addr) {
            Endpoint::Tcp(addr) => {
                let listener = stream::listen_tcp(resolve(&addr).await?)?;
                self.finish(Listener::Tcp(listener)).await
            }
            Endpoint::Unix(path) => self.bind_unix(path).await,
        }
    }

    /// Binds a Unix domain socket listener at `path`.
    pub async fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server<S>, ServerError> {
        let listener = UnixListener::bind(path)?;
        self.finish(Listener::Unix(listener)).await
    }

    async fn finish(self, listener: Listener) -> Result<Server<S>, ServerError> {
        let config = self.config;
        if self.workers == Some(0) {
            return Err(ServerError::Config(ConfigError {
                field: "workers",
                problem: "must be at least 1".into(),
            }));
        }
        let router = self.table.build(&config)?;
        let admission = SharedAdmission::new(config.admission.clone())?;
        let metrics_listener = match &config.metrics_addr {
            Some(a) => Some(TcpListener::bind(resolve(a).await?).await?),
            None => None,
        };
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            board: Arc::new(Switchboard::new(&config, Arc::new(Metrics::default()))),
            admission,
            shutdown,
        });
        let app = App {
            sync_routes: App::has_sync_route(&router),
            router,
            state: self.state,
            events: self.events,
            handle: ServerHandle { shared },
            limit: config
                .max_concurrent_handlers
                .map(|n| Arc::new(Semaphore::new(n))),
            connection: Arc::new(config.connection.clone()),
            outbound_queue: config.outbound_queue,
            socket: config.socket.clone(),
        };
        Server::new(
            Arc::new(app),
            listener,
            metrics_listener,
            config.shutdown_timeout,
            self.workers,
        )
    }
}

/// The first address `addr` resolves to.
async fn resolve(addr: &str) -> Result<SocketAddr, ServerError> {
    tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        ServerError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        ))
    })
}
