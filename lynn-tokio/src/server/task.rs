//! The task that owns one accepted connection: its socket, its `Connection` and the
//! handlers of its requests, which run inside this task (no spawn per request).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lynn_proto::router::Resolved;
use lynn_proto::{
    CloseReason, Connection, ConnectionStats, Event, HandlerError, Instant, Outbound, Reply,
    Request, RequestId, SendError,
};
use tokio::sync::mpsc;

use super::context::Scope;
use super::guard::ConnGuard;
use super::handler::HandlerFuture;
use super::{App, Context, ServerEvent};
use crate::stream::{self, Stream};
use crate::timer::Timer;

type Outcome = Result<Result<Reply, HandlerError>, Box<dyn Any + Send>>;

/// A running handler, tagged with the request it answers.
struct Running {
    id: RequestId,
    fut: CatchUnwind<AssertUnwindSafe<HandlerFuture>>,
}

impl Future for Running {
    type Output = (RequestId, Outcome);

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let id = self.id;
        Pin::new(&mut self.fut).poll(cx).map(|out| (id, out))
    }
}

/// Runs the connection until it closes; the guard releases its slot on every exit path.
pub(crate) async fn run<S: Send + Sync + 'static>(
    app: Arc<App<S>>,
    stream: Stream,
    mut guard: ConnGuard,
    rx: mpsc::Receiver<Outbound>,
) {
    let (id, peer) = (guard.id, guard.peer.clone());
    if let Some(events) = &app.events {
        let event = ServerEvent::Connected {
            id,
            peer: peer.clone(),
        };
        let _ = events.send(event).await;
    }
    let reason = match Connection::new(app.connection.clone(), Instant::now()) {
        Ok(conn) => {
            let scope = Arc::new(Scope {
                id,
                peer,
                state: app.state.clone(),
                server: app.handle.clone(),
            });
            let mut task = Task {
                app: &app,
                scope,
                conn,
                handlers: FuturesUnordered::new(),
                stalled: None,
                last_stats: ConnectionStats::default(),
            };
            task.drive(&stream, rx).await
        }
        Err(e) => {
            tracing::error!(error = %e, "connection config refused");
            CloseReason::Local
        }
    };
    tracing::debug!(%id, %reason, "connection closed");
    guard.reason = Some(reason.clone());
    drop(guard);
    if let Some(events) = &app.events {
        let _ = events.send(ServerEvent::Closed { id, reason }).await;
    }
}

struct Task<'a, S> {
    app: &'a App<S>,
    scope: Arc<Scope<S>>,
    conn: Connection,
    handlers: FuturesUnordered<Running>,
    /// An outbound command the full send queue refused; retried on `Event::Writable`.
    stalled: Option<Outbound>,
    last_stats: ConnectionStats,
}

