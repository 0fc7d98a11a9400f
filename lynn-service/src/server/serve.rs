//! [`Server`]: the accept loop and graceful shutdown.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use event_listener::Event;
use lynn_proto::{PeerAddr, ServerConfig, ServerError};

use super::App;
use super::builder::ServerBuilder;
use super::handle::{Entry, ServerHandle};
use super::inbox::Inbox;
use super::task::{self, Accepted};
use crate::MetricsEndpoint;
use crate::runtime::{Listener, Runtime, Timer};

/// How long the accept loop pauses after a failed accept (out of descriptors, say) instead
/// of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server<S, R: Runtime> {
    app: Arc<App<S, R>>,
    listener: R::Listener,
    local: PeerAddr,
    metrics_endpoint: Option<MetricsEndpoint>,
    shutdown_timeout: Duration,
}

impl<S, R: Runtime> std::fmt::Debug for Server<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local)
            .finish()
    }
}

impl<R: Runtime> Server<(), R> {
    /// Starts building a server with `config`.
    pub fn builder(config: ServerConfig) -> ServerBuilder<(), R> {
        ServerBuilder::new(config)
    }
}

/// The connection tasks still running, and a wake-up for when one ends.
#[derive(Default)]
struct Tasks {
    running: AtomicUsize,
    ended: Event,
}

/// Held by a connection task; counts it out when dropped (also when the runtime drops the
/// task unfinished).
pub(crate) struct Live(Arc<Tasks>);

impl Tasks {
    fn start(self: &Arc<Self>) -> Live {
        self.running.fetch_add(1, Ordering::SeqCst);
        Live(self.clone())
    }

    fn len(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Completes once no task is running.
    async fn all_ended(&self) {
        while self.len() > 0 {
            let listener = self.ended.listen();
            if self.len() == 0 {
                return;
            }
            listener.await;
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.ended.notify(usize::MAX);
        }
    }
}

impl<S: Send + Sync + 'static, R: Runtime> Server<S, R> {
    pub(crate) fn new(
        app: Arc<App<S, R>>,
        listener: R::Listener,
        metrics_endpoint: Option<MetricsEndpoint>,
        shutdown_timeout: Duration,
    ) -> Result<Self, ServerError> {
        let local = listener.local_addr()?;
        Ok(Server {
            app,
            listener,
            local,
            metrics_endpoint,
            shutdown_timeout,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> PeerAddr {
        self.local.clone()
    }

    /// The TCP address the server listens on (`None` for a Unix socket listener).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.local.tcp_addr()
    }

    /// Where the metrics endpoint listens, if `config.metrics_addr` was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_endpoint
            .as_ref()
            .map(MetricsEndpoint::local_addr)
    }

    /// A handle to the server, usable before and while it serves.
    pub fn handle(&self) -> ServerHandle {
        self.app.handle.clone()
    }

    /// Serves until [`ServerHandle::shutdown`] is called, then shuts down gracefully.
    pub async fn serve(self) -> Result<(), ServerError> {
        self.serve_with_shutdown(std::future::pending()).await
    }

    /// Serves until `signal` completes or [`ServerHandle::shutdown`] is called, then shuts
    /// down gracefully: stop accepting, close every connection after its requests in flight
    /// are answered and its output flushed, wait up to `config.shutdown_timeout`, then stop
    /// what is left. Returns once every connection is gone.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let Server {
            app,
            listener,
            metrics_endpoint,
            shutdown_timeout,
            ..
        } = self;
        // Scraped until serving ends (through the graceful shutdown too), then stopped.
        let _metrics_endpoint = metrics_endpoint;
        let handle = app.handle.clone();
        let rt = app.rt.clone();
        let tasks = Arc::new(Tasks::default());
        {
            let mut signal = pin!(signal);
            let mut started = pin!(handle.shared.shutdown.started());
            let mut backoff = rt.timer();
            let mut backing_off = false;
            poll_fn(|cx| {
                if signal.as_mut().poll(cx).is_ready() || started.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if backing_off {
                    if backoff.poll_elapsed(cx).is_pending() {
                        return Poll::Pending;
                    }
                    backing_off = false;
                }
                loop {
                    match listener.poll_accept(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok((accepted, peer))) => admit(&app, &tasks, accepted, peer),
                        Poll::Ready(Err(e)) => {
                            app.metrics().accept_failed();
                            tracing::warn!(error = %e, "accept failed");
                            backoff.reset(rt.now() + ACCEPT_BACKOFF);
                            if backoff.poll_elapsed(cx).is_pending() {
                                backing_off = true;
                                return Poll::Pending;
                            }
                        }
                    }
                }
            })
            .await;
        }
        tracing::debug!(connections = tasks.len(), "shutting down");
        drop(listener);
        handle.shutdown();
        // No connection is admitted any more: ask every one to close gracefully.
        let board = &handle.shared.board;
        board.close_all();
        let mut deadline = rt.timer();
        deadline.reset(rt.now() + shutdown_timeout);
        let drained = {
            let mut ended = pin!(tasks.all_ended());
            poll_fn(|cx| {
                if ended.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                deadline.poll_elapsed(cx).map(|()| false)
            })
            .await
        };
        if !drained {
            tracing::warn!(left = tasks.len(), "shutdown timeout: stopping connections");
            board.for_each(|_, entry| {
                entry.inbox.abort();
            });
            if let Some(events) = &app.events {
                // A task waiting to report its close to a full event stream ends too.
                events.close();
            }
            tasks.all_ended().await;
        }
        Ok(())
    }
}

/// Admits (or refuses) one accepted socket and starts its task.
fn admit<S: Send + Sync + 'static, R: Runtime>(
    app: &Arc<App<S, R>>,
    tasks: &Arc<Tasks>,
    accepted: Accepted<R>,
    peer: PeerAddr,
) {
    let shared = &app.handle.shared;
    let seat = match shared
        .admission
        .try_admit(peer.admission_ip(), app.rt.now())
    {
        Ok(seat) => seat,
        Err(rejection) => {
            app.metrics().connection_rejected(&rejection);
            tracing::debug!(%peer, %rejection, "connection refused");
            return;
        }
    };
    let inbox = Arc::new(Inbox::new(app.outbound_queue));
    let entry = Entry {
        inbox: inbox.clone(),
        peer: peer.clone(),
    };
    let registration = shared.board.register(entry, seat);
    let live = tasks.start();
    #[cfg(feature = "tls")]
    if app.tls.is_some() {
        let run = task::run::<S, R, super::upgrade::Tls>;
        app.rt
            .spawn(run(app.clone(), accepted, peer, registration, inbox, live));
        return;
    }
    let run = task::run::<S, R, super::upgrade::Plain>;
    app.rt
        .spawn(run(app.clone(), accepted, peer, registration, inbox, live));
}
