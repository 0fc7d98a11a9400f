//! The client's background task: owns the socket, the `Connection`, the requests awaiting
//! replies and the reconnect policy.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use lynn_proto::reconnect::{Reconnect, Step};
use lynn_proto::{
    ClientConfig, ClientError, CloseReason, Connection, Event, Instant, Message, PendingRequests,
    ReplyMatch, SendError,
};
use tokio::sync::{mpsc, oneshot};

use super::{End, Shared};
use crate::stream::{self, Stream};
use crate::timer::Timer;

type ReplyTx = oneshot::Sender<Result<Bytes, ClientError>>;

/// A call from a [`Client`](super::Client) handle.
pub(crate) enum Command {
    Send {
        method: u16,
        body: Bytes,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    Request {
        method: u16,
        body: Bytes,
        reply: ReplyTx,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

/// A message kept while disconnected.
struct Queued {
    method: u16,
    body: Bytes,
    reply: Option<ReplyTx>,
}

/// How one connection ended.
enum Ended {
    /// Lost; the policy decides whether to reconnect.
    Lost(CloseReason),
    /// The user closed the client, or every handle is gone.
    Done,
}

/// One connection attempt bounded by the connect timeout.
pub(crate) async fn dial(config: &ClientConfig) -> Result<Stream, ClientError> {
    match tokio::time::timeout(
        config.connect_timeout,
        Stream::connect(&config.addr, &config.socket),
    )
    .await
    {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ClientError::Connect(e)),
        Err(_) => Err(ClientError::ConnectTimeout),
    }
}

fn send_error(e: SendError) -> ClientError {
    match e {
        SendError::Encode(e) => ClientError::Encode(e),
        SendError::QueueFull { .. } => ClientError::QueueFull,
        _ => ClientError::Disconnected,
    }
}

pub(crate) struct Worker {
    config: ClientConfig,
    reconnect: Option<Reconnect>,
    commands: mpsc::Receiver<Command>,
    incoming: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    pending: PendingRequests<ReplyTx>,
    offline: VecDeque<Queued>,
    close_waiter: Option<oneshot::Sender<()>>,
}

impl Worker {
    pub(crate) fn new(
        config: ClientConfig,
        reconnect: Option<Reconnect>,
        commands: mpsc::Receiver<Command>,
        incoming: mpsc::Sender<Message>,
        shared: Arc<Shared>,
    ) -> Self {
        let pending = PendingRequests::new(config.max_pending_requests, config.request_timeout);
        Worker {
            config,
            reconnect,
            commands,
            incoming,
            shared,
            pending,
            offline: VecDeque::new(),
            close_waiter: None,
        }
    }

    pub(crate) async fn run(mut self, first: Stream) {
        let mut next = Some(first);
        loop {
            if let Some(stream) = next.take() {
                self.shared.connected.store(true, Ordering::Release);
                let ended = self.drive(&stream).await;
                drop(stream);
                self.shared.connected.store(false, Ordering::Release);
                for waiter in self.pending.drain() {
                    let _ = waiter.send(Err(ClientError::Disconnected));
                }
                match (ended, self.reconnect.as_mut()) {
                    (Ended::Lost(reason), Some(policy)) => {
                        tracing::debug!(%reason, "connection lost; reconnecting");
                        policy.handle_disconnected(Instant::now());
                    }
                    (Ended::Lost(reason), None) => return self.end(End::Closed(Some(reason))),
                    (Ended::Done, _) => return self.end(End::Closed(None)),
                }
            }
            match self.reconnect_phase().await {
                Some(stream) => next = Some(stream),
                None => return,
            }
        }
    }

    /// The client is over: record why, fail what waits, wake a closer.
    fn end(&mut self, end: End) {
        if let Ok(mut slot) = self.shared.end.lock() {
            slot.get_or_insert(end);
        }
        for q in self.offline.drain(..) {
            if let Some(reply) = q.reply {
                let _ = reply.send(Err(self.shared.end_error()));
            }
        }
        if let Some(done) = self.close_waiter.take() {
            let _ = done.send(());
        }
    }

    /// Follows the reconnect policy while serving commands offline. Returns the new stream,
    /// or `None` when the client is over.
    async fn reconnect_phase(&mut self) -> Option<Stream> {
        loop {
            let now = Instant::now();
            let step = self.reconnect.as_mut()?.poll(now);
            let wait = match step {
                Step::Connect | Step::Connecting => None,
                Step::Wait(t) => Some(t),
                Step::Connected => return None,
                Step::GaveUp { attempts } => {
                    self.end(End::GaveUp(attempts));
                    return None;
                }
                Step::Stopped => {
                    self.end(End::Closed(None));
                    return None;
                }
            };
            if let Some(t) = wait {
                let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(t));
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        () = &mut sleep => break,
                        cmd = self.commands.recv() => if !self.offline_command(cmd) { return None },
                    }
                }
            } else {
                let config = self.config.clone();
                let dial = dial(&config);
                tokio::pin!(dial);
                let res = loop {
                    tokio::select! {
                        res = &mut dial => break res,
                        cmd = self.commands.recv() => if !self.offline_command(cmd) { return None },
                    }
                };
                let policy = self.reconnect.as_mut()?;
                match res {
                    Ok(stream) => {
                        policy.handle_connected(Instant::now());
                        return Some(stream);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reconnect attempt failed");
                        policy.handle_connect_failed(Instant::now());
                    }
                }
            }
        }
    }

    /// Handles a command while disconnected. Returns false when the client is over.
    fn offline_command(&mut self, cmd: Option<Command>) -> bool {
        let room = self.offline.len() < self.config.offline_queue;
        match cmd {
            None => {
                self.end(End::Closed(None));
                false
            }
            Some(Command::Send { method, body, done }) => {
                let res = if room {
                    self.offline.push_back(Queued {
                        method,
                        body,
                        reply: None,
                    });
                    Ok(())
                } else {
                    Err(ClientError::Disconnected)
                };
                let _ = done.send(res);
                true
            }
            Some(Command::Request {
                method,
                body,
                reply,
            }) => {
                if room {
                    let reply = Some(reply);
                    self.offline.push_back(Queued {
                        method,
                        body,
                        reply,
                    });
                } else {
                    let _ = reply.send(Err(ClientError::Disconnected));
                }
                true
            }
            Some(Command::Close { done }) => {
                self.close_waiter = Some(done);
                if let Some(p) = self.reconnect.as_mut() {
                    p.stop();
                }
                self.end(End::Closed(None));
                false
            }
        }
    }

    /// Runs one established connection until it ends.
    async fn drive(&mut self, stream: &Stream) -> Ended {
        let mut conn = match Connection::new(self.config.connection.clone(), Instant::now()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "client connection config refused");
                return Ended::Done;
            }
        };
        while let Some(q) = self.offline.pop_front() {
            match q.reply {
                Some(reply) => self.request(&mut conn, q.method, q.body, reply),
                None => {
                    if let Err(e) = conn.send(q.method, q.body, Instant::now()) {
                        tracing::debug!(error = %e, "offline message dropped");
                    }
                }
            }
        }
        let mut timer = Timer::new();
        let mut stalled: Option<Message> = None;
        let mut closing = false;
        let incoming = self.incoming.clone();
        loop {
            if let Some(reason) = self.drain(&mut conn, &mut stalled) {
                return if closing {
                    Ended::Done
                } else {
                    Ended::Lost(reason)
                };
            }
            let before = conn.pending_transmit();
            let write_blocked = stream::flush(stream, &mut conn);
            if conn.pending_transmit() != before || conn.is_closed() {
                if let Some(reason) = self.drain(&mut conn, &mut stalled) {
                    return if closing {
                        Ended::Done
                    } else {
                        Ended::Lost(reason)
                    };
                }
            }
            let deadline = [conn.poll_timeout(), self.pending.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            timer.set(deadline);

            tokio::select! {
                biased;
                permit = incoming.reserve(), if stalled.is_some() => {
                    if let (Ok(permit), Some(msg)) = (permit, stalled.take()) {
                        permit.send(msg);
                    }
                }
                cmd = self.commands.recv(), if !closing => match cmd {
                    None => return Ended::Done,
                    Some(Command::Send { method, body, done }) => {
                        let res = conn.send(method, body, Instant::now()).map_err(send_error);
                        let _ = done.send(res);
                    }
                    Some(Command::Request { method, body, reply }) => {
                        self.request(&mut conn, method, body, reply);
                    }
                    Some(Command::Close { done }) => {
                        closing = true;
                        self.close_waiter = Some(done);
                        if let Some(p) = self.reconnect.as_mut() {
                            p.stop();
                        }
                        conn.close(Instant::now());
                    }
                },
                res = stream.readable(), if conn.wants_read() => match res {
                    Ok(()) => stream::read_into(stream, &mut conn),
                    Err(e) => conn.handle_transport_error(e.kind(), Instant::now()),
                },
                res = stream.writable(), if write_blocked => {
                    if let Err(e) = res {
                        conn.handle_transport_error(e.kind(), Instant::now());
                    }
                }
                () = &mut timer, if timer.is_armed() => {
                    let now = Instant::now();
                    conn.handle_timeout(now);
                    while let Some(waiter) = self.pending.poll_expired(now) {
                        let _ = waiter.send(Err(ClientError::Timeout));
                    }
                }
            }
        }
    }

    fn request(&mut self, conn: &mut Connection, method: u16, body: Bytes, reply: ReplyTx) {
        if self.pending.len() >= self.config.max_pending_requests {
            let _ = reply.send(Err(ClientError::TooManyPending));
            return;
        }
        let now = Instant::now();
        match conn.send(method, body, now) {
            // Room was checked above, so the push cannot hand the waiter back.
            Ok(()) => {
                if let Err(reply) = self.pending.push(method, reply, now) {
                    let _ = reply.send(Err(ClientError::TooManyPending));
                }
            }
            Err(e) => {
                let _ = reply.send(Err(send_error(e)));
            }
        }
    }

    /// Drains events unless a push waits for room in the incoming queue (then the core
    /// stops reading: backpressure). Returns the close reason once the connection is over.
    fn drain(
        &mut self,
        conn: &mut Connection,
        stalled: &mut Option<Message>,
    ) -> Option<CloseReason> {
        while stalled.is_none() {
            let event = conn.poll_event()?;
            match event {
                Event::Message(req) => {
                    if conn.config().max_in_flight > 0 {
                        let _ = conn.complete(req.id, None, Instant::now());
                    }
                    match self.pending.match_reply(req.method) {
                        ReplyMatch::Waiter(w) => {
                            let _ = w.send(Ok(req.body));
                        }
                        ReplyMatch::Late => {}
                        ReplyMatch::Unmatched => {
                            let msg = Message {
                                method: req.method,
                                body: req.body,
                            };
                            if let Err(mpsc::error::TrySendError::Full(msg)) =
                                self.incoming.try_send(msg)
                            {
                                *stalled = Some(msg);
                            }
                        }
                    }
                }
                Event::Heartbeat | Event::Writable => {}
                Event::Closed(reason) => return Some(reason),
            }
        }
        None
    }
}
