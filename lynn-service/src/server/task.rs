//! The task that owns one accepted connection: its socket, its `Connection` and the
//! handlers of its requests, which run inside this task (no spawn per request).

mod frame;
mod lifecycle;
mod requests;

pub(crate) use self::lifecycle::run;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lynn_proto::{CloseReason, Connection, Event, Instant, RequestId, SendError, SpareBuffers};
use tracing::Span;

use self::frame::FrameHold;
use self::requests::{Deferred, Outcome, Running};
use super::App;
use super::context::Scope;
use super::handler::FutureSlots;
use super::inbox::{Inbox, Signal};
use super::io;
use crate::runtime::{Listener, Runtime, Transport};
use crate::{LazyTimer, Outbound, StatsReport};

/// The socket a listener of runtime `R` accepted.
pub(crate) type Accepted<R> = <<R as Runtime>::Listener as Listener>::Accepted;

thread_local! {
    /// The buffers the connections polled on this thread take turns using: one pair that
    /// stays in cache rather than one per connection (see [`SpareBuffers`]).
    static SPARE: RefCell<SpareBuffers> = RefCell::new(SpareBuffers::default());
}

/// Loop turns (wake-ups handled) in one poll of a connection's task before it lets the
/// worker's other tasks run.
const TURNS_PER_POLL: u32 = 64;

/// The drive loop as one future that holds the [`Task`] and the socket, so that what a
/// turn reads sits together.
struct Drive<S, R: Runtime, T> {
    task: Task<S, R>,
    stream: T,
    inbox: Arc<Inbox>,
    /// See [`connection_span`].
    span: Option<Span>,
}

impl<S: Send + Sync + 'static, R: Runtime, T: Transport> Drive<S, R, T> {
    fn new(
        app: Arc<App<S, R>>,
        scope: Arc<Scope<S>>,
        conn: Connection,
        stream: T,
        inbox: Arc<Inbox>,
    ) -> Self {
        let (now, timer) = (app.rt.now(), LazyTimer::new(app.rt.timer()));
        let task = Task {
            app,
            scope,
            conn,
            handlers: FuturesUnordered::new(),
            deferred: Deferred::default(),
            slots: FutureSlots::default(),
            now,
            batch: VecDeque::new(),
            report: StatsReport::default(),
            timer,
            closing: false,
            settled: None,
            frame: None,
        };
        Drive {
            task,
            stream,
            inbox,
            span: None,
        }
    }
}

impl<S: Send + Sync + 'static, R: Runtime, T: Transport> Future for Drive<S, R, T> {
    type Output = CloseReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<CloseReason> {
        let Drive {
            task,
            stream,
            inbox,
            span,
        } = &mut *self;
        let _entered = span.as_ref().map(Span::enter);
        task.poll_drive(cx, stream, inbox)
    }
}

/// A handler's output as it finishes: the request and how its handler ended.
type Done = (RequestId, Outcome);

/// What woke the task (see [`Task::poll_wake`]).
enum Woke {
    /// A handler in `handlers` finished (its output is handed over beside the `Woke`,
    /// which every wake-up moves: kept small).
    Handler,
    /// A close request or commands (see [`Signal`]).
    Inbox(Signal),
    /// The socket may have bytes to read.
    Read,
    /// The socket may accept bytes.
    Writable,
    /// Waiting on the socket failed.
    Failed(std::io::Error),
    /// The timer fired.
    Timer,
}

struct Task<S, R: Runtime> {
    app: Arc<App<S, R>>,
    scope: Arc<Scope<S>>,
    conn: Connection,
    handlers: FuturesUnordered<Running>,
    /// The method and arrival of each request in `handlers`.
    deferred: Deferred,
    /// Boxes of finished handler futures, reused by the next requests.
    slots: FutureSlots,
    /// The clock, read once per loop turn (after the wake-up); handlers that finish within
    /// the turn complete at this instant.
    now: Instant,
    /// Commands taken from the inbox and not applied yet. Not empty only while its front
    /// was refused by a full send queue: retried on `Event::Writable`, and no more commands
    /// are taken until it is applied.
    batch: VecDeque<Outbound>,
    report: StatsReport,
    timer: LazyTimer<R::Timer>,
    /// A close was requested: the inbox's close flag is not watched any more.
    closing: bool,
    /// `Some(write_blocked)` once events are drained, output is written (or a write would
    /// block) and the timer is set, until the next wake-up: a poll then goes straight to
    /// waiting.
    settled: Option<bool>,
    /// What this connection holds against the server's frame budget, while it receives
    /// a large frame (boxed: rare, and every idle connection would carry it).
    frame: Option<Box<FrameHold>>,
}

