//! The server's connection thread: owns the socket and the [`Connection`], and is woken by
//! one bounded channel that carries everything else (reads, outbound commands, handler
//! completions). Synchronous routes run here, in place, as bytes are decoded.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, atomic::AtomicUsize};

use lynn_proto::{
    CloseReason, Connection, ConnectionId, Event, Instant, Request, RequestId, SendError,
};
use lynn_service::StatsReport;
use lynn_service::dispatch::{self, HandlerOutcome};
use lynn_service::{Outbound, Reply};

use crate::context::{Context, Scope};
use crate::events::{Responder, ServerEvent};
use crate::io::{ReadEvent, write_once};
use crate::server::{Pooled, Route, Shared};
use crate::stream::Stream;

/// Everything that wakes a connection thread.
#[derive(Debug)]
pub(crate) enum Input {
    /// From the reader thread.
    Read(ReadEvent),
    /// From other threads (sends, broadcasts, close).
    Out(Outbound),
    /// A handler (or an event-stream responder) finished request `id`.
    Done(RequestId, HandlerOutcome),
}

/// The state one connection thread owns.
pub(crate) struct ConnTask<S> {
    pub(crate) id: ConnectionId,
    pub(crate) scope: Arc<Scope<S>>,
    pub(crate) conn: Connection,
    pub(crate) stream: Stream,
    pub(crate) rx: Receiver<Input>,
    /// Our own sender, cloned into handler jobs and responders.
    pub(crate) tx: Sender<Input>,
    /// Hands the read buffer to the reader thread (the read token).
    pub(crate) tokens: SyncSender<Vec<u8>>,
    /// The read buffer while no read is outstanding.
    pub(crate) spare: Option<Vec<u8>>,
    pub(crate) reader_done: bool,
    pub(crate) queued: Arc<AtomicUsize>,
    /// Outbound commands taken from the channel that the connection has not accepted yet
    /// (its send queue was full); still counted in `queued`, so bounded by `outbound_queue`.
    pub(crate) outq: VecDeque<Outbound>,
    pub(crate) stalled: bool,
    pub(crate) report: StatsReport,
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S: Send + Sync + 'static> ConnTask<S> {
    /// Drives the connection until it closes; returns why.
    pub(crate) fn run(mut self) -> CloseReason {
        loop {
            if let Some(reason) = self.drain_events() {
                self.flush_metrics();
                return reason;
            }
            if self.feed_outbound() {
                continue;
            }
            if self.conn.wants_write() {
                // Counted before written: a peer that sees a reply finds the message it
                // answers counted.
                self.flush_metrics();
                match write_once(&mut self.conn, &mut self.stream) {
                    Ok(0) => {}
                    Ok(_) => continue,
                    Err(e) => {
                        self.conn.handle_transport_error(e.kind(), Instant::now());
                        continue;
                    }
                }
            }
            self.flush_metrics();
            self.grant_read();
            let input = self.wait();
            if let Some(input) = input {
                self.handle_input(input);
            }
            self.conn.handle_timeout(Instant::now());
        }
    }

