//! [`ServerBuilder`] and [`Server`]: routes, binding, the accept loop and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use async_lock::Semaphore;
use futures_lite::future;
use lynn_proto::router::Router;
use lynn_proto::{ConnectionConfig, Endpoint, Instant, PeerAddr, ServerConfig, ServerError};
use lynn_service::SharedAdmission;
use lynn_service::route_table::RouteTable;
use lynn_service::{IntoReply, SyncOutcome};

use crate::context::{Context, SyncContext};
use crate::events::{self, ServerEvent, ServerEvents};
use crate::handle::ServerHandle;
use crate::handler::{self, Handler};
use crate::stream::Stream;
use crate::tasks::TaskSet;
use crate::{conn_task, metrics_http};

/// Pause after a failed `accept` (for example out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What every connection task of one server shares (read-only).
pub(crate) struct Shared<S> {
    pub(crate) config: ServerConfig,
    /// `config.connection`, one copy for every connection (each `Connection` reads its
    /// limits from it).
    pub(crate) connection: Arc<ConnectionConfig>,
    pub(crate) router: Router<Handler<S>>,
    pub(crate) state: Arc<S>,
    pub(crate) handle: ServerHandle,
    pub(crate) events: Option<async_channel::Sender<ServerEvent<S>>>,
    pub(crate) limit: Option<Arc<Semaphore>>,
}

/// Configures a [`Server`]: shared state, routes, a fallback, an event stream. Finish with
/// [`bind`](Self::bind) or [`bind_unix`](Self::bind_unix).
#[must_use]
pub struct ServerBuilder<S = ()> {
    config: ServerConfig,
    state: Arc<S>,
    table: RouteTable<Handler<S>>,
    events: Option<async_channel::Sender<ServerEvent<S>>>,
}

impl<S> std::fmt::Debug for ServerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addr", &self.config.addr)
            .field("routes", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl ServerBuilder<()> {
    /// Shared state every handler sees through [`Context::state`]. Only on a builder
    /// without state, and only before `route`, `fallback` (and their `_sync` forms) and
    /// `event_stream` (they are typed by the state); otherwise `bind` fails with
    /// [`ServerError::Config`] (field `"state"`).
    pub fn state<T: Send + Sync + 'static>(self, state: T) -> ServerBuilder<T> {
        ServerBuilder {
            config: self.config,
            state: Arc::new(state),
            table: self.table.with_state(),
            events: None,
        }
    }
}

impl<S: Send + Sync + 'static> ServerBuilder<S> {
    /// Routes `method` to `handler`, an `async fn(Context<S>) -> impl IntoReply`. A method
    /// routed twice makes `bind` fail with [`ServerError::Route`].
    pub fn route<F, Fut, R>(mut self, method: u16, handler: F) -> Self
    where
        F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply + 'static,
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
        R: IntoReply + 'static,
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
    /// with the same handler (its reply then costs one allocation). A panic or an `Err`
    /// completes the message without a reply and is counted in [`Metrics`], like an async
    /// handler's. A method routed twice makes `bind` fail with [`ServerError::Route`].
    ///
    /// [`Metrics`]: lynn_service::Metrics
    ///
    /// ```no_run
    /// # fn main() -> Result<(), lynn_smol::ServerError> {
    /// use lynn_smol::{Server, ServerConfig};
    ///
    /// let config = ServerConfig::builder().addr("127.0.0.1:9177").build()?;
    /// async_io::block_on(async {
    ///     Server::builder(config)
    ///         .route_sync(1, |ctx| ctx.reply(ctx.body()))
    ///         .bind()
    ///         .await?
    ///         .serve()
    ///         .await
    /// })
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
        let (tx, rx) = async_channel::bounded(capacity.max(1));
        self.table.event_stream(events::forwarder(tx.clone()));
        self.events = Some(tx);
        (self, ServerEvents::new(rx))
    }

    /// Binds a listener at `config.addr` (`host:port`, or `unix:/path`), and the metrics
    /// endpoint if configured.
    pub async fn bind(self) -> Result<Server<S>, ServerError> {
        let addr = match Endpoint::parse(&self.config.addr) {
            Endpoint::Tcp(addr) => addr,
            #[cfg(unix)]
            Endpoint::Unix(path) => return self.bind_unix(path).await,
            #[cfg(not(unix))]
            Endpoint::Unix(_) => return Err(io::Error::from(io::ErrorKind::Unsupported).into()),
        };
        let listener = Async::<TcpListener>::bind(lynn_service::reactor::resolve(&addr).await?)?;
        let local = PeerAddr::Tcp(listener.get_ref().local_addr()?);
        self.finish(Listener::Tcp(listener), local).await
    }

    /// Binds a Unix domain socket listener at `path` (which must not exist yet).
    #[cfg(unix)]
    pub async fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server<S>, ServerError> {
        let listener = Async::<UnixListener>::bind(path.as_ref())?;
        let local = PeerAddr::Unix(Some(path.as_ref().display().to_string()));
        self.finish(Listener::Unix(listener), local).await
    }

    async fn finish(self, listener: Listener, local: PeerAddr) -> Result<Server<S>, ServerError> {
        let config = self.config;
        let router = self.table.build(&config)?;
        let admission = SharedAdmission::new(config.admission.clone())?;
        let metrics_listener = match &config.metrics_addr {
            Some(addr) => Some(Async::<TcpListener>::bind(
                lynn_service::reactor::resolve(addr).await?,
            )?),
            None => None,
        };
        let handle = ServerHandle::new(&config, admission);
        let limit = config
            .max_concurrent_handlers
            .map(|n| Arc::new(Semaphore::new(n)));
        Ok(Server {
            shared: Arc::new(Shared {
                connection: Arc::new(config.connection.clone()),
                config,
                router,
                state: self.state,
                handle,
                events: self.events,
                limit,
            }),
            listener,
            local,
            metrics_listener,
        })
    }
}

