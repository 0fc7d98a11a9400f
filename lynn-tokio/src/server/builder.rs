//! [`ServerBuilder`]: routes, state, fallback, event stream; then bind.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lynn_proto::admission::Admission;
use lynn_proto::router::Router;
use lynn_proto::{ConfigError, IntoReply, Metrics, Registry, ServerConfig, ServerError};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};

use super::events::{self, ServerEvent, ServerEvents};
use super::handle::{ServerHandle, Shared};
use super::handler::{self, Handler};
use super::listener::Listener;
use super::{App, Context, Server};
use crate::stream;

/// Collects routes and options for a [`Server`]. Created by [`Server::builder`].
#[must_use]
pub struct ServerBuilder<S = ()> {
    config: ServerConfig,
    state: Arc<S>,
    routes: Vec<(u16, Handler<S>)>,
    fallback: Option<Handler<S>>,
    events: Option<mpsc::Sender<ServerEvent<S>>>,
    error: Option<ConfigError>,
}

impl<S> std::fmt::Debug for ServerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addr", &self.config.addr)
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl ServerBuilder<()> {
    pub(crate) fn new(config: ServerConfig) -> Self {
        ServerBuilder {
            config,
            state: Arc::new(()),
            routes: Vec::new(),
            fallback: None,
            events: None,
            error: None,
        }
    }

    /// Shared state every handler sees through [`Context::state`]. Call it before adding
    /// routes (handlers are typed by the state); otherwise `bind` fails.
    pub fn state<T: Send + Sync + 'static>(self, state: T) -> ServerBuilder<T> {
        let error = self.error.or_else(|| {
            (!self.routes.is_empty() || self.fallback.is_some()).then(|| ConfigError {
                field: "state",
                problem: "must be set before routes and fallback".into(),
            })
        });
        ServerBuilder {
            config: self.config,
            state: Arc::new(state),
            routes: Vec::new(),
            fallback: None,
            events: None,
            error,
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
        self.routes.push((method, handler::boxed(handler)));
        self
    }

    /// The handler for methods without a route. Replaces the event stream's forwarding.
    pub fn fallback<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        self.fallback = Some(handler::boxed(handler));
        self
    }

    /// Event-stream mode: connections, closes, and every message without a route arrive on
    /// the returned [`ServerEvents`] (bounded by `capacity`). Replaces any fallback.
    pub fn event_stream(mut self, capacity: usize) -> (Self, ServerEvents<S>) {
        let (tx, rx) = ServerEvents::channel(capacity);
        self.fallback = Some(events::forwarder(tx.clone()));
        self.events = Some(tx);
        (self, rx)
    }

    /// Binds a TCP listener at `config.addr` (and the metrics endpoint, if configured).
    pub async fn bind(self) -> Result<Server<S>, ServerError> {
        let addr = resolve(&self.config.addr).await?;
        let listener = stream::listen_tcp(addr)?;
        self.finish(Listener::Tcp(listener)).await
    }

    /// Binds a Unix domain socket listener at `path`.
    pub async fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server<S>, ServerError> {
        let listener = UnixListener::bind(path)?;
        self.finish(Listener::Unix(listener)).await
    }

    async fn finish(self, listener: Listener) -> Result<Server<S>, ServerError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        let config = self.config;
        config.validate()?;
        let admission = Admission::new(config.admission.clone())?;
        let mut router = Router::builder().unknown_method(config.unknown_method);
        for (method, h) in self.routes {
            router = router.route(method, h);
        }
        if let Some(h) = self.fallback {
            router = router.fallback(h);
        }
        let router = router.build()?;
        let metrics_listener = match &config.metrics_addr {
            Some(a) => Some(TcpListener::bind(resolve(a).await?).await?),
            None => None,
        };
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry::new(config.groups)),
            admission: Mutex::new(admission),
            metrics: Arc::new(Metrics::default()),
            marks: config.connection.marks,
            peer_max_frame_len: config.connection.peer_max_frame_len,
            shutdown,
            runtime: tokio::runtime::Handle::current(),
        });
        let app = App {
            router,
            state: self.state,
            events: self.events,
            handle: ServerHandle { shared },
            limit: config
                .max_concurrent_handlers
                .map(|n| Arc::new(Semaphore::new(n))),
            connection: config.connection.clone(),
            outbound_queue: config.outbound_queue,
            socket: config.socket.clone(),
        };
        Server::new(
            Arc::new(app),
            listener,
            metrics_listener,
            config.shutdown_timeout,
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
