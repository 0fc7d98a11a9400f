//! One connection of a client, from connect to close: commands in, replies matched,
//! pushes delivered (with backpressure), heartbeats and timeouts from the core.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::{Stream as _, future};
use lynn_proto::{
    ClientConfig, ClientError, CloseReason, Connection, Event, Instant, Message, Metrics,
    PendingRequests, ReplyMatch, SendError,
};

use crate::command::{Ack, Command};
use crate::pump::{IoWake, Pump};
use crate::stream::Stream;

pub(crate) type Rx<T> = Pin<Box<async_channel::Receiver<T>>>;

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
    Delivered,
}

/// The state one session borrows from the client task.
pub(crate) struct Session<'a> {
    pub(crate) conn: Connection,
    pub(crate) pump: Pump,
    pub(crate) cmds: &'a mut Rx<Command>,
    pub(crate) incoming: &'a async_channel::Sender<Message>,
    pub(crate) pending: &'a mut PendingRequests<Ack<Bytes>>,
    pub(crate) metrics: &'a Metrics,
    max_pending: usize,
    held: Option<Command>,
    stalled: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    closing: Option<Option<async_channel::Sender<()>>>,
}

impl<'a> Session<'a> {
    /// A session over a fresh `stream`; messages queued while offline go first.
    pub(crate) fn new(
        config: &ClientConfig,
        stream: Stream,
        cmds: &'a mut Rx<Command>,
        incoming: &'a async_channel::Sender<Message>,
        pending: &'a mut PendingRequests<Ack<Bytes>>,
        metrics: &'a Metrics,
        offline: &mut VecDeque<(u16, Bytes)>,
    ) -> Result<Self, lynn_proto::ConfigError> {
        let now = Instant::now();
        let mut conn = Connection::new(config.connection.clone(), now)?;
        for (method, body) in offline.drain(..) {
            if let Err(e) = conn.send(method, body, now) {
                tracing::debug!(error = %e, "offline message dropped");
            }
        }
        metrics.connection_opened();
        Ok(Session {
            conn,
            pump: Pump::new(stream),
            cmds,
            incoming,
            pending,
            metrics,
            max_pending: config.max_pending_requests,
            held: None,
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
            let deadline = match (self.conn.poll_timeout(), self.pending.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.pump.arm(deadline);
            if self.pump.should_yield() {
                future::yield_now().await;
            }
            let wake = future::poll_fn(|cx| self.poll_wake(cx)).await;
            let now = Instant::now();
            match wake {
                Wake::Io(io) => self.pump.on_wake(io, &mut self.conn),
                Wake::Command(cmd) => self.apply(cmd, now),
                Wake::CommandsGone => self.close(None, now),
                Wake::Delivered => self.stalled = None,
            }
            if self.pending.poll_timeout().is_some_and(|t| t <= now) {
                while let Some(waiter) = self.pending.poll_expired(now) {
                    let _ = waiter.try_send(Err(ClientError::Timeout));
                }
            }
        };
        self.pump.stream().shutdown_write();
        end
    }

    fn close(&mut self, ack: Option<async_channel::Sender<()>>, now: Instant) {
        self.closing = Some(ack);
        self.conn.close(now);
    }

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
            self.pump.flush(&mut self.conn);
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
        match event {
            Event::Message(req) => {
                if self.conn.config().max_in_flight > 0 {
                    let _ = self.conn.complete(req.id, None, Instant::now());
                }
                match self.pending.match_reply(req.method) {
                    ReplyMatch::Waiter(waiter) => {
                        let _ = waiter.try_send(Ok(req.body));
                    }
                    ReplyMatch::Late => {}
                    ReplyMatch::Unmatched => self.deliver(Message {
                        method: req.method,
                        body: req.body,
                    }),
                }
            }
            Event::Heartbeat => {}
            Event::Writable => {
                if let Some(cmd) = self.held.take() {
                    self.apply(cmd, Instant::now());
                }
            }
            Event::Closed(reason) => {
                self.metrics.connection_closed(&reason);
                return Some(match self.closing.take() {
                    Some(ack) => SessionEnd::Closed(ack),
                    None => SessionEnd::Lost(reason),
                });
            }
        }
        None
    }

    /// Hands a push to `recv`; when its queue is full, stops draining events until there is
    /// room (the core then stops reading: backpressure, nothing dropped).
    fn deliver(&mut self, msg: Message) {
        match self.incoming.try_send(msg) {
            Ok(()) | Err(async_channel::TrySendError::Closed(_)) => {}
            Err(async_channel::TrySendError::Full(msg)) => {
                let tx = self.incoming.clone();
                self.stalled = Some(Box::pin(async move {
                    let _ = tx.send(msg).await;
                }));
            }
        }
    }

    fn apply(&mut self, cmd: Command, now: Instant) {
        let (method, body) = match &cmd {
            Command::Send { method, body, .. } | Command::Request { method, body, .. } => {
                (*method, body.clone())
            }
            Command::Close { .. } => {
                if let Command::Close { done } = cmd {
                    self.close(Some(done), now);
                }
                return;
            }
        };
        if let Command::Request { reply, .. } = &cmd
            && self.pending.len() >= self.max_pending
        {
            let _ = reply.try_send(Err(ClientError::TooManyPending));
            return;
        }
        let result = self.conn.send(method, body, now);
        if let Err(SendError::QueueFull { .. }) = result {
            self.held = Some(cmd);
            return;
        }
        let error = |e: SendError| match e {
            SendError::Encode(e) => ClientError::Encode(e),
            _ => ClientError::Disconnected,
        };
        match cmd {
            Command::Send { ack, .. } => {
                let _ = ack.try_send(result.map_err(error));
            }
            Command::Request { method, reply, .. } => match result {
                Ok(()) => {
                    if let Err(reply) = self.pending.push(method, reply, now) {
                        let _ = reply.try_send(Err(ClientError::TooManyPending));
                    }
                }
                Err(e) => {
                    let _ = reply.try_send(Err(error(e)));
                }
            },
            Command::Close { .. } => {}
        }
    }

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if let Some(send) = &mut self.stalled
            && send.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Wake::Delivered);
        }
        if self.held.is_none()
            && self.closing.is_none()
            && let Poll::Ready(item) = self.cmds.as_mut().poll_next(cx)
        {
            return Poll::Ready(item.map_or(Wake::CommandsGone, Wake::Command));
        }
        self.pump.poll_io(&mut self.conn, true, cx).map(Wake::Io)
    }
}