impl<S: Send + Sync + 'static, R: Runtime> Task<S, R> {
    /// Runs the connection until it closes: after every wake-up, drains events and
    /// finished handlers and writes everything, then waits for the next wake-up. One
    /// future for the whole connection (`poll_fn` over this), no `select!` per turn.
    fn poll_drive<T: Transport>(
        &mut self,
        cx: &mut TaskContext<'_>,
        stream: &mut T,
        inbox: &Inbox,
    ) -> Poll<CloseReason> {
        // Whether `self.now` was read after a wake-up handled in this poll (see
        // `Timer::poll_at`).
        let mut woken = false;
        let mut turns = 0;
        // A finished handler's output, from `poll_wake` to `on_wake`.
        let mut done = None;
        loop {
            let write_blocked = match self.settled {
                Some(write_blocked) => write_blocked,
                None => match self.settle(stream) {
                    Ok(write_blocked) => write_blocked,
                    Err(reason) => {
                        self.finish_metrics();
                        return Poll::Ready(reason);
                    }
                },
            };
            self.settled = Some(write_blocked);
            if turns == TURNS_PER_POLL {
                // Reads of a socket already seen readable spend no budget of tokio's (see
                // `poll_wake`): a peer that keeps sending yields to the others here.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            turns += 1;
            let woke = match self.poll_wake(cx, stream, inbox, write_blocked, woken, &mut done) {
                Poll::Ready(Woke::Inbox(Signal::Abort)) => {
                    self.finish_metrics();
                    return Poll::Ready(CloseReason::Local);
                }
                Poll::Ready(woke) => woke,
                Poll::Pending => return Poll::Pending,
            };
            self.settled = None;
            let _ = SPARE.try_with(|spare| self.conn.take_buffers(&mut spare.borrow_mut()));
            self.on_wake(woke, stream, &mut done);
            woken = true;
        }
    }

    /// Drains events and finished handlers, writes everything and sets the timer. Written
    /// bytes may make events (`Writable`, or the end of a graceful close): drains again
    /// then. Returns whether a write would block, or the close reason.
    fn settle<T: Transport>(&mut self, stream: &mut T) -> Result<bool, CloseReason> {
        let write_blocked = loop {
            if let Some(reason) = self.drain() {
                return Err(reason);
            }
            // Counted before written: a peer that sees a reply finds the message it
            // answers counted.
            self.report.report(&self.conn, self.app.metrics());
            let blocked = io::flush(stream, &mut self.conn, self.now);
            if !self.conn.has_events() {
                break blocked;
            }
        };
        // And the bytes written (the only counter `flush` moves).
        self.report.report_written(&self.conn, self.app.metrics());
        let _ = SPARE.try_with(|spare| self.conn.give_buffers(&mut spare.borrow_mut()));
        if self.conn.large_frame_bytes() < self.frame_held() {
            // A large frame completed (or the connection closed): its memory is released.
            self.resize_frame(self.conn.large_frame_bytes());
        }
        self.timer.set(self.conn.poll_timeout());
        Ok(write_blocked)
    }

    fn on_wake<T: Transport>(&mut self, woke: Woke, stream: &mut T, done: &mut Option<Done>) {
        if let Woke::Read = woke {
            // The clock is read after the read.
            return self.read(stream);
        }
        self.now = self.app.rt.now();
        match woke {
            Woke::Read => {}
            Woke::Handler => {
                if let Some(done) = done.take() {
                    self.finish(done);
                }
            }
            Woke::Inbox(Signal::Close) => {
                self.closing = true;
                self.conn.close(self.now);
            }
            // Handled by the caller.
            Woke::Inbox(Signal::Abort) => {}
            Woke::Inbox(Signal::Commands) => self.apply_batch(),
            Woke::Writable => {}
            Woke::Failed(e) => self.conn.handle_transport_error(e.kind(), self.now),
            Woke::Timer => self.conn.handle_timeout(self.now),
        }
    }

    /// Reads what the socket has and answers the messages of synchronous routes in place.
    fn read<T: Transport>(&mut self, stream: &mut T) {
        let (app, scope) = (&*self.app, &*self.scope);
        let rt = &app.rt;
        let granted = self.frame_held();
        let read = if app.sync_routes {
            // Looked up once per read, not per message.
            let (router, metrics) = (&app.router, app.metrics());
            io::read_into(stream, &mut self.conn, rt, granted, |conn, now| {
                conn.handle_received_inline(now, |msg| {
                    crate::answer_inline(router, scope, metrics, msg)
                });
            })
        } else {
            io::read_into(stream, &mut self.conn, rt, granted, |conn, now| {
                conn.handle_received(now)
            })
        };
        match read {
            Ok(now) => self.now = now,
            Err(large) => {
                self.now = rt.now();
                if self.grow_frame(large) {
                    self.read(stream);
                }
            }
        }
    }

    /// Polls what the task waits on, in this order: finished handlers, the inbox (a close
    /// request, unless closing; commands, unless some are still unapplied), the socket's
    /// read readiness (while the connection wants to read), its write readiness (while a
    /// write is blocked), and the timer. A hand-written `select!`: nothing to build per
    /// turn, and no branch future to drop.
    fn poll_wake<T: Transport>(
        &mut self,
        cx: &mut TaskContext<'_>,
        stream: &mut T,
        inbox: &Inbox,
        write_blocked: bool,
        woken: bool,
        done: &mut Option<Done>,
    ) -> Poll<Woke> {
        if !self.handlers.is_empty()
            && let Poll::Ready(Some(finished)) = self.handlers.poll_next_unpin(cx)
        {
            *done = Some(finished);
            return Poll::Ready(Woke::Handler);
        }
        let take = self.batch.is_empty();
        if let Poll::Ready(signal) = inbox.poll_next(cx, &mut self.batch, self.closing, take) {
            return Poll::Ready(Woke::Inbox(signal));
        }
        let mut starved = false;
        if let Some(hold) = &mut self.frame
            && let Some(released) = &mut hold.starved
        {
            if Pin::new(released).poll(cx).is_ready() {
                hold.starved = None;
                return Poll::Ready(Woke::Read);
            }
            starved = true;
        }
        if self.conn.wants_read() && !starved {
            // Readiness the reactor already reported is taken as it is: polling it would
            // check the same bit behind the runtime's budget (tokio's);
            // `TURNS_PER_POLL` stands in for the budget.
            if stream.read_ready() {
                return Poll::Ready(Woke::Read);
            }
            if let Poll::Ready(res) = stream.poll_read_ready(cx) {
                return Poll::Ready(res.map_or_else(Woke::Failed, |()| Woke::Read));
            }
        }
        if write_blocked && let Poll::Ready(res) = stream.poll_write_ready(cx) {
            return Poll::Ready(res.map_or_else(Woke::Failed, |()| Woke::Writable));
        }
        if self.timer.is_armed() && self.timer.poll_at(cx, woken.then_some(self.now)).is_ready() {
            return Poll::Ready(Woke::Timer);
        }
        Poll::Pending
    }

    /// Drains events and already finished handlers until neither yields anything.
    /// Returns the close reason once the connection is over. Always inlined into the
    /// loop turn, which calls it once.
    #[inline(always)]
    fn drain(&mut self) -> Option<CloseReason> {
        loop {
            let mut progressed = false;
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                match event {
                    Event::Message(req) => self.dispatch(req),
                    Event::Heartbeat => {}
                    Event::Writable => self.apply_batch(),
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

    /// Applies the taken commands in order until the send queue refuses one, which stays
    /// at the front of the batch.
    fn apply_batch(&mut self) {
        while let Some(cmd) = self.batch.pop_front() {
            if !self.apply(&cmd) {
                self.batch.push_front(cmd);
                break;
            }
        }
    }

    /// Applies one outbound command. Returns false if a full send queue refused it (it
    /// is retried on `Writable`); a command the connection cannot take any more (it is
    /// closing) is dropped.
    fn apply(&mut self, cmd: &Outbound) -> bool {
        let now = self.now;
        let res = match cmd {
            Outbound::Message { method, body } => self.conn.send(*method, body.clone(), now),
            Outbound::Encoded(frames) => self.conn.send_encoded(frames.clone(), now),
            Outbound::Close => {
                self.conn.close(now);
                Ok(())
            }
        };
        match res {
            Ok(()) => true,
            Err(SendError::QueueFull { .. }) if !self.conn.is_closed() => false,
            Err(e) => {
                self.app.metrics().message_dropped();
                tracing::debug!(id = %self.scope.id, error = %e, "outbound dropped");
                true
            }
        }
    }

    fn finish_metrics(&mut self) {
        self.resize_frame(0);
        self.report.report(&self.conn, self.app.metrics());
        let cancelled = self.handlers.len() as i64;
        if cancelled > 0 {
            self.app.metrics().in_flight_add(-cancelled);
        }
        self.handlers.clear();
        self.deferred.clear();
    }
}
