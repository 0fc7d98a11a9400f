//! The task that owns one accepted connection: its socket, its [`Connection`], and the
//! futures of its handlers (run inside this task, so no lock is taken per message).

use std::cell::RefCell;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_lite::future;
use futures_util::FutureExt as _;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use lynn_proto::{
    CloseReason, Connection, ConnectionId, Event, Instant, PeerAddr, Request, RequestId, SendError,
    SpareBuffers,
};
use lynn_service::Outbound;
use lynn_service::Seat;
use lynn_service::dispatch::{self, HandlerOutcome};
use lynn_service::switchboard::Registration;

use crate::context::{Context, Scope};
use crate::doorbell::Doorbell;
use crate::events::ServerEvent;
use crate::handle::Peer;
use crate::handler::{self, FutureSlots, Route, Running, Started};
use crate::pump::{IoWake, Pump};
use crate::server::Shared;
use crate::stream::Stream;

thread_local! {
    /// The buffers the connections polled on this thread take turns using: one pair that
    /// stays in cache rather than one per connection (see [`SpareBuffers`]).
    static SPARE: RefCell<SpareBuffers> = RefCell::new(SpareBuffers::default());
}

/// What woke the connection task.
enum Wake {
    Io(IoWake),
    Handler(RequestId, HandlerOutcome),
    Outbound(Outbound),
    Close,
}

/// Runs one connection until it closes; its registration (table entry, admission seat)
/// is given back on every exit path.
///
/// A function returning an `async` block rather than an `async fn` (which keeps a copy of
/// each argument beside the local it is moved into), and the `Connection` made only once
/// the `Connected` event is sent (its 416 bytes were kept through that wait); ~500 bytes
/// of every connection's task that no turn reads.
#[allow(clippy::manual_async_fn)]
pub(crate) fn run<S: Send + Sync + 'static>(
    shared: Arc<Shared<S>>,
    stream: Stream,
    peer: PeerAddr,
    seat: Seat,
    _done: async_channel::Sender<()>,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        // Named so that the block owns it: dropped when the task ends, which is what whoever
        // waits on its receiver waits for.
        let _done = _done;
        let (tx, outbound) = async_channel::unbounded();
        let bell = Arc::new(Doorbell::default());
        let entry = Peer {
            tx,
            limit: shared.config.outbound_queue,
            bell: Arc::clone(&bell),
            addr: peer.clone(),
        };
        let mut registration: Registration<Peer> = shared.handle.inner.board.register(entry, seat);
        // A shutdown closes the connections registered when it starts (`close_all`); this
        // one may have come after.
        if shared.handle.is_shutting_down() {
            bell.request_close();
        }
        let id = registration.id();
        tracing::debug!(%id, %peer, "connected");
        if let Some(events) = &shared.events {
            let connected = ServerEvent::Connected {
                id,
                peer: peer.clone(),
            };
            let _ = events.send(connected).await;
        }
        let (reason, pump) = 'run: {
            let conn = match Connection::new(shared.connection.clone(), Instant::now()) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::error!(error = %e, "connection settings rejected");
                    break 'run (CloseReason::Local, None);
                }
            };
            let scope = Arc::new(Scope {
                id,
                peer,
                state: Arc::clone(&shared.state),
                server: shared.handle.clone(),
            });
            let mut driver = Driver {
                shared: &shared,
                id,
                scope,
                conn,
                pump: Pump::new(stream),
                handlers: FuturesUnordered::new(),
                slots: FutureSlots::default(),
                outbound,
                bell,
                closing: false,
                held: None,
                now: Instant::now(),
            };
            let reason = driver.run().await;
            let Driver { pump, handlers, .. } = driver;
            if !handlers.is_empty() {
                shared
                    .handle
                    .metrics()
                    .in_flight_add(-(handlers.len() as i64));
            }
            (reason, Some(pump))
        };
        tracing::debug!(%id, %reason, "closed");
        // Bookkeeping first, so whoever sees the socket close also sees the server updated.
        registration.set_reason(reason.clone());
        drop(registration);
        if let Some(pump) = pump {
            pump.stream().shutdown_write();
        }
        if let Some(events) = &shared.events {
            let _ = events.send(ServerEvent::Closed { id, reason }).await;
        }
    }
}

