//! The client's background task, for any [`Runtime`]: owns the stream, the `Connection` and
//! the reconnect policy. Every decision about calls (replies, offline queue, waiting for
//! room, timeouts) is the core's [`ClientCalls`]; every push goes through [`Pushes`].

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::Receiver;
use bytes::Bytes;
use futures_util::Stream as _;
use lynn_proto::client_calls::{Answer, Call, ClientCalls, Delivery};
use lynn_proto::reconnect::{Reconnect, Step};
use lynn_proto::{ClientConfig, ClientError, CloseReason, Connection, Message};

use super::dial::Dial;
use super::io;
use crate::StatsReport;
use crate::client_status::{ClientEnd, ClientStatus};
use crate::lazy_timer::LazyTimer;
use crate::pushes::{EventListener, Offer, Pushes};
use crate::runtime::{Runtime, Timer};

/// Answers a send.
pub(crate) type Ack = async_channel::Sender<Result<(), ClientError>>;
/// Answers a request.
pub(crate) type ReplyTx = async_channel::Sender<Result<Bytes, ClientError>>;

/// A call from a [`Client`](super::Client) handle.
pub(crate) enum Command {
    Call(Call<Ack, ReplyTx>),
    Close { done: async_channel::Sender<()> },
}

/// How one connection ended.
enum Ended {
    /// Lost; the policy decides whether to reconnect.
    Lost(CloseReason),
    /// The user closed the client, or every handle is gone.
    Done,
}

/// Passes one answer on to its caller (who may have stopped waiting).
fn answer(a: Answer<Ack, ReplyTx>) {
    match a {
        Answer::Sent(ack, r) => {
            let _ = ack.try_send(r);
        }
        Answer::Replied(w, r) => {
            let _ = w.try_send(r);
        }
    }
}

/// What woke the loop while disconnected.
enum Offline<S> {
    Command(Option<Command>),
    Elapsed,
    Dialled(Result<S, ClientError>),
}

/// The client's task, dialling with `D` (plain or TLS).
pub(crate) struct Session<R: Runtime, D> {
    rt: R,
    dialer: D,
    config: ClientConfig,
    reconnect: Option<Reconnect>,
    /// Boxed: the receiver is not `Unpin` (it keeps a listener while it waits).
    commands: Pin<Box<Receiver<Command>>>,
    pushes: Arc<Pushes>,
    status: Arc<ClientStatus>,
    calls: ClientCalls<Ack, ReplyTx>,
    close_waiter: Option<async_channel::Sender<()>>,
}

impl<R: Runtime, D> Drop for Session<R, D> {
    fn drop(&mut self) {
        // However the task ends: `recv` ends once the pushes are taken.
        self.pushes.close();
    }
}

impl<R: Runtime, D: Dial<R>> Session<R, D> {
    pub(crate) fn new(
        rt: R,
        dialer: D,
        config: ClientConfig,
        reconnect: Option<Reconnect>,
        commands: Receiver<Command>,
        pushes: Arc<Pushes>,
        status: Arc<ClientStatus>,
    ) -> Self {
        Session {
            calls: ClientCalls::new(&config),
            rt,
            dialer,
            config,
            reconnect,
            commands: Box::pin(commands),
            pushes,
            status,
            close_waiter: None,
        }
    }

    pub(crate) async fn run(mut self, first: D::Stream) {
        let mut next = Some(first);
        loop {
            if let Some(stream) = next.take() {
                self.status.set_connected(true);
                let ended = self.drive(stream).await;
                self.status.set_connected(false);
                self.calls.disconnected(&mut answer);
                match (ended, self.reconnect.as_mut()) {
                    (Ended::Lost(reason), Some(policy)) => {
                        tracing::debug!(%reason, "connection lost; reconnecting");
                        if reason == CloseReason::CorrelationLost {
                            // Given up by the client, not failed: no flapping to back off.
                            policy.handle_replaced(self.rt.now());
                        } else {
                            policy.handle_disconnected(self.rt.now());
                        }
                    }
                    (Ended::Lost(reason), None) => {
                        return self.end(ClientEnd::Closed(Some(reason)));
                    }
                    (Ended::Done, _) => return self.end(ClientEnd::Closed(None)),
                }
            }
            match self.reconnect_phase().await {
                Some(stream) => next = Some(stream),
                None => return,
            }
        }
    }

