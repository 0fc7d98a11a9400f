//! [`ServerBuilder`] and [`Server`]: bind, accept, admit and spawn connection threads.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lynn_proto::router::Router;
use lynn_proto::{ConnectionConfig, Endpoint, PeerAddr, ServerConfig, ServerError};
use lynn_service::Metrics;
use lynn_service::route_table::RouteTable;
use lynn_service::switchboard::Switchboard;
use lynn_service::{IntoReply, SyncOutcome};
use lynn_service::{Seat, SharedAdmission};

use crate::context::{BoxHandler, Context, SyncContext, boxed};
use crate::events::{ServerEvent, ServerEvents};
use crate::handle::{HandleInner, ServerHandle, WakeAddr, lock};
use crate::pool::Pool;
use crate::stream::Stream;

/// What a method resolves to: a synchronous handler answered on the connection thread
/// (`Route::Sync`), or a [`Pooled`] route (`Route::Async`).
pub(crate) type Route<S> = lynn_service::Route<Pooled<S>, S, ServerHandle>;

/// A route that leaves the connection thread.
pub(crate) enum Pooled<S> {
    /// A handler run on the worker pool.
    Fn(BoxHandler<S>),
    /// The event stream.
    Events,
}

/// What every connection thread of one server shares.
pub(crate) struct Shared<S> {
    pub(crate) config: ServerConfig,
    /// `config.connection`, one copy for every connection (each `Connection` reads its
    /// limits from it).
    pub(crate) connection: Arc<ConnectionConfig>,
    pub(crate) router: Router<Route<S>>,
    pub(crate) state: Arc<S>,
    pub(crate) pool: Pool,
    pub(crate) events: Option<SyncSender<ServerEvent<S>>>,
    pub(crate) handle: ServerHandle,
}

/// Builds a [`Server`]: state, routes, fallback, event stream. See the crate docs.
#[must_use]
pub struct ServerBuilder<S = ()> {
    config: ServerConfig,
    state: Arc<S>,
    table: RouteTable<Route<S>>,
    events: Option<SyncSender<ServerEvent<S>>>,
}

impl<S> fmt::Debug for ServerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addr", &self.config.addr)
            .field("routes", &self.table.len())
            .field("event_stream", &self.events.is_some())
            .finish()
    }
}

impl ServerBuilder<()> {
    /// Shared state every handler sees through [`Context::state`]. Only on a builder
    /// without state, and only before `route`, `route_sync`, `fallback`, `fallback_sync`
    /// and `event_stream` (they are typed by the state); otherwise `bind` fails with
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
    /// Routes `method` to `handler`, run on the worker pool. A method routed twice makes
    /// `bind` fail with [`ServerError::Route`].
    pub fn route<F, R>(mut self, method: u16, handler: F) -> Self
    where
        F: Fn(Context<S>) -> R + Send + Sync + 'static,
        R: IntoReply,
    {
        self.table
            .route(method, Route::Async(Pooled::Fn(boxed(handler))));
        self
    }

    /// The handler for methods without a route. An event stream, if set (before or
    /// after), replaces it.
    pub fn fallback<F, R>(mut self, handler: F) -> Self
    where
        F: Fn(Context<S>) -> R + Send + Sync + 'static,
        R: IntoReply,
    {
        self.table
            .fallback(Route::Async(Pooled::Fn(boxed(handler))));
        self
    }

