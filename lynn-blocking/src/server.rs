//! [`ServerBuilder`] and [`Server`]: the shared server ([`lynn_service::server`]) on
//! [`BlockingRuntime`], with calls that block the calling thread, and handlers that are
//! plain closures, each wrapped as an async handler that runs it on a handler thread.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::sync::Arc;

use async_io::block_on;
use async_lock::Semaphore;
use lynn_proto::{PeerAddr, ServerConfig, ServerError};
use lynn_service::{HandlerError, IntoReply, Reply, SyncOutcome};

use crate::events::ServerEvents;
use crate::runtime::BlockingRuntime;
use crate::{Context, ServerHandle, SyncContext};

/// The shared builder this one wraps.
type Shared<S> = lynn_service::server::ServerBuilder<S, BlockingRuntime>;

/// Builds a [`Server`]: state, routes, fallback, event stream. Created by
/// [`Server::builder`]; see the crate docs.
#[must_use]
pub struct ServerBuilder<S = ()> {
    inner: Shared<S>,
    /// Bounds the closures of `route` and `fallback` running at once: `Some` only while
    /// `max_concurrent_handlers` is not set (the shared server bounds them otherwise).
    limit: Option<Arc<Semaphore>>,
}

impl<S> fmt::Debug for ServerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Handler closures that may run at once when `max_concurrent_handlers` is not set: twice
/// the available parallelism.
fn default_handler_limit() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 2
}

impl ServerBuilder<()> {
    /// Shared state every handler sees through [`Context::state`]. Only on a builder
    /// without state, and only before `route`, `route_sync`, `fallback`, `fallback_sync`
    /// and `event_stream` (they are typed by the state); otherwise `bind` fails with
    /// [`ServerError::Config`] (field `"state"`).
    pub fn state<T: Send + Sync + 'static>(self, state: T) -> ServerBuilder<T> {
        ServerBuilder {
            inner: self.inner.state(state),
            limit: self.limit,
        }
    }
}

impl<S: Send + Sync + 'static> ServerBuilder<S> {
    fn with(self, f: impl FnOnce(Shared<S>) -> Shared<S>) -> Self {
        ServerBuilder {
            inner: f(self.inner),
            limit: self.limit,
        }
    }

    /// Routes `method` to `handler`, a plain closure that may block. It runs on a handler
    /// thread, never on the executor threads that run the connections; at most
    /// `max_concurrent_handlers` of them at once (default: twice the available
    /// parallelism), the others wait their turn, and each connection has at most
    /// `max_in_flight` requests running. A method routed twice makes `bind` fail with
    /// [`ServerError::Route`].
    pub fn route<F, R>(self, method: u16, handler: F) -> Self
    where
        F: Fn(Context<S>) -> R + Send + Sync + 'static,
        R: IntoReply,
    {
        let (f, limit) = (boxed(handler), self.limit.clone());
        self.with(|b| {
            b.route(method, move |ctx| {
                on_handler_thread(f.clone(), limit.clone(), ctx)
            })
        })
    }

    /// The handler for methods without a route, run like [`route`](Self::route)'s. An
    /// event stream, if set (before or after), replaces it.
    pub fn fallback<F, R>(self, handler: F) -> Self
    where
        F: Fn(Context<S>) -> R + Send + Sync + 'static,
        R: IntoReply,
    {
        let (f, limit) = (boxed(handler), self.limit.clone());
        self.with(|b| b.fallback(move |ctx| on_handler_thread(f.clone(), limit.clone(), ctx)))
    }

    /// Routes `method` to `handler`, a synchronous `fn(&mut SyncContext<S>)` returning `()`
    /// or `Result<(), E: Display>`. It runs on the connection's task (on an executor
    /// thread), in place, while the connection decodes the message: the body is borrowed
    /// from the receive buffer and the reply is copied into the send queue, with no handler
    /// thread, no channel round trip and no allocation per message. For handlers that never
    /// wait (an echo, a lookup, a game move applied to state behind a lock): a slow one
    /// delays the connections its executor thread serves. Not counted against
    /// `max_concurrent_handlers` nor in `lynn_system_queue_size`. A message that comes
    /// while earlier requests of its connection are still in flight is answered by the
    /// same handler as it is dispatched (its reply is then copied once more, and waits for
    /// theirs: replies keep request order). A panic or an `Err` is caught and counted in
    /// the metrics, and the message completes without a reply (one given before the
    /// failure is withdrawn). A method routed twice (by either kind of route) makes `bind`
    /// fail with [`ServerError::Route`].
    ///
    /// ```
    /// use lynn_blocking::{Client, Server, ServerConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = ServerConfig::builder().addr("127.0.0.1:0").build()?;
    /// let server = Server::builder(config)
    ///     .route_sync(1, |ctx| ctx.reply(ctx.body())) // echo, in place
    ///     .bind()?;
    /// let addr = server.local_addr().to_string();
    /// let handle = server.handle();
    /// let running = std::thread::spawn(move || server.serve());
    ///
    /// assert_eq!(&Client::connect(addr)?.request(1, "hi")?[..], b"hi");
    /// handle.shutdown();
    /// running.join().unwrap()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn route_sync<F, R>(self, method: u16, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
        R: SyncOutcome,
    {
        self.with(|b| b.route_sync(method, handler))
    }

    /// A synchronous handler (see [`route_sync`](Self::route_sync)) for methods without a
    /// route. An event stream, if set (before or after), replaces it.
    pub fn fallback_sync<F, R>(self, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
        R: SyncOutcome,
    {
        self.with(|b| b.fallback_sync(handler))
    }

    /// Event-stream mode: connections, closes, and every message for a method without a
    /// route arrive on the returned [`ServerEvents`] (bounded by `capacity`, at least 1).
    /// Replaces any fallback, given before or after. While it is full the connections
    /// concerned wait; nothing is dropped.
    pub fn event_stream(self, capacity: usize) -> (Self, ServerEvents<S>) {
        let (inner, events) = self.inner.event_stream(capacity);
        let builder = ServerBuilder {
            inner,
            limit: self.limit,
        };
        (builder, ServerEvents(events))
    }

    /// Serves TLS (feature `tls`): every accepted connection completes a handshake with
    /// `tls` (within its handshake timeout) before its protocol starts; one that fails is
    /// closed alone and counted in `lynn_tls_handshake_failures_total`. Under mutual TLS,
    /// handlers see the client's certificates (`Context::peer_certificates`).
    #[cfg(feature = "tls")]
    pub fn tls(self, tls: crate::ServerTls) -> Self {
        self.with(|b| b.tls(tls))
    }

    /// Binds a listener at `config.addr` (`host:port`, or `unix:/path`), and the metrics
    /// endpoint if configured. Blocks while a host name is resolved.
    pub fn bind(self) -> Result<Server<S>, ServerError> {
        block_on(self.inner.bind()).map(|inner| Server { inner })
    }

    /// Binds a Unix socket at `path` (which must not exist; it is removed when `serve`
    /// returns).
    pub fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server<S>, ServerError> {
        block_on(self.inner.bind_unix(path)).map(|inner| Server { inner })
    }
}

