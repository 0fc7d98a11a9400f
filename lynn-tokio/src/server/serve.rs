//! [`Server`]: the accept loop and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lynn_proto::{Instant, PeerAddr, ServerConfig, ServerError};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::builder::ServerBuilder;
use super::handle::{Entry, ServerHandle};
use super::inbox::Inbox;
use super::listener::Listener;
use super::workers::Workers;
use super::{App, task};
use crate::stream::{self, Stream};

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server<S = ()> {
    app: Arc<App<S>>,
    listener: Listener,
    local: PeerAddr,
    metrics_listener: Option<TcpListener>,
    metrics_local: Option<SocketAddr>,
    shutdown_timeout: Duration,
    /// How many worker threads run the connections (`ServerBuilder::workers`).
    workers: Option<usize>,
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local)
            .finish()
    }
}

impl Server<()> {
    /// Starts building a server with `config`.
    pub fn builder(config: ServerConfig) -> ServerBuilder<()> {
        ServerBuilder::new(config)
    }
}

impl<S: Send + Sync + 'static> Server<S> {
    pub(crate) fn new(
        app: Arc<App<S>>,
        listener: Listener,
        metrics_listener: Option<TcpListener>,
        shutdown_timeout: Duration,
        workers: Option<usize>,
    ) -> Result<Self, ServerError> {
        let local = listener.local_addr()?;
        let metrics_local = match &metrics_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        Ok(Server {
            app,
            listener,
            local,
            metrics_listener,
            metrics_local,
            shutdown_timeout,
            workers,
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
        self.metrics_local
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
    /// are answered and its output flushed, wait up to `config.shutdown_timeout`, then drop
    /// what is left. Returns once every connection is gone.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let Server {
            app,
            listener,
            metrics_listener,
            shutdown_timeout,
            workers,
            ..
        } = self;
        // Dropped on return, after every connection is gone: the worker threads then end.
        let mut workers = workers.map(Workers::start).transpose()?;
        let handle = app.handle.clone();
        let metrics_task = metrics_listener
            .map(|l| tokio::spawn(crate::metrics_http::serve(l, handle.metrics().clone())));
        let mut shutdown = handle.shared.shutdown.subscribe();
        let mut tasks = JoinSet::new();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                biased;
                () = &mut signal => break,
                _ = super::handle::shutdown_started(&mut shutdown) => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                res = listener.accept() => match res {
                    Ok((stream, peer)) => admit(&app, &mut tasks, workers.as_mut(), stream, peer),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        // Back off briefly (e.g. out of file descriptors) instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
        tracing::debug!(connections = tasks.len(), "shutting down");
        drop(listener);
        handle.shutdown();
        // No connection is admitted any more: ask every one to close gracefully.
        handle.shared.board.close_all();
        let drained = tokio::time::timeout(shutdown_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(left = tasks.len(), "shutdown timeout: dropping connections");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        if let Some(t) = metrics_task {
            t.abort();
        }
        Ok(())
    }
}

/// Admits (or refuses) one accepted socket and starts its task.
fn admit<S: Send + Sync + 'static>(
    app: &Arc<App<S>>,
    tasks: &mut JoinSet<()>,
    workers: Option<&mut Workers>,
    stream: Stream,
    peer: PeerAddr,
) {
    let shared = &app.handle.shared;
    let seat = match shared
        .admission
        .try_admit(peer.admission_ip(), Instant::now())
    {
        Ok(seat) => seat,
        Err(rejection) => {
            app.metrics().connection_rejected(&rejection);
            tracing::debug!(%peer, %rejection, "connection refused");
            return;
        }
    };
    if let Stream::Tcp(s) = &stream {
        stream::apply_options(s, &app.socket);
    }
    let inbox = Arc::new(Inbox::new(app.outbound_queue));
    let entry = Entry {
        inbox: inbox.clone(),
        peer: peer.clone(),
    };
    let registration = shared.board.register(entry, seat);
    let app = app.clone();
    let Some(workers) = workers else {
        let socket = task::Socket::Registered(stream);
        tasks.spawn(task::run(app, socket, peer, registration, inbox));
        return;
    };
    // The socket moves to the worker's reactor: detach it here, register it there.
    let socket = task::Socket::Detached(stream.into_std());
    tasks.spawn_on(
        task::run(app, socket, peer, registration, inbox),
        workers.next(),
    );
}