    /// Routes `method` to `handler`, a synchronous `fn(&mut SyncContext<S>)` returning `()`
    /// or `Result<(), E: Display>`. It runs on the connection's own thread, in place, while
    /// the connection decodes the message: the body is borrowed from the receive buffer and
    /// the reply is copied into the send queue, with no pool job, no channel round trip and
    /// no allocation per message. For handlers that never wait (an echo, a lookup, a game
    /// move applied to state behind a lock): a slow one delays that connection's other
    /// messages. Not counted against the pool (`max_concurrent_handlers`) nor in
    /// `lynn_requests_in_flight`. A message that comes while earlier pooled requests of its
    /// connection are still in flight is answered by the same handler on the connection
    /// thread as it is dispatched (its reply is then copied once more, and waits for
    /// theirs: replies keep request order). A panic or an `Err` is caught and counted in
    /// the metrics, and the message completes without a reply (one given before the
    /// failure is withdrawn). A method routed twice (by
    /// either kind of route) makes `bind` fail with [`ServerError::Route`].
    ///
    /// ```
    /// use lynn_blocking::{Client, Server, ServerConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = ServerConfig::builder().addr("127.0.0.1:0").build()?;
    /// let server = Server::builder(config)
    ///     .route_sync(1, |ctx| ctx.reply(ctx.body())) // echo, on the connection thread
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
    pub fn route_sync<F, R>(mut self, method: u16, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
        R: SyncOutcome,
    {
        self.table
            .route(method, Route::Sync(lynn_service::sync(handler)));
        self
    }

    /// A synchronous handler (see [`route_sync`](Self::route_sync)) for methods without a
    /// route, run on the connection thread. An event stream, if set (before or after),
    /// replaces it.
    pub fn fallback_sync<F, R>(mut self, handler: F) -> Self
    where
        F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
        R: SyncOutcome,
    {
        self.table
            .fallback(Route::Sync(lynn_service::sync(handler)));
        self
    }

    /// Event-stream mode: connections, closes, and every message for a method without a
    /// route arrive on the returned [`ServerEvents`] (bounded by `capacity`, at least 1).
    /// Replaces any fallback, given before or after. When it is full the connection
    /// concerned waits; nothing is dropped.
    pub fn event_stream(mut self, capacity: usize) -> (Self, ServerEvents<S>) {
        let (tx, rx) = sync_channel(capacity.max(1));
        self.table.event_stream(Route::Async(Pooled::Events));
        self.events = Some(tx);
        (self, ServerEvents { rx })
    }

    /// Binds a listener at `config.addr` (`host:port`, or `unix:/path`), and the metrics
    /// endpoint if configured.
    pub fn bind(self) -> Result<Server<S>, ServerError> {
        let addr = match Endpoint::parse(&self.config.addr) {
            Endpoint::Tcp(addr) => addr,
            #[cfg(unix)]
            Endpoint::Unix(path) => return self.bind_unix(path),
            #[cfg(not(unix))]
            Endpoint::Unix(_) => {
                return Err(std::io::Error::from(std::io::ErrorKind::Unsupported).into());
            }
        };
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let wake = match addr {
            a if a.ip().is_unspecified() && a.is_ipv4() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            a if a.ip().is_unspecified() => {
                SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], a.port()))
            }
            a => a,
        };
        self.finish(Listener::Tcp(listener), WakeAddr::Tcp(wake))
    }

    /// Binds a Unix socket at `path` (which must not exist; it is removed when `serve`
    /// returns).
    #[cfg(unix)]
    pub fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server<S>, ServerError> {
        let path = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)?;
        self.finish(Listener::Unix(listener, path.clone()), WakeAddr::Unix(path))
    }

    fn finish(self, listener: Listener, wake: WakeAddr) -> Result<Server<S>, ServerError> {
        let config = self.config;
        let router = self.table.build(&config)?;
        let admission = SharedAdmission::new(config.admission.clone())?;
        let metrics_listener = match &config.metrics_addr {
            Some(a) => Some(TcpListener::bind(a)?),
            None => None,
        };
        let pool = Pool::new(
            config
                .max_concurrent_handlers
                .unwrap_or_else(Pool::default_size),
        )?;
        let handle = ServerHandle {
            inner: Arc::new(HandleInner {
                board: Arc::new(Switchboard::new(&config, Arc::new(Metrics::default()))),
                admission,
                shutting_down: AtomicBool::new(false),
                wake: Some(wake),
                live: Mutex::new(0),
                live_cv: Condvar::new(),
            }),
        };
        Ok(Server {
            listener,
            metrics_listener,
            shared: Arc::new(Shared {
                connection: Arc::new(config.connection.clone()),
                config,
                router,
                state: self.state,
                pool,
                events: self.events,
                handle,
            }),
        })
    }
}