/// A handler closure with its result converted (so that the future running it is typed by
/// the state alone).
type Blocking<S> = Arc<dyn Fn(Context<S>) -> Result<Reply, HandlerError> + Send + Sync>;

fn boxed<S, F, R>(f: F) -> Blocking<S>
where
    F: Fn(Context<S>) -> R + Send + Sync + 'static,
    R: IntoReply,
{
    Arc::new(move |ctx| f(ctx).into_reply())
}

/// Runs `f` on a handler thread (the `blocking` crate's pool), holding a permit of `limit`
/// while it runs, if given. A panic is raised again here, in the connection's task, which
/// catches and counts it like any handler's.
async fn on_handler_thread<S: Send + Sync + 'static>(
    f: Blocking<S>,
    limit: Option<Arc<Semaphore>>,
    ctx: Context<S>,
) -> Result<Reply, String> {
    let _permit = match limit {
        Some(limit) => Some(limit.acquire_arc().await),
        None => None,
    };
    let run = move || catch_unwind(AssertUnwindSafe(|| f(ctx)));
    match blocking::unblock(run).await {
        Ok(result) => result.map_err(|e| e.0),
        Err(panic) => resume_unwind(panic),
    }
}

/// A bound server. Run it with [`serve`](Server::serve) on a thread of your choice.
pub struct Server<S = ()> {
    inner: lynn_service::server::Server<S, BlockingRuntime>,
}

impl<S> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Server<()> {
    /// Starts building a server with `config`.
    pub fn builder(config: ServerConfig) -> ServerBuilder<()> {
        let limit = config
            .max_concurrent_handlers
            .is_none()
            .then(|| Arc::new(Semaphore::new(default_handler_limit())));
        ServerBuilder {
            inner: lynn_service::server::Server::builder(config),
            limit,
        }
    }
}

impl<S: Send + Sync + 'static> Server<S> {
    /// The listening address: `PeerAddr::Tcp(addr)` or `PeerAddr::Unix(Some(path))`. Its
    /// `Display` form is what [`Client::connect`](crate::Client::connect) accepts.
    pub fn local_addr(&self) -> PeerAddr {
        self.inner.local_addr()
    }

    /// The TCP address the server listens on (`None` for a Unix socket listener).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.tcp_addr()
    }

    /// The metrics endpoint's address, when `metrics_addr` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.metrics_addr()
    }

    /// A handle for other threads (send, broadcast, shutdown, …).
    pub fn handle(&self) -> ServerHandle {
        self.inner.handle()
    }

    /// Accepts connections on the calling thread until [`ServerHandle::shutdown`], then
    /// shuts down gracefully (see the crate docs) and returns. The connections run on the
    /// executor threads meanwhile.
    pub fn serve(self) -> Result<(), ServerError> {
        let socket_file = match self.inner.local_addr() {
            PeerAddr::Unix(Some(path)) => Some(path),
            _ => None,
        };
        let served = block_on(self.inner.serve());
        if let Some(path) = socket_file {
            let _ = std::fs::remove_file(path);
        }
        served
    }

    /// Like [`serve`](Self::serve), and also starts the shutdown when `signal` returns.
    /// `signal` runs on its own thread: block in it on whatever should stop the server (a
    /// channel, a Ctrl-C flag, …). It is not interrupted if the server stops another way.
    pub fn serve_with_shutdown(
        self,
        signal: impl FnOnce() + Send + 'static,
    ) -> Result<(), ServerError> {
        let handle = self.handle();
        std::thread::Builder::new()
            .name("lynn-shutdown-signal".into())
            .spawn(move || {
                signal();
                handle.shutdown();
            })?;
        self.serve()
    }
}
