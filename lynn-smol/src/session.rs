//! One connection of a client, from connect to close: calls in, replies matched and
//! pushes delivered (with backpressure) by the core's `ClientCalls`, heartbeats and
//! timeouts from the core.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::{Stream as _, future};
use lynn_proto::client_calls::{ClientCalls, Delivery};
use lynn_proto::{ClientConfig, CloseReason, Connection, Event, Instant, Message};
use lynn_service::Metrics;
use lynn_service::pushes::{EventListener, Offer, Pushes};

use crate::command::{Ack, Command, answer};
use crate::pump::{IoWake, Pump};
use crate::stream::Stream;

pub(crate) type Rx<T> = Pin<Box<async_channel::Receiver<T>>>;

/// The client's calls, kept across sessions.
pub(crate) type Calls = ClientCalls<Ack<()>, Ack<Bytes>>;

/// How a session ended.
pub(crate) enum SessionEnd {
    /// The connection was lost (or failed); reconnecting may follow.
    Lost(CloseReason),
    /// The user closed the client (with the ack to send when done), or every handle is gone.
    Closed(Option<async_channel::Sender<()>>),
}

enum Wake {
    Io(IoWake),
    Command(Command),
    CommandsGone,
    Room,
}

/// The state one session borrows from the client task.
pub(crate) struct Session<'a> {
    conn: Connection,
    pump: Pump,
    cmds: &'a mut Rx<Command>,
    pushes: &'a Pushes,
    calls: &'a mut Calls,
    metrics: &'a Metrics,
    /// A push `recv`'s full queue refused (`PushFull::Wait`), and a wake-up for when
    /// `recv` makes room: events wait behind it.
    stalled: Option<(Message, EventListener)>,
    closing: Option<Option<async_channel::Sender<()>>>,
}

impl<'a> Session<'a> {
    /// A session over a fresh `stream`; calls kept while offline go first.
    pub(crate) fn new(
        config: &ClientConfig,
        stream: Stream,
        cmds: &'a mut Rx<Command>,
        pushes: &'a Pushes,
        calls: &'a mut Calls,
        metrics: &'a Metrics,
    ) -> Result<Self, lynn_proto::ConfigError> {
        let now = Instant::now();
        let mut conn = Connection::new(config.connection.clone(), now)?;
        calls.connected(&mut conn, now);
        metrics.connection_opened();
        Ok(Session {
            conn,
            pump: Pump::new(stream),
            cmds,
            pushes,
            calls,
            metrics,
            stalled: None,
            closing: None,
        })
    }

    /// Runs until the connection ends.
    pub(crate) async fn run(mut self) -> SessionEnd {
        let end = loop {
            if let Some(end) = self.settle() {
                break end;
            }
            let deadline = [self.conn.poll_timeout(), self.calls.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            self.pump.arm(deadline);
            if self.pump.should_yield() {
                future::yield_now().await;
            }
            let wake = future::poll_fn(|cx| self.poll_wake(cx)).await;
            let now = Instant::now();
            match wake {
                Wake::Io(io) => {
                    self.pump.on_wake(io, &mut self.conn);
                }
                Wake::Command(Command::Call(call)) => {
                    self.calls
                        .call(Some(&mut self.conn), call, now, &mut answer);
                }
                Wake::Command(Command::Close { done }) => self.close(Some(done), now),
                Wake::CommandsGone => self.close(None, now),
                Wake::Room => {
                    if let Some((msg, _)) = self.stalled.take() {
                        self.deliver(msg);
                    }
                }
            }
            if self.calls.poll_timeout().is_some_and(|t| t <= now) {
                let unread = self.stalled.is_some().then(|| self.pushes.len());
                self.calls
                    .handle_timeout(&mut self.conn, now, unread, &mut answer);
            }
        };
        self.pump.stream().shutdown_write();
        end
    }

    fn close(&mut self, ack: Option<async_channel::Sender<()>>, now: Instant) {
        self.closing = Some(ack);
        self.conn.close(now);
    }

    /// Drains events (while pushes find room) and output until neither produces anything.
    fn settle(&mut self) -> Option<SessionEnd> {
        loop {
            while self.stalled.is_none() {
                let Some(event) = self.conn.poll_event() else {
                    break;
                };
                if let Some(end) = self.on_event(event) {
                    self.pump.report(&self.conn, self.metrics);
                    return Some(end);
                }
            }
            self.pump.flush(&mut self.conn, Instant::now());
            self.pump.report(&self.conn, self.metrics);
            if self.stalled.is_some() {
                return None;
            }
            let event = self.conn.poll_event()?;
            if let Some(end) = self.on_event(event) {
                return Some(end);
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Option<SessionEnd> {
        match self
            .calls
            .handle_event(&mut self.conn, event, Instant::now(), &mut answer)
        {
            Delivery::Push(msg) => self.deliver(msg),
            Delivery::Late => self.metrics.message_dropped(),
            Delivery::Closed(reason) => {
                self.metrics.connection_closed(&reason);
                return Some(match self.closing.take() {
                    Some(ack) => SessionEnd::Closed(ack),
                    None => SessionEnd::Lost(reason),
                });
            }
            Delivery::Nothing => {}
        }
        None
    }

    /// Hands a push to `recv`'s queue under the `PushFull` policy; under `Wait`, a full
    /// queue stops the draining of events until there is room (the core then stops
    /// reading: backpressure, nothing dropped).
    fn deliver(&mut self, msg: Message) {
        if let Offer::Full(msg, room) = self.pushes.offer(msg, self.metrics) {
            self.stalled = Some((msg, room));
        }
    }

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if let Some((_, room)) = &mut self.stalled
            && Pin::new(room).poll(cx).is_ready()
        {
            return Poll::Ready(Wake::Room);
        }
        if self.closing.is_none()
            && self.calls.wants_calls()
            && let Poll::Ready(item) = self.cmds.as_mut().poll_next(cx)
        {
            return Poll::Ready(item.map_or(Wake::CommandsGone, Wake::Command));
        }
        self.pump.poll_io(&mut self.conn, true, cx).map(Wake::Io)
    }
}
