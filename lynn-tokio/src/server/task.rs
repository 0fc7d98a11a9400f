//! The task that owns one accepted connection: its socket, its `Connection` and the
//! handlers of its requests, which run inside this task (no spawn per request).

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lynn_proto::dispatch::{self, HandlerOutcome};
use lynn_proto::switchboard::Registration;
use lynn_proto::{
    CloseReason, Connection, Event, HandlerError, Instant, Outbound, PeerAddr, Reply, Request,
    RequestId, SendError, StatsReport,
};

use super::context::Scope;
use super::handle::Entry;
use super::handler::{FutureSlots, HandlerFuture, Pending, Route};
use super::inbox::{Inbox, Signal};
use super::{App, Context, ServerEvent};
use crate::stream::{self, Stream};
use crate::timer::Timer;

type Outcome = Result<Result<Reply, HandlerError>, Box<dyn Any + Send>>;

/// A running handler, tagged with the request it answers.
struct Running {
    id: RequestId,
    fut: CatchUnwind<AssertUnwindSafe<Pending>>,
}

impl Future for Running {
    type Output = (RequestId, Outcome);

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let id = self.id;
        Pin::new(&mut self.fut).poll(cx).map(|out| (id, out))
    }
}

/// Runs the connection until it closes; its registration (table entry, admission seat)
/// is given back on every exit path.
pub(crate) async fn run<S: Send + Sync + 'static>(
    app: Arc<App<S>>,
    stream: Stream,
    peer: PeerAddr,
    mut registration: Registration<Entry>,
    inbox: Arc<Inbox>,
) {
    let id = registration.id();
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
                slots: FutureSlots::default(),
                now: Instant::now(),
                stalled: None,
                batch: VecDeque::new(),
                report: StatsReport::default(),
            };
            task.drive(&stream, &inbox).await
        }
        Err(e) => {
            tracing::error!(error = %e, "connection config refused");
            CloseReason::Local
        }
    };
    inbox.hang_up();
    tracing::debug!(%id, %reason, "connection closed");
    registration.set_reason(reason.clone());
    drop(registration);
    if let Some(events) = &app.events {
        let _ = events.send(ServerEvent::Closed { id, reason }).await;
    }
}

struct Task<'a, S> {
    app: &'a App<S>,
    scope: Arc<Scope<S>>,
    conn: Connection,
    handlers: FuturesUnordered<Running>,
    /// Boxes of finished handler futures, reused by the next requests.
    slots: FutureSlots,
    /// The clock, read once per loop turn (after the wake-up); handlers that finish within
    /// the turn complete at this instant.
    now: Instant,
    /// An outbound command the full send queue refused; retried on `Event::Writable`.
    stalled: Option<Outbound>,
    /// Commands taken from the inbox and not applied yet (behind `stalled`).
    batch: VecDeque<Outbound>,
    report: StatsReport,
}

