//! The server's connection thread: owns the socket and the [`Connection`], and is woken by
//! one bounded channel that carries everything else (reads, outbound commands, handler
//! completions).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, atomic::AtomicUsize};

use bytes::Bytes;
use lynn_proto::router::Resolved;
use lynn_proto::{
    CloseReason, Connection, ConnectionId, ConnectionStats, Event, Instant, Outbound, PeerAddr,
    Reply, Request, RequestId, SendError,
};

use crate::context::Context;
use crate::events::{Responder, ServerEvent};
use crate::handle::ServerHandle;
use crate::io::{ReadEvent, write_once};
use crate::server::{Route, Shared};
use crate::stream::Stream;

/// Everything that wakes a connection thread.
#[derive(Debug)]
pub(crate) enum Input {
    /// From the reader thread.
    Read(ReadEvent),
    /// From other threads (sends, broadcasts, close).
    Out(Outbound),
    /// A handler finished request `id`, maybe with a reply to the sender.
    Done(RequestId, Option<(u16, Bytes)>),
}

/// Routes a reply's fanout part; returns the part for the sender.
pub(crate) fn deliver(server: &ServerHandle, reply: Reply) -> Option<(u16, Bytes)> {
    let (to_sender, fanout) = reply.into_parts();
    for f in fanout {
        server.fanout(f.target, f.method, f.body);
    }
    to_sender
}

/// The state one connection thread owns.
pub(crate) struct ConnTask<S> {
    pub(crate) id: ConnectionId,
    pub(crate) peer: PeerAddr,
    pub(crate) conn: Connection,
    pub(crate) stream: Stream,
    pub(crate) rx: Receiver<Input>,
    /// Our own sender, cloned into handler jobs and responders.
    pub(crate) tx: SyncSender<Input>,
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
    pub(crate) seen: ConnectionStats,
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
                self.conn.handle_bytes(&buf[..n], now);
                self.spare = Some(buf);
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
            Input::Done(id, reply) => {
                if let Err(e) = self.conn.complete(id, reply, now) {
                    log::warn!("{}: reply dropped: {e}", self.id);
                }
            }
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
        let stats = *self.conn.stats();
        if stats != self.seen {
            self.shared
                .handle
                .metrics()
                .add(&stats.delta_since(&self.seen));
            self.seen = stats;
        }
    }

    fn context(&self, req: Request) -> Context<S> {
        Context {
            id: self.id,
            peer: self.peer.clone(),
            method: req.method,
            body: req.body,
            state: Arc::clone(&self.shared.state),
            server: self.shared.handle.clone(),
        }
    }

    fn dispatch(&mut self, req: Request) {
        let now = Instant::now();
        let metrics = Arc::clone(self.shared.handle.metrics());
        match self.shared.router.resolve(req.method) {
            Resolved::Route(Route::Fn(f)) | Resolved::Fallback(Route::Fn(f)) => {
                let f = Arc::clone(f);
                let (id, tx) = (req.id, self.tx.clone());
                let ctx = self.context(req);
                metrics.in_flight_add(1);
                let job = Box::new(move || {
                    let server = ctx.server.clone();
                    let reply = match catch_unwind(AssertUnwindSafe(|| f(ctx))) {
                        Ok(Ok(reply)) => deliver(&server, reply),
                        Ok(Err(e)) => {
                            log::warn!("{e}");
                            metrics.handler_error();
                            None
                        }
                        Err(_) => {
                            log::warn!("handler panicked; request completed without reply");
                            metrics.handler_panic();
                            None
                        }
                    };
                    metrics.in_flight_add(-1);
                    // Capacity is reserved for every in-flight request: never blocks.
                    let _ = tx.send(Input::Done(id, reply));
                });
                if self.shared.pool.submit(job).is_err() {
                    let _ = self.conn.complete(id, None, now);
                }
            }
            Resolved::Route(Route::Events) | Resolved::Fallback(Route::Events) => {
                let Some(events) = &self.shared.events else {
                    let _ = self.conn.complete(req.id, None, now);
                    return;
                };
                metrics.in_flight_add(1);
                let responder = Responder {
                    tx: self.tx.clone(),
                    id: req.id,
                    server: self.shared.handle.clone(),
                    done: false,
                };
                let ctx = self.context(req);
                // Blocks while the stream is full: backpressure, nothing dropped. If the
                // stream is gone, dropping the event completes the request.
                let _ = events.send(ServerEvent::Message { ctx, responder });
            }
            Resolved::Ignore => {
                metrics.unknown_method();
                let _ = self.conn.complete(req.id, None, now);
            }
            Resolved::Close => {
                metrics.unknown_method();
                self.conn
                    .abort(CloseReason::UnknownMethod { method: req.method });
            }
        }
    }
}
