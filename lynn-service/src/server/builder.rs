//! [`ServerBuilder`]: routes, state, fallback, event stream; then bind.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use async_lock::Semaphore;
use lynn_proto::{Endpoint, ServerConfig, ServerError};

use super::events::{self, ServerEvent, ServerEvents};
use super::handle::{ServerHandle, Shared};
use super::handler::{self, Handler};
use super::{App, Context, Server, SyncContext};
use crate::ServerScope;
use crate::route_table::RouteTable;
use crate::runtime::Runtime;
use crate::switchboard::Switchboard;
use crate::{IntoReply, Metrics, MetricsEndpoint, SharedAdmission, SyncOutcome};

/// Collects routes and options for a [`Server`]. Created by [`Server::builder`].
#[must_use]
pub struct ServerBuilder<S, R> {
    config: ServerConfig,
    state: Arc<S>,
    table: RouteTable<Handler<S>>,
    events: Option<async_channel::Sender<ServerEvent<S>>>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTls>,
    rt: R,
}

impl<S, R> std::fmt::Debug for ServerBuilder<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addr", &self.config.addr)
            .field("routes", &self.table.len())
            .finish()
    }
}

impl<R: Runtime> ServerBuilder<(), R> {
    pub(crate) fn new(config: ServerConfig) -> Self {
        ServerBuilder {
            config,
            state: Arc::new(()),
            table: RouteTable::new(),
            events: None,
            #[cfg(feature = "tls")]
            tls: None,
            rt: R::default(),
        }
    }

    /// Shared state every handler sees through [`Context::state`]. Only on a builder
    /// without state, and only before `route`, `fallback` and `event_stream` (they are
    /// typed by the state); otherwise `bind` fails with [`ServerError::Config`] (field
    /// `"state"`).
    pub fn state<T: Send + Sync + 'static>(self, state: T) -> ServerBuilder<T, R> {
        ServerBuilder {
            config: self.config,
            state: Arc::new(state),
            table: self.table.with_state(),
            events: None,
            #[cfg(feature = "tls")]
            tls: self.tls,
            rt: self.rt,
        }
    }
}

impl<S: Send + Sync + 'static, R: Runtime> ServerBuilder<S, R> {
    /// The runtime the server runs on (by default `R::default()`): for example tokio's
    /// with worker threads of its own.
    pub fn runtime(mut self, rt: R) -> Self {
        self.rt = rt;
        self
    }

    /// Serves TLS (feature `tls`): every accepted connection completes a handshake with
    /// `tls` (within its handshake timeout) before its protocol starts and before
    /// [`ServerEvent::Connected`]; one that fails is closed alone and counted in
    /// `lynn_tls_handshake_failures_total`. Under mutual TLS, handlers see the client's
    /// certificates ([`Context::peer_certificates`](crate::Context::peer_certificates)).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Routes `method` to `handler`, an `async fn(Context<S>) -> impl IntoReply`. A second
    /// route for the same method makes `bind` fail with [`ServerError::Route`].
    pub fn route<F, Fut, T>(mut self, method: u16, handler: F) -> Self
    where
        F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: IntoReply,
    {
        self.table.route(method, handler::boxed(handler));
        self
    }

    /// The handler for methods without a route. An event stream, if set (before or
    /// after), replaces it.
    pub fn fallback<F, Fut, T>(mut self, handler: F) -> Self
    where
        F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: IntoReply,
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
    pub fn route_sync<F, T>(mut self, method: u16, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> T + Send + Sync + 'static,
        T: SyncOutcome,
    {
        self.table.route(method, handler::sync(handler));
        self
    }

    /// A synchronous handler (see [`route_sync`](Self::route_sync)) for methods without a
    /// route. An event stream, if set (before or after), replaces it.
    pub fn fallback_sync<F, T>(mut self, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> T + Send + Sync + 'static,
        T: SyncOutcome,
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

    /// Binds a listener at `config.addr` (`host:port`, or `unix:/path`), and the metrics
    /// endpoint if configured (`config.metrics_addr`: a [`MetricsEndpoint`], on a thread of
    /// its own, serving from now until the server stops serving or is dropped).
    pub async fn bind(self) -> Result<Server<S, R>, ServerError> {
        let endpoint = Endpoint::parse(&self.config.addr);
        self.bind_at(endpoint).await
    }

    /// Binds a Unix domain socket listener at `path`.
    pub async fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server<S, R>, ServerError> {
        let path = path.as_ref().display().to_string();
        self.bind_at(Endpoint::Unix(path)).await
    }

    async fn bind_at(self, endpoint: Endpoint) -> Result<Server<S, R>, ServerError> {
        let config = self.config;
        let router = self.table.build(&config)?;
        let mut admission = config.admission.clone();
        if let Some(most) = crate::descriptor_budget()
            && admission.max_connections > most
        {
            // Informational: the default (100,000) exceeds most systems' default limit.
            tracing::info!(
                max_connections = admission.max_connections,
                clamped_to = most,
                "max_connections limited by the process's descriptor limit (`ulimit -n`)"
            );
            admission.max_connections = most;
        }
        let admission = SharedAdmission::new(admission)?;
        let backlog = config.listen_backlog.unwrap_or_else(crate::default_backlog);
        let listener = self.rt.bind(endpoint, backlog).await?;
        let metrics = Arc::new(Metrics::default());
        let metrics_endpoint = match &config.metrics_addr {
            Some(a) => Some(MetricsEndpoint::bind(a.as_str(), metrics.clone())?),
            None => None,
        };
        let shared = Arc::new(Shared {
            board: Arc::new(Switchboard::new(&config, metrics)),
            admission,
            shutdown: Default::default(),
        });
        let handle = ServerHandle { shared };
        let app = App {
            sync_routes: App::<S, R>::has_sync_route(&router),
            router,
            scope: Arc::new(ServerScope::new(self.state, handle.clone())),
            events: self.events,
            handle,
            limit: config
                .max_concurrent_handlers
                .map(|n| Arc::new(Semaphore::new(n))),
            connection: Arc::new(config.connection.clone()),
            outbound_queue: config.outbound_queue,
            socket: config.socket.clone(),
            budget: super::budget::SharedBudget::new(config.frame_budget),
            #[cfg(feature = "tls")]
            tls: self.tls,
            rt: self.rt,
        };
        Server::new(
            Arc::new(app),
            listener,
            metrics_endpoint,
            config.shutdown_timeout,
        )
    }
}