    /// Waits for the next input, until the next deadline. While output is queued it only
    /// peeks, so the next write attempt comes at once.
    fn wait(&mut self) -> Option<Input> {
        if self.conn.wants_write() {
            return self.rx.try_recv().ok();
        }
        match self.conn.poll_timeout() {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                self.rx.recv_timeout(wait).ok()
            }
            // We hold a sender ourselves, so this cannot disconnect.
            None => self.rx.recv().ok(),
        }
    }

    fn handle_input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Read(ReadEvent::Data(buf, n)) => {
                self.conn.receive_buffer().extend_from_slice(&buf[..n]);
                self.spare = Some(buf);
                // Synchronous routes answer here, in place, while the connection decodes.
                let (router, scope) = (&self.shared.router, &*self.scope);
                let metrics = self.shared.handle.metrics();
                self.conn.handle_received_inline(now, |msg| {
                    lynn_service::answer_inline(router, scope, metrics, msg)
                });
            }
            Input::Read(ReadEvent::Eof) => {
                self.reader_done = true;
                self.conn.handle_eof(now);
            }
            Input::Read(ReadEvent::Failed(kind)) => {
                self.reader_done = true;
                self.conn.handle_transport_error(kind, now);
            }
            Input::Out(Outbound::Close) => self.conn.close(now),
            Input::Out(out) => self.outq.push_back(out),
            Input::Done(id, outcome) => self.finish(id, outcome, now),
        }
    }

    /// Moves queued outbound commands into the connection while it accepts them. Returns
    /// whether the connection changed.
    fn feed_outbound(&mut self) -> bool {
        let mut changed = false;
        while !self.stalled
            && let Some(out) = self.outq.pop_front()
        {
            let now = Instant::now();
            let res = match &out {
                Outbound::Message { method, body } => self.conn.send(*method, body.clone(), now),
                Outbound::Encoded(bytes) => self.conn.send_encoded(bytes.clone(), now),
                Outbound::Close => {
                    self.conn.close(now);
                    Ok(())
                }
            };
            match res {
                Err(SendError::QueueFull { .. }) if !self.conn.is_closed() => {
                    self.outq.push_front(out);
                    self.stalled = true;
                }
                other => {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    changed = true;
                    if let Err(e) = other {
                        log::debug!("{}: outbound message dropped: {e}", self.id);
                    }
                }
            }
        }
        changed
    }

    /// Drains every event; returns the close reason once closed.
    fn drain_events(&mut self) -> Option<CloseReason> {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Message(req) => self.dispatch(req),
                Event::Heartbeat => {}
                Event::Writable => self.stalled = false,
                Event::Closed(reason) => return Some(reason),
            }
        }
        None
    }

    fn grant_read(&mut self) {
        if self.reader_done || !self.conn.wants_read() {
            return;
        }
        if let Some(buf) = self.spare.take()
            && let Err(e) = self.tokens.try_send(buf)
        {
            // Cannot happen (capacity 1, one buffer); keep the buffer.
            self.spare = Some(match e {
                TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
            });
        }
    }

    fn flush_metrics(&mut self) {
        self.report.report(&self.conn, self.shared.handle.metrics());
    }

    /// Completes request `id` (the reply leaves in request order) and routes its fanout.
    fn finish(&mut self, id: RequestId, outcome: HandlerOutcome, now: Instant) {
        let metrics = self.shared.handle.metrics();
        let done = dispatch::finish(&mut self.conn, id, outcome, metrics, now);
        self.after_finish(done);
    }

    /// Logs a finished request's problem and routes its fanout.
    fn after_finish(&mut self, done: dispatch::Finished) {
        if let Some(problem) = done.problem {
            log::warn!(
                "{}: request completed without its reply: {problem}",
                self.id
            );
        }
        for f in done.fanout {
            self.shared.handle.fanout(f.target, f.method, f.body);
        }
    }

    fn context(&self, req: Request) -> Context<S> {
        Context::new(Arc::clone(&self.scope), req.method, req.body)
    }

    fn dispatch(&mut self, req: Request) {
        let now = Instant::now();
        let shared = Arc::clone(&self.shared);
        let metrics = shared.handle.metrics();
        let Some((route, req)) =
            dispatch::dispatch_uncounted(&shared.router, &mut self.conn, req, metrics, now)
        else {
            return;
        };
        let id = req.id;
        let route = match route {
            Route::Async(route) => route,
            Route::Sync(f) => {
                // Earlier requests were in flight when it came: answered in turn, here.
                let outcome = lynn_service::answer_request(f, &self.scope, &req);
                let done = dispatch::finish_uncounted(&mut self.conn, id, outcome, metrics, now);
                return self.after_finish(done);
            }
        };
        // Leaves this thread: in flight until `finish`.
        metrics.in_flight_add(1);
        match (route, &shared.events) {
            (Pooled::Fn(f), _) => {
                let (f, tx) = (Arc::clone(f), self.tx.clone());
                let ctx = self.context(req);
                let job = Box::new(move || {
                    let outcome = match catch_unwind(AssertUnwindSafe(|| f(ctx))) {
                        Ok(result) => HandlerOutcome::from(result),
                        Err(_) => HandlerOutcome::Panicked,
                    };
                    // Capacity is reserved for every in-flight request: never blocks.
                    let _ = tx.send(Input::Done(id, outcome));
                });
                if self.shared.pool.submit(job).is_err() {
                    self.finish(id, HandlerOutcome::Replied(Reply::none()), now);
                }
            }
            (Pooled::Events, Some(events)) => {
                let responder = Responder {
                    tx: self.tx.clone(),
                    id,
                    done: false,
                };
                let ctx = self.context(req);
                // Blocks while the stream is full: backpressure, nothing dropped. If the
                // stream is gone, dropping the event completes the request.
                let _ = events.send(ServerEvent::Message { ctx, responder });
            }
            (Pooled::Events, None) => self.finish(id, HandlerOutcome::Replied(Reply::none()), now),
        }
    }
}