struct Driver<'a, S> {
    shared: &'a Shared<S>,
    id: ConnectionId,
    scope: Arc<Scope<S>>,
    conn: Connection,
    pump: Pump,
    handlers: FuturesUnordered<Running>,
    /// Boxes of finished handler futures, reused by the next requests.
    slots: FutureSlots,
    /// Commands from the [`ServerHandle`](crate::ServerHandle), announced by `bell`.
    outbound: async_channel::Receiver<Outbound>,
    bell: Arc<Doorbell>,
    /// The close requested through `bell` was taken: it is not watched any more.
    closing: bool,
    /// A command refused by a full send queue, retried on `Event::Writable`.
    held: Option<Outbound>,
    /// The clock, read once per loop turn (after the wake-up): whatever the turn dispatches,
    /// finishes or applies happens at this instant.
    now: Instant,
}

impl<S: Send + Sync + 'static> Driver<'_, S> {
    async fn run(&mut self) -> CloseReason {
        loop {
            if let Some(reason) = self.settle() {
                return reason;
            }
            let _ = SPARE.try_with(|spare| self.conn.give_buffers(&mut spare.borrow_mut()));
            self.pump.arm(self.conn.poll_timeout());
            if self.pump.should_yield() {
                future::yield_now().await;
            }
            let wake = future::poll_fn(|cx| self.poll_wake(cx)).await;
            let _ = SPARE.try_with(|spare| self.conn.take_buffers(&mut spare.borrow_mut()));
            // The clock is read once per wake-up (by the pump after a read).
            match wake {
                Wake::Io(io) => {
                    // Messages of synchronous routes are answered while they are decoded.
                    let (shared, scope) = (self.shared, &*self.scope);
                    self.now = self.pump.on_wake_with(io, &mut self.conn, |conn, now| {
                        conn.handle_received_inline(now, |msg| {
                            let metrics = shared.handle.metrics();
                            lynn_service::answer_inline(&shared.router, scope, metrics, msg)
                        });
                    });
                }
                Wake::Handler(id, outcome) => {
                    self.now = Instant::now();
                    self.finish(id, outcome);
                }
                Wake::Outbound(cmd) => {
                    self.now = Instant::now();
                    self.apply(cmd);
                }
                Wake::Close => {
                    self.now = Instant::now();
                    self.conn.close(self.now);
                }
            }
        }
    }

    /// Drains events, finished handlers and output until none of them produces anything
    /// new, so that everything one wake-up made ready leaves in one vectored write. Returns
    /// the close reason once the connection is over.
    fn settle(&mut self) -> Option<CloseReason> {
        loop {
            if let Some(reason) = self.drain() {
                self.pump.report(&self.conn, self.shared.handle.metrics());
                return Some(reason);
            }
            // Counted before written, so a peer that sees a reply finds the message it
            // answers counted; and after, the bytes written.
            self.pump.report(&self.conn, self.shared.handle.metrics());
            self.pump.flush(&mut self.conn, self.now);
            self.pump
                .report_written(&self.conn, self.shared.handle.metrics());
            // Written bytes may have produced events (a graceful close completing).
            let event = self.conn.poll_event()?;
            if let Some(reason) = self.on_event(event) {
                return Some(reason);
            }
        }
    }

