//! The task that owns one accepted connection: its socket, its [`Connection`], and the
//! futures of its handlers (run inside this task, so no lock is taken per message).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_lite::{Stream as _, future};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use lynn_proto::router::Resolved;
use lynn_proto::{
    CloseReason, Connection, ConnectionId, Event, Instant, Outbound, PeerAddr, Reply, Request,
    SendError,
};

use crate::context::Context;
use crate::events::ServerEvent;
use crate::handle::Peer;
use crate::handler::{self, Outcome, Running};
use crate::pump::{IoWake, Pump};
use crate::seat::Seat;
use crate::server::Shared;
use crate::stream::Stream;

/// Handlers of one connection when the core does not track completion (`max_in_flight` 0):
/// past this many, events are left in the core, which then stops reading.
const UNTRACKED_HANDLER_CAP: usize = 1024;

type Rx<T> = Pin<Box<async_channel::Receiver<T>>>;

/// What woke the connection task.
enum Wake {
    Io(IoWake),
    Handler(lynn_proto::RequestId, Outcome),
    Outbound(Outbound),
    Close,
}

/// Runs one connection until it closes, then gives its seat back.
pub(crate) async fn run<S: Send + Sync + 'static>(
    shared: Arc<Shared<S>>,
    stream: Stream,
    peer: PeerAddr,
    mut seat: Seat,
    _done: async_channel::Sender<()>,
) {
    let conn = match Connection::new(shared.config.connection.clone(), Instant::now()) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!(error = %e, "connection settings rejected");
            return;
        }
    };
    let (tx, outbound) = async_channel::bounded(shared.config.outbound_queue);
    let (close, close_rx) = async_channel::bounded(1);
    let peer = Arc::new(peer);
    let id = seat.register(Peer {
        tx,
        close,
        addr: Arc::clone(&peer),
    });
    tracing::debug!(%id, %peer, "connected");
    if let Some(events) = &shared.events {
        let connected = ServerEvent::Connected {
            id,
            peer: (*peer).clone(),
        };
        let _ = events.send(connected).await;
    }
    let mut driver = Driver {
        shutdown: Some(Box::pin(shared.handle.shutdown_signal())),
        shared: &shared,
        id,
        peer,
        conn,
        pump: Pump::new(stream),
        handlers: FuturesUnordered::new(),
        outbound: Some(Box::pin(outbound)),
        close: Some(Box::pin(close_rx)),
        held: None,
    };
    let reason = driver.run().await;
    let Driver { pump, handlers, .. } = driver;
    if !handlers.is_empty() {
        shared
            .handle
            .metrics()
            .in_flight_add(-(handlers.len() as i64));
    }
    drop(handlers);
    tracing::debug!(%id, %reason, "closed");
    // Bookkeeping first, so whoever sees the socket close also sees the server updated.
    seat.leave(&reason);
    pump.stream().shutdown_write();
    drop(pump);
    if let Some(events) = &shared.events {
        let _ = events.send(ServerEvent::Closed { id, reason }).await;
    }
}

struct Driver<'a, S> {
    shared: &'a Shared<S>,
    id: ConnectionId,
    peer: Arc<PeerAddr>,
    conn: Connection,
    pump: Pump,
    handlers: FuturesUnordered<Running>,
    outbound: Option<Rx<Outbound>>,
    close: Option<Rx<()>>,
    shutdown: Option<Rx<()>>,
    /// A command refused by a full send queue, retried on `Event::Writable`.
    held: Option<Outbound>,
}

impl<S: Send + Sync + 'static> Driver<'_, S> {
    async fn run(&mut self) -> CloseReason {
        loop {
            if let Some(reason) = self.settle() {
                return reason;
            }
            self.pump.arm(self.conn.poll_timeout());
            if self.pump.should_yield() {
                future::yield_now().await;
            }
            let wake = future::poll_fn(|cx| self.poll_wake(cx)).await;
            let now = Instant::now();
            match wake {
                Wake::Io(io) => self.pump.on_wake(io, &mut self.conn),
                Wake::Handler(id, outcome) => self.finish(id, outcome, now),
                Wake::Outbound(cmd) => self.apply(cmd, now),
                Wake::Close => self.conn.close(now),
            }
        }
    }