/// A listening socket.
#[derive(Debug)]
enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener, std::path::PathBuf),
}

impl Listener {
    fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Listener::Tcp(l) => Ok(Stream::Tcp(l.accept()?.0)),
            #[cfg(unix)]
            Listener::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0)),
        }
    }
}

/// A bound server. Run it with [`serve`](Server::serve) on a thread of your choice.
pub struct Server<S = ()> {
    listener: Listener,
    metrics_listener: Option<TcpListener>,
    shared: Arc<Shared<S>>,
}

impl<S> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish()
    }
}

impl Server<()> {
    /// Starts building a server with `config`.
    pub fn builder(config: ServerConfig) -> ServerBuilder<()> {
        ServerBuilder {
            config,
            state: Arc::new(()),
            table: RouteTable::new(),
            events: None,
        }
    }
}

impl<S: Send + Sync + 'static> Server<S> {
    /// The listening address: `PeerAddr::Tcp(addr)` or `PeerAddr::Unix(Some(path))`. Its
    /// `Display` form is what [`Client::connect`](crate::Client::connect) accepts.
    pub fn local_addr(&self) -> PeerAddr {
        match &self.listener {
            Listener::Tcp(l) => l.local_addr().map_or(PeerAddr::Unix(None), PeerAddr::Tcp),
            #[cfg(unix)]
            Listener::Unix(_, p) => PeerAddr::Unix(Some(p.display().to_string())),
        }
    }

    /// The TCP address the server listens on (`None` for a Unix socket listener).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.local_addr().tcp_addr()
    }

    /// The metrics endpoint's address, when `metrics_addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// A handle for other threads (send, broadcast, shutdown, …).
    pub fn handle(&self) -> ServerHandle {
        self.shared.handle.clone()
    }

    /// Accepts connections on the calling thread until [`ServerHandle::shutdown`], then
    /// shuts down gracefully (see the crate docs) and returns.
    pub fn serve(self) -> Result<(), ServerError> {
        let handle = self.shared.handle.clone();
        let stop_metrics = Arc::new(AtomicBool::new(false));
        let mut metrics_thread = None;
        let metrics_addr = self.metrics_addr();
        if let Some(l) = self.metrics_listener {
            let m = Arc::clone(handle.metrics());
            metrics_thread = Some(crate::metrics_http::spawn(l, m, Arc::clone(&stop_metrics))?);
        }
        while !handle.is_shutting_down() {
            match self.listener.accept() {
                Ok(stream) if !handle.is_shutting_down() => admit(&self.shared, stream),
                Ok(_) => break,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    // Out of descriptors and the like: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        #[cfg(unix)]
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
        drop(self.listener);
        handle.drain(self.shared.config.shutdown_timeout);
        if let (Some(t), Some(addr)) = (metrics_thread, metrics_addr) {
            stop_metrics.store(true, Ordering::Release);
            let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            let _ = t.join();
        }
        Ok(())
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

/// Admits or rejects one accepted socket; spawns its threads.
fn admit<S: Send + Sync + 'static>(shared: &Arc<Shared<S>>, stream: Stream) {
    let handle = &shared.handle;
    let peer = stream.peer();
    let now = lynn_proto::Instant::now();
    let seat: Seat = match handle.inner.admission.try_admit(peer.admission_ip(), now) {
        Ok(seat) => seat,
        Err(rejection) => {
            log::debug!("rejected {peer}: {rejection}");
            handle.metrics().connection_rejected(&rejection);
            return;
        }
    };
    if let Err(e) = crate::spawn::connection(shared, stream, peer.clone(), seat) {
        log::warn!("could not start connection from {peer}: {e}");
    }
}

/// Counts connections whose threads are live, for the shutdown wait.
pub(crate) fn live_add(handle: &ServerHandle, delta: isize) {
    let mut live = lock(&handle.inner.live);
    *live = live.saturating_add_signed(delta);
    handle.inner.live_cv.notify_all();
}