    /// Handles every queued event and every handler that has already finished, until
    /// neither yields anything.
    fn drain(&mut self) -> Option<CloseReason> {
        loop {
            let mut progressed = false;
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                if let Some(reason) = self.on_event(event) {
                    return Some(reason);
                }
            }
            // Handlers that were waiting and are done now (polled with a no-op waker:
            // `poll_wake` registers the task's waker again before the task sleeps).
            while !self.handlers.is_empty() {
                match self.handlers.next().now_or_never() {
                    Some(Some((id, outcome))) => {
                        progressed = true;
                        self.finish(id, outcome);
                    }
                    _ => break,
                }
            }
            if !progressed {
                return None;
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Option<CloseReason> {
        match event {
            Event::Message(req) => self.dispatch(req),
            Event::Heartbeat => {}
            Event::Writable => {
                if let Some(cmd) = self.held.take() {
                    self.apply(cmd);
                }
            }
            Event::Closed(reason) => return Some(reason),
        }
        None
    }

    fn dispatch(&mut self, req: Request) {
        let shared = self.shared;
        let metrics = shared.handle.metrics();
        let Some((h, req)) =
            dispatch::dispatch_uncounted(&shared.router, &mut self.conn, req, metrics, self.now)
        else {
            return;
        };
        let h = match h {
            Route::Async(h) => h,
            Route::Sync(h) => {
                // Earlier requests were in flight when it came: answered in turn, never
                // counted in flight.
                let outcome = lynn_service::answer_request(h, &self.scope, &req);
                return self.finish_with(req.id, outcome, false);
            }
        };
        let ctx = Context::new(Arc::clone(&self.scope), req.method, req.body);
        // Most handlers (an echo) are ready at once: answer them here, without a place in
        // `handlers`, and in a future box kept from the previous request (no allocation
        // either). Only a handler that keeps running counts as in flight.
        let limit = shared.limit.as_ref();
        match handler::start(h, ctx, req.id, limit, &mut self.slots) {
            Started::Done(outcome) => self.finish_with(req.id, outcome, false),
            Started::Pending(running) => {
                metrics.in_flight_add(1);
                self.handlers.push(running);
            }
        }
    }

    /// A handler from `handlers` (counted in flight) finished.
    fn finish(&mut self, id: RequestId, outcome: HandlerOutcome) {
        self.finish_with(id, outcome, true);
    }

    /// A handler finished; `counted` when it was counted in flight.
    fn finish_with(&mut self, id: RequestId, outcome: HandlerOutcome, counted: bool) {
        let (conn, metrics, now) = (&mut self.conn, self.shared.handle.metrics(), self.now);
        let done = if counted {
            dispatch::finish(conn, id, outcome, metrics, now)
        } else {
            dispatch::finish_uncounted(conn, id, outcome, metrics, now)
        };
        if let Some(problem) = done.problem {
            tracing::warn!(conn = %self.id, %problem, "request completed without its reply");
        }
        for f in done.fanout {
            self.shared.handle.fanout(f.target, f.method, f.body);
        }
    }

    fn apply(&mut self, cmd: Outbound) {
        let now = self.now;
        let result = match &cmd {
            Outbound::Message { method, body } => self.conn.send(*method, body.clone(), now),
            Outbound::Encoded(frames) => self.conn.send_encoded(frames.clone(), now),
            Outbound::Close => {
                self.conn.close(now);
                Ok(())
            }
        };
        match result {
            Ok(()) => {}
            Err(SendError::QueueFull { .. }) => self.held = Some(cmd),
            Err(e) => tracing::debug!(conn = %self.id, error = %e, "outbound message dropped"),
        }
    }

    fn poll_wake(&mut self, cx: &mut TaskContext<'_>) -> Poll<Wake> {
        if !self.handlers.is_empty()
            && let Poll::Ready(Some((id, outcome))) = self.handlers.poll_next_unpin(cx)
        {
            return Poll::Ready(Wake::Handler(id, outcome));
        }
        // Commands (unless one is held), then a close request (until taken).
        let (take, close) = (self.held.is_none(), !self.closing);
        if (take || close)
            && let Poll::Ready(wake) = self.bell.poll(cx, take && close, || {
                if take && let Ok(cmd) = self.outbound.try_recv() {
                    Poll::Ready(Wake::Outbound(cmd))
                } else if close && self.bell.close_requested() {
                    Poll::Ready(Wake::Close)
                } else {
                    Poll::Pending
                }
            })
        {
            if let Wake::Close = wake {
                self.closing = true;
            }
            return Poll::Ready(wake);
        }
        self.pump.poll_io(&mut self.conn, true, cx).map(Wake::Io)
    }
}