impl<S: Send + Sync + 'static> Task<'_, S> {
    async fn drive(&mut self, stream: &Stream, mut rx: mpsc::Receiver<Outbound>) -> CloseReason {
        let mut timer = Timer::new();
        let mut shutdown = self.app.handle.shared.shutdown.subscribe();
        let mut closing = false;
        let mut rx_open = true;
        loop {
            // After any change: drain events and finished handlers, then write everything.
            if let Some(reason) = self.drain() {
                self.finish_metrics();
                return reason;
            }
            let before = self.conn.pending_transmit();
            let write_blocked = stream::flush(stream, &mut self.conn);
            if self.conn.pending_transmit() != before || self.conn.is_closed() {
                // Written bytes may complete a graceful close: drain again.
                if let Some(reason) = self.drain() {
                    self.finish_metrics();
                    return reason;
                }
            }
            self.report_metrics();
            timer.set(self.conn.poll_timeout());

            tokio::select! {
                biased;
                Some(done) = self.handlers.next(), if !self.handlers.is_empty() => {
                    self.finish(done);
                }
                _ = super::handle::shutdown_started(&mut shutdown), if !closing => {
                    closing = true;
                    self.conn.close(Instant::now());
                }
                cmd = rx.recv(), if rx_open && self.stalled.is_none() => match cmd {
                    Some(cmd) => {
                        self.apply(cmd);
                        while self.stalled.is_none() {
                            match rx.try_recv() {
                                Ok(cmd) => self.apply(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    None => rx_open = false,
                },
                res = stream.readable(), if self.conn.wants_read() => match res {
                    Ok(()) => stream::read_into(stream, &mut self.conn),
                    Err(e) => self.conn.handle_transport_error(e.kind(), Instant::now()),
                },
                res = stream.writable(), if write_blocked => {
                    if let Err(e) = res {
                        self.conn.handle_transport_error(e.kind(), Instant::now());
                    }
                }
                () = &mut timer, if timer.is_armed() => self.conn.handle_timeout(Instant::now()),
            }
        }
    }

    /// Drains events and already finished handlers until neither yields anything.
    /// Returns the close reason once the connection is over.
    fn drain(&mut self) -> Option<CloseReason> {
        loop {
            let mut progressed = false;
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                match event {
                    Event::Message(req) => self.dispatch(req),
                    Event::Heartbeat => {}
                    Event::Writable => {
                        if let Some(cmd) = self.stalled.take() {
                            self.apply(cmd);
                        }
                    }
                    Event::Closed(reason) => return Some(reason),
                }
            }
            // Handlers that finish at once (an echo) answer within this same turn.
            while !self.handlers.is_empty() {
                match self.handlers.next().now_or_never() {
                    Some(Some(done)) => {
                        self.finish(done);
                        progressed = true;
                    }
                    _ => break,
                }
            }
            if !progressed {
                return None;
            }
        }
    }

    fn dispatch(&mut self, req: Request) {
        let handler = match self.app.router.resolve(req.method) {
            Resolved::Route(h) | Resolved::Fallback(h) => h,
            Resolved::Ignore => {
                self.app.metrics().unknown_method();
                self.complete(req.id, None);
                return;
            }
            Resolved::Close => {
                self.app.metrics().unknown_method();
                let method = req.method;
                self.conn.abort(CloseReason::UnknownMethod { method });
                return;
            }
        };
        let ctx = Context::new(self.scope.clone(), req.method, req.body);
        let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx))) {
            Ok(fut) => fut,
            Err(_) => {
                self.app.metrics().handler_panic();
                tracing::warn!(id = %self.scope.id, method = req.method, "handler panicked");
                self.complete(req.id, None);
                return;
            }
        };
        let fut: HandlerFuture = match &self.app.limit {
            Some(limit) => {
                let limit = limit.clone();
                Box::pin(async move {
                    let _permit = limit.acquire_owned().await;
                    fut.await
                })
            }
            None => fut,
        };
        self.app.metrics().in_flight_add(1);
        self.handlers.push(Running {
            id: req.id,
            fut: AssertUnwindSafe(fut).catch_unwind(),
        });
    }

    fn finish(&mut self, (id, outcome): (RequestId, Outcome)) {
        self.app.metrics().in_flight_add(-1);
        let reply = match outcome {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                self.app.metrics().handler_error();
                tracing::warn!(id = %self.scope.id, error = %e, "handler error");
                Reply::none()
            }
            Err(_) => {
                self.app.metrics().handler_panic();
                tracing::warn!(id = %self.scope.id, "handler panicked");
                Reply::none()
            }
        };
        let (to_sender, fanout) = reply.into_parts();
        self.complete(id, to_sender);
        for f in fanout {
            self.app.handle.fanout(f.target, f.method, f.body);
        }
    }

    fn complete(&mut self, id: RequestId, reply: Option<(u16, bytes::Bytes)>) {
        let now = Instant::now();
        if self.conn.config().max_in_flight == 0 {
            // Completion tracking is off: replies are plain sends.
            if let Some((method, body)) = reply
                && let Err(e) = self.conn.send(method, body, now)
            {
                tracing::debug!(id = %self.scope.id, error = %e, "reply dropped");
            }
        } else if let Err(e) = self.conn.complete(id, reply, now) {
            tracing::warn!(id = %self.scope.id, error = %e, "reply refused");
        }
    }

    /// Applies one outbound command; a full send queue stalls it until `Writable`.
    fn apply(&mut self, cmd: Outbound) {
        let now = Instant::now();
        let res = match &cmd {
            Outbound::Message { method, body } => self.conn.send(*method, body.clone(), now),
            Outbound::Encoded(frames) => self.conn.send_encoded(frames.clone(), now),
            Outbound::Close => {
                self.conn.close(now);
                Ok(())
            }
        };
        match res {
            Ok(()) => {}
            Err(SendError::QueueFull { .. }) if !self.conn.is_closed() => self.stalled = Some(cmd),
            Err(e) => tracing::debug!(id = %self.scope.id, error = %e, "outbound dropped"),
        }
    }

    fn report_metrics(&mut self) {
        let now = *self.conn.stats();
        if now != self.last_stats {
            self.app.metrics().add(&now.delta_since(&self.last_stats));
            self.last_stats = now;
        }
    }

    fn finish_metrics(&mut self) {
        self.report_metrics();
        let cancelled = self.handlers.len() as i64;
        if cancelled > 0 {
            self.app.metrics().in_flight_add(-cancelled);
        }
        self.handlers.clear();
    }
}