    /// Drains events and output until neither produces anything new. Returns the close
    /// reason once the connection is over.
    fn settle(&mut self) -> Option<CloseReason> {
        loop {
            while !self.handlers_full() {
                let Some(event) = self.conn.poll_event() else {
                    break;
                };
                if let Some(reason) = self.on_event(event) {
                    self.pump.report(&self.conn, self.shared.handle.metrics());
                    return Some(reason);
                }
            }
            self.pump.flush(&mut self.conn);
            self.pump.report(&self.conn, self.shared.handle.metrics());
            if self.handlers_full() {
                return None;
            }
            match self.conn.poll_event() {
                Some(event) => {
                    if let Some(reason) = self.on_event(event) {
                        return Some(reason);
                    }
                }
                None => return None,
            }
        }
    }

    fn handlers_full(&self) -> bool {
        self.conn.config().max_in_flight == 0 && self.handlers.len() >= UNTRACKED_HANDLER_CAP
    }

    fn on_event(&mut self, event: Event) -> Option<CloseReason> {
        match event {
            Event::Message(req) => self.dispatch(req),
            Event::Heartbeat => {}
            Event::Writable => {
                if let Some(cmd) = self.held.take() {
                    self.apply(cmd, Instant::now());
                }
            }
            Event::Closed(reason) => return Some(reason),
        }
        None
    }

    fn dispatch(&mut self, req: Request) {
        let shared = self.shared;
        match shared.router.resolve(req.method) {
            Resolved::Route(h) | Resolved::Fallback(h) => {
                let ctx = Context {
                    id: self.id,
                    peer: Arc::clone(&self.peer),
                    method: req.method,
                    body: req.body,
                    state: Arc::clone(&shared.state),
                    server: shared.handle.clone(),
                };
                self.handlers
                    .push(handler::start(h, ctx, req.id, shared.limit.clone()));
                shared.handle.metrics().in_flight_add(1);
            }
            Resolved::Ignore => {
                shared.handle.metrics().unknown_method();
                self.complete(req.id, None, Instant::now());
            }
            Resolved::Close => {
                shared.handle.metrics().unknown_method();
                self.conn
                    .abort(CloseReason::UnknownMethod { method: req.method });
            }
        }
    }

    fn finish(&mut self, id: lynn_proto::RequestId, outcome: Outcome, now: Instant) {
        let metrics = self.shared.handle.metrics();
        metrics.in_flight_add(-1);
        let reply = match outcome {
            Outcome::Done(reply) => reply,
            Outcome::Failed(e) => {
                tracing::warn!(conn = %self.id, error = %e, "handler failed");
                metrics.handler_error();
                Reply::none()
            }
            Outcome::Panicked => {
                tracing::warn!(conn = %self.id, "handler panicked");
                metrics.handler_panic();
                Reply::none()
            }
        };
        let (to_sender, fanout) = reply.into_parts();
        self.complete(id, to_sender, now);
        for f in fanout {
            self.shared.handle.fanout(f.target, f.method, f.body);
        }
    }

    fn complete(
        &mut self,
        id: lynn_proto::RequestId,
        reply: Option<(u16, bytes::Bytes)>,
        now: Instant,
    ) {
        if self.conn.config().max_in_flight == 0 {
            // Completion tracking is off: a reply is an ordinary send.
            if let Some((method, body)) = reply
                && let Err(e) = self.conn.send(method, body, now)
            {
                tracing::debug!(conn = %self.id, error = %e, "reply not sent");
            }
            return;
        }
        if let Err(e) = self.conn.complete(id, reply, now) {
            tracing::warn!(conn = %self.id, error = %e, "reply not sent");
        }
    }

    fn apply(&mut self, cmd: Outbound, now: Instant) {
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
        if self.held.is_none()
            && let Some(rx) = &mut self.outbound
            && let Poll::Ready(item) = rx.as_mut().poll_next(cx)
        {
            match item {
                Some(cmd) => return Poll::Ready(Wake::Outbound(cmd)),
                None => self.outbound = None,
            }
        }
        for signal in [&mut self.close, &mut self.shutdown] {
            if let Some(rx) = signal
                && rx.as_mut().poll_next(cx).is_ready()
            {
                *signal = None;
                return Poll::Ready(Wake::Close);
            }
        }
        let read = !self.handlers_full();
        self.pump.poll_io(&mut self.conn, read, cx).map(Wake::Io)
    }
}