    /// The client is over: record why, fail what waits, wake a closer.
    fn end(&mut self, end: ClientEnd) {
        self.status.end(end);
        let status = self.status.clone();
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            if let Command::Call(call) = cmd {
                answer(call.fail(status.error()));
            }
        }
        self.calls.finish(|| status.error(), &mut answer);
        if let Some(done) = self.close_waiter.take() {
            let _ = done.try_send(());
        }
    }

    /// Follows the reconnect policy while serving calls offline. Returns the new stream,
    /// or `None` when the client is over.
    async fn reconnect_phase(&mut self) -> Option<D::Stream> {
        loop {
            let step = self.reconnect.as_mut()?.poll(self.rt.now());
            let mut dialling = None;
            let mut timer = self.rt.timer();
            match step {
                Step::Connect | Step::Connecting => {
                    dialling = Some(Box::pin(self.dialer.dial(&self.rt, &self.config)));
                }
                Step::Wait(t) => timer.reset(t),
                Step::Connected => return None,
                Step::GaveUp { attempts } => {
                    self.end(ClientEnd::GaveUp(attempts));
                    return None;
                }
                Step::Stopped => {
                    self.end(ClientEnd::Closed(None));
                    return None;
                }
            }
            loop {
                let woke = poll_fn(|cx| {
                    if let Poll::Ready(cmd) = self.commands.as_mut().poll_next(cx) {
                        return Poll::Ready(Offline::Command(cmd));
                    }
                    match dialling.as_mut() {
                        Some(d) => d.as_mut().poll(cx).map(Offline::Dialled),
                        None => timer.poll_elapsed(cx).map(|()| Offline::Elapsed),
                    }
                })
                .await;
                match woke {
                    Offline::Command(cmd) => {
                        if !self.offline_command(cmd) {
                            return None;
                        }
                    }
                    Offline::Elapsed => break,
                    Offline::Dialled(res) => {
                        let now = self.rt.now();
                        let policy = self.reconnect.as_mut()?;
                        match res {
                            Ok(stream) => {
                                policy.handle_connected(now);
                                return Some(stream);
                            }
                            Err(e) => {
                                self.status.metrics().connection_failed();
                                tracing::debug!(error = %e, "reconnect attempt failed");
                                policy.handle_connect_failed(now);
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Handles a command while disconnected. Returns false when the client is over.
    fn offline_command(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Call(call)) => {
                self.calls.call(None, call, self.rt.now(), &mut answer);
                true
            }
            Some(Command::Close { done }) => {
                self.close_waiter = Some(done);
                if let Some(p) = self.reconnect.as_mut() {
                    p.stop();
                }
                self.end(ClientEnd::Closed(None));
                false
            }
            None => {
                self.end(ClientEnd::Closed(None));
                false
            }
        }
    }

    /// Runs one established connection until it ends.
    async fn drive(&mut self, mut stream: D::Stream) -> Ended {
        let mut conn = match Connection::new(self.config.connection.clone(), self.rt.now()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "client connection config refused");
                return Ended::Done;
            }
        };
        let status = Arc::clone(&self.status);
        let metrics = status.metrics();
        metrics.connection_opened();
        self.calls.connected(&mut conn, self.rt.now());
        let mut turn = Turn {
            timer: LazyTimer::new(self.rt.timer()),
            stalled: None,
            closing: false,
            done: false,
        };
        let mut report = StatsReport::default();
        loop {
            let closed = self.drain(&mut conn, &mut turn);
            report.report(&conn, metrics);
            if let Some(reason) = closed {
                metrics.connection_closed(&reason);
                return if turn.closing {
                    Ended::Done
                } else {
                    Ended::Lost(reason)
                };
            }
            if turn.done {
                return Ended::Done;
            }
            poll_fn(|cx| self.poll_turn(cx, &mut stream, &mut conn, &mut turn)).await;
        }
    }

    /// Drains events unless a push waits for room in `recv`'s queue (under
    /// `PushFull::Wait`; the core then stops reading). Returns the close reason once the
    /// connection is over.
    fn drain(&mut self, conn: &mut Connection, turn: &mut Turn<R::Timer>) -> Option<CloseReason> {
        while turn.stalled.is_none() {
            let event = conn.poll_event()?;
            match self
                .calls
                .handle_event(conn, event, self.rt.now(), &mut answer)
            {
                Delivery::Push(msg) => turn.stalled = self.offer(msg),
                Delivery::Late => self.status.metrics().message_dropped(),
                Delivery::Closed(reason) => return Some(reason),
                Delivery::Nothing => {}
            }
        }
        None
    }

    /// Offers a push to `recv`'s queue; gives it back with a wake-up for when there may be
    /// room, under `PushFull::Wait`.
    fn offer(&self, msg: Message) -> Option<(Message, EventListener)> {
        match self.pushes.offer(msg, self.status.metrics()) {
            Offer::Full(msg, room) => Some((msg, room)),
            Offer::Queued | Offer::Dropped => None,
        }
    }

    /// One turn: writes, reads, takes a call, fires timers and offers a held push, each as
    /// far as it can go now. Ready when anything changed (events may wait); pending, with
    /// every source registered for a wake-up, when nothing did.
    fn poll_turn(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut D::Stream,
        conn: &mut Connection,
        turn: &mut Turn<R::Timer>,
    ) -> Poll<()> {
        let now = self.rt.now();
        let mut changed = io::poll_flush(stream, conn, cx, now);
        if let Some((_, room)) = &mut turn.stalled
            && Pin::new(room).poll(cx).is_ready()
        {
            let (msg, _) = turn.stalled.take().expect("stalled");
            turn.stalled = self.offer(msg);
            changed = true;
        }
        if !turn.closing && self.calls.wants_calls() {
            match self.commands.as_mut().poll_next(cx) {
                Poll::Ready(Some(Command::Call(call))) => {
                    self.calls.call(Some(conn), call, now, &mut answer);
                    changed = true;
                }
                Poll::Ready(Some(Command::Close { done })) => {
                    turn.closing = true;
                    self.close_waiter = Some(done);
                    if let Some(p) = self.reconnect.as_mut() {
                        p.stop();
                    }
                    conn.close(now);
                    changed = true;
                }
                Poll::Ready(None) => {
                    turn.done = true;
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }
        }
        if conn.wants_read() {
            changed |= io::poll_read_into(stream, conn, cx, &self.rt);
        }
        let deadline = [conn.poll_timeout(), self.calls.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        if let Some(deadline) = deadline {
            turn.timer.set(Some(deadline));
            if deadline <= now || turn.timer.poll_at(cx, None).is_ready() {
                let now = self.rt.now();
                conn.handle_timeout(now);
                let unread = turn.stalled.is_some().then(|| self.pushes.len());
                self.calls.handle_timeout(conn, now, unread, &mut answer);
                changed = true;
            }
        }
        if changed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The state of one connection's loop besides the connection.
struct Turn<T> {
    timer: LazyTimer<T>,
    /// A push `recv`'s full queue refused, and a wake-up for when there may be room.
    stalled: Option<(Message, EventListener)>,
    /// The user asked to close: the connection drains, then the client ends.
    closing: bool,
    /// Every handle is gone.
    done: bool,
}