impl<S: Send + Sync + 'static> Task<'_, S> {
    async fn drive(&mut self, stream: &Stream, inbox: &Inbox) -> CloseReason {
        let mut timer = Timer::new();
        let mut closing = false;
        loop {
            // After any change: drain events and finished handlers, then write everything.
            if let Some(reason) = self.drain() {
                self.finish_metrics();
                return reason;
            }
            let before = self.conn.pending_transmit();
            let write_blocked = stream::flush(stream, &mut self.conn, self.now);
            if self.conn.pending_transmit() != before || self.conn.is_closed() {
                // Written bytes may complete a graceful close: drain again.
                if let Some(reason) = self.drain() {
                    self.finish_metrics();
                    return reason;
                }
            }
            self.report.report(&self.conn, self.app.metrics());
            timer.set(self.conn.poll_timeout());

            let want_close = !closing;
            let want_commands = self.batch.is_empty() && self.stalled.is_none();
            tokio::select! {
                biased;
                Some(done) = self.handlers.next(), if !self.handlers.is_empty() => {
                    self.now = Instant::now();
                    self.finish(done);
                }
                // `ServerHandle::close` (or every connection at shutdown), or commands
                // from other connections.
                signal = inbox.next(&mut self.batch, want_close, want_commands),
                    if want_close || want_commands => {
                    self.now = Instant::now();
                    match signal {
                        Signal::Close => {
                            closing = true;
                            self.conn.close(self.now);
                        }
                        Signal::Commands => self.apply_batch(),
                    }
                }
                res = stream.readable(), if self.conn.wants_read() => match res {
                    Ok(()) => {
                        let (app, scope) = (self.app, &*self.scope);
                        self.now = stream::read_into_with(stream, &mut self.conn, |conn, now| {
                            conn.handle_received_inline(now, |msg| {
                                lynn_handler::answer_inline(&app.router, scope, app.metrics(), msg)
                            });
                        });
                    }
                    Err(e) => {
                        self.now = Instant::now();
                        self.conn.handle_transport_error(e.kind(), self.now);
                    }
                },
                res = stream.writable(), if write_blocked => {
                    self.now = Instant::now();
                    if let Err(e) = res {
                        self.conn.handle_transport_error(e.kind(), self.now);
                    }
                }
                () = &mut timer, if timer.is_armed() => {
                    self.now = Instant::now();
                    self.conn.handle_timeout(self.now);
                }
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
                        self.apply_batch();
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
        let now = self.now;
        let app = self.app;
        let Some((handler, req)) =
            dispatch::dispatch_uncounted(&app.router, &mut self.conn, req, app.metrics(), now)
        else {
            return;
        };
        let handler = match handler {
            Route::Async(h) => h,
            Route::Sync(h) => {
                // Earlier requests were in flight when it came: answered in turn.
                let outcome = lynn_handler::answer_request(h, &self.scope, &req);
                let done =
                    dispatch::finish_uncounted(&mut self.conn, req.id, outcome, app.metrics(), now);
                return self.after_finish(done);
            }
        };
        let ctx = Context::new(self.scope.clone(), req.method, req.body);
        // Most handlers (an echo) are ready at once: answer them here, without a place
        // (an allocation) in `handlers`, and in a future box kept from the previous request
        // (no allocation either). One that is pending joins `handlers`, which polls it
        // again with the task's waker.
        let slots = &mut self.slots;
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| match &app.limit {
            None => handler.run_inline(ctx, slots),
            Some(limit) => {
                let fut = handler.call(ctx);
                let limit = limit.clone();
                let fut: HandlerFuture = Box::pin(async move {
                    let _permit = limit.acquire_owned().await;
                    fut.await
                });
                Err(Pending::Boxed(fut))
            }
        }));
        let pending = match started {
            Ok(Ok(result)) => return self.finish_with((req.id, Ok(result)), false),
            Ok(Err(pending)) => pending,
            Err(panic) => return self.finish_with((req.id, Err(panic)), false),
        };
        let mut fut = AssertUnwindSafe(pending).catch_unwind();
        match (&mut fut).now_or_never() {
            Some(outcome) => self.finish_with((req.id, outcome), false),
            None => {
                // Only a handler that keeps running counts as in flight.
                app.metrics().in_flight_add(1);
                self.handlers.push(Running { id: req.id, fut });
            }
        }
    }

    /// A handler from `handlers` (counted in flight) finished.
    fn finish(&mut self, done: (RequestId, Outcome)) {
        self.finish_with(done, true);
    }

    /// A handler finished; `counted` when it was counted in flight.
    fn finish_with(&mut self, (id, outcome): (RequestId, Outcome), counted: bool) {
        let outcome = match outcome {
            Ok(result) => HandlerOutcome::from(result),
            Err(_) => HandlerOutcome::Panicked,
        };
        let (conn, metrics, now) = (&mut self.conn, self.app.metrics(), self.now);
        let done = if counted {
            dispatch::finish(conn, id, outcome, metrics, now)
        } else {
            dispatch::finish_uncounted(conn, id, outcome, metrics, now)
        };
        self.after_finish(done);
    }

    /// Logs a finished request's problem and routes its fanout.
    fn after_finish(&mut self, done: dispatch::Finished) {
        if let Some(problem) = done.problem {
            tracing::warn!(id = %self.scope.id, %problem, "request completed without its reply");
        }
        for f in done.fanout {
            self.app.handle.fanout(f.target, f.method, f.body);
        }
    }

    /// Applies the taken commands in order until one stalls.
    fn apply_batch(&mut self) {
        while self.stalled.is_none() {
            match self.batch.pop_front() {
                Some(cmd) => self.apply(cmd),
                None => break,
            }
        }
    }

    /// Applies one outbound command; a full send queue stalls it until `Writable`.
    fn apply(&mut self, cmd: Outbound) {
        let now = self.now;
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

    fn finish_metrics(&mut self) {
        self.report.report(&self.conn, self.app.metrics());
        let cancelled = self.handlers.len() as i64;
        if cancelled > 0 {
            self.app.metrics().in_flight_add(-cancelled);
        }
        self.handlers.clear();
    }
}