enum Listener {
    Tcp(Async<TcpListener>),
    #[cfg(unix)]
    Unix(Async<UnixListener>),
}

impl Listener {
    /// Accepts the next connection, registered for the tasks of `tasks`.
    ///
    /// Waits through `poll_readable` rather than async-io's `accept`: that future tries an
    /// `accept` each time it is polled, and this one is polled (it is part of the `serve`
    /// future) every time the thread running `serve` wakes, which with a busy server cost
    /// an `accept` syscall per reactor turn. `poll_readable` answers `Pending` without
    /// a syscall until the reactor reports the listener readable.
    async fn accept(&self, tasks: &TaskSet) -> io::Result<(Stream, PeerAddr)> {
        loop {
            let accepted = match self {
                Listener::Tcp(l) => l.get_ref().accept().and_then(|(s, addr)| {
                    Ok((Stream::accepted_tcp(s, tasks)?, PeerAddr::Tcp(addr)))
                }),
                #[cfg(unix)]
                Listener::Unix(l) => l.get_ref().accept().and_then(|(s, addr)| {
                    let path = addr.as_pathname().map(|p| p.display().to_string());
                    Ok((Stream::accepted_unix(s, tasks)?, PeerAddr::Unix(path)))
                }),
            };
            match accepted {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
            future::poll_fn(|cx| match self {
                Listener::Tcp(l) => l.poll_readable(cx),
                #[cfg(unix)]
                Listener::Unix(l) => l.poll_readable(cx),
            })
            .await?;
        }
    }
}

/// A bound server, ready to [`serve`](Self::serve).
///
/// `serve` runs the accept loop and, inside the same future, one task per connection (run
/// from a queue the server owns). So the server needs no global runtime: the future
/// returned by `serve` works under `smol::block_on`, `async_std::task::block_on`,
/// `async_io::block_on` or any executor that polls it, and all its connections run wherever
/// that future is polled.
pub struct Server<S = ()> {
    shared: Arc<Shared<S>>,
    listener: Listener,
    local: PeerAddr,
    metrics_listener: Option<Async<TcpListener>>,
}

impl Server<()> {
    /// Starts configuring a server.
    pub fn builder(config: ServerConfig) -> ServerBuilder<()> {
        ServerBuilder {
            config,
            state: Arc::new(()),
            table: RouteTable::new(),
            events: None,
        }
    }
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Server<S> {
    /// The listener's address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> PeerAddr {
        self.local.clone()
    }

    /// The TCP address the server listens on (`None` for a Unix socket listener).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.local.tcp_addr()
    }

    /// The metrics endpoint's address, when `config.metrics_addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.get_ref().local_addr().ok())
    }

    /// A handle to reach connections and shut the server down, usable from anywhere.
    pub fn handle(&self) -> ServerHandle {
        self.shared.handle.clone()
    }

    /// Serves until [`ServerHandle::shutdown`], then shuts down gracefully.
    pub async fn serve(self) -> Result<(), ServerError> {
        self.serve_with_shutdown(future::pending()).await
    }

    /// Serves until `signal` completes or [`ServerHandle::shutdown`] is called, then shuts
    /// down gracefully: stop accepting, close every connection (requests in flight are
    /// answered, output flushed), wait up to `shutdown_timeout`, drop what is left.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let tasks = TaskSet::new()?;
        let Server {
            shared,
            listener,
            metrics_listener,
            ..
        } = self;
        let handle = shared.handle.clone();
        let (done_tx, done_rx) = async_channel::bounded::<()>(1);
        tasks
            .run(async {
                if let Some(l) = metrics_listener {
                    let metrics = Arc::clone(handle.metrics());
                    tasks.spawn(metrics_http::serve(l, metrics));
                }
                let shutdown = handle.shutdown_signal();
                let stop = future::or(signal, async {
                    let _ = shutdown.recv().await;
                });
                let accept = accept_loop(&tasks, &shared, listener, &done_tx);
                future::or(accept, stop).await;
                tracing::debug!("shutting down");
                handle.shutdown();
                // A connection registered after this sees the shutdown when it registers.
                handle.inner.board.close_all();
                drop(done_tx);
                let drained = async {
                    let _ = done_rx.recv().await;
                    true
                };
                let deadline = async {
                    Timer::after(shared.config.shutdown_timeout).await;
                    false
                };
                if !future::or(drained, deadline).await {
                    tracing::warn!(
                        left = handle.connection_count(),
                        "shutdown timeout: dropping remaining connections"
                    );
                }
            })
            .await;
        // Dropping the task set drops any connection task still running; their seats give
        // back registry entries and admission permits.
        drop(tasks);
        Ok(())
    }
}

async fn accept_loop<S: Send + Sync + 'static>(
    tasks: &TaskSet,
    shared: &Arc<Shared<S>>,
    listener: Listener,
    done: &async_channel::Sender<()>,
) {
    let handle = &shared.handle;
    loop {
        let (stream, peer) = match listener.accept(tasks).await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let seat = match handle
            .inner
            .admission
            .try_admit(peer.admission_ip(), Instant::now())
        {
            Ok(seat) => seat,
            Err(rejection) => {
                handle.metrics().connection_rejected(&rejection);
                tracing::debug!(%peer, %rejection, "connection rejected");
                continue;
            }
        };
        stream.apply(&shared.config.socket);
        let task = conn_task::run(Arc::clone(shared), stream, peer, seat, done.clone());
        tasks.spawn(task);
    }
}
