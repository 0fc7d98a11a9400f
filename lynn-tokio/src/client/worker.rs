//! The client's background task: owns the socket, the `Connection` and the reconnect
//! policy; every decision about calls (replies, offline queue, waiting for room) is the
//! core's [`ClientCalls`].

use std::sync::Arc;

use bytes::Bytes;
use lynn_proto::client_calls::{Answer, Call, ClientCalls, Delivery};
use lynn_proto::reconnect::{Reconnect, Step};
use lynn_proto::{ClientConfig, ClientError, CloseReason, Connection, Instant, Message};
use lynn_service::StatsReport;
use lynn_service::client_status::{ClientEnd, ClientStatus};
use lynn_service::pushes::{EventListener, Offer, Pushes};
use tokio::sync::{mpsc, oneshot};

use crate::stream::{self, Stream};
use crate::timer::Timer;

type Ack = oneshot::Sender<Result<(), ClientError>>;
type ReplyTx = oneshot::Sender<Result<Bytes, ClientError>>;

/// A call from a [`Client`](super::Client) handle.
pub(crate) enum Command {
    Call(Call<Ack, ReplyTx>),
    Close { done: oneshot::Sender<()> },
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

/// Passes one answer on to its caller (who may have stopped waiting).
fn answer(a: Answer<Ack, ReplyTx>) {
    match a {
        Answer::Sent(ack, r) => {
            let _ = ack.send(r);
        }
        Answer::Replied(w, r) => {
            let _ = w.send(r);
        }
    }
}

pub(crate) struct Worker {
    config: ClientConfig,
    reconnect: Option<Reconnect>,
    commands: mpsc::Receiver<Command>,
    pushes: Arc<Pushes>,
    status: Arc<ClientStatus>,
    calls: ClientCalls<Ack, ReplyTx>,
    close_waiter: Option<oneshot::Sender<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // However the task ends (even aborted): `recv` ends once the pushes are taken.
        self.pushes.close();
    }
}

impl Worker {
    pub(crate) fn new(
        config: ClientConfig,
        reconnect: Option<Reconnect>,
        commands: mpsc::Receiver<Command>,
        pushes: Arc<Pushes>,
        status: Arc<ClientStatus>,
    ) -> Self {
        Worker {
            calls: ClientCalls::new(&config),
            config,
            reconnect,
            commands,
            pushes,
            status,
            close_waiter: None,
        }
    }

    pub(crate) async fn run(mut self, first: Stream) {
        let mut next = Some(first);
        loop {
            if let Some(stream) = next.take() {
                self.status.set_connected(true);
                let ended = self.drive(&stream).await;
                drop(stream);
                self.status.set_connected(false);
                self.calls.disconnected(&mut answer);
                match (ended, self.reconnect.as_mut()) {
                    (Ended::Lost(reason), Some(policy)) => {
                        tracing::debug!(%reason, "connection lost; reconnecting");
                        policy.handle_disconnected(Instant::now());
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
            let _ = done.send(());
        }
    }

    /// Follows the reconnect policy while serving calls offline. Returns the new stream,
    /// or `None` when the client is over.
    async fn reconnect_phase(&mut self) -> Option<Stream> {
        loop {
            let step = self.reconnect.as_mut()?.poll(Instant::now());
            match step {
                Step::Connect | Step::Connecting => {}
                Step::Wait(t) => {
                    let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(t));
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            () = &mut sleep => break,
                            cmd = self.commands.recv() => if !self.offline_command(cmd) { return None },
                        }
                    }
                    continue;
                }
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

    /// Handles a command while disconnected. Returns false when the client is over.
    fn offline_command(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Call(call)) => {
                self.calls.call(None, call, Instant::now(), &mut answer);
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
    async fn drive(&mut self, stream: &Stream) -> Ended {
        let mut conn = match Connection::new(self.config.connection.clone(), Instant::now()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "client connection config refused");
                return Ended::Done;
            }
        };
        let metrics = Arc::clone(&self.status);
        let metrics = metrics.metrics();
        metrics.connection_opened();
        self.calls.connected(&mut conn, Instant::now());
        let mut report = StatsReport::default();
        let mut timer = Timer::new();
        let mut stalled: Option<(Message, EventListener)> = None;
        let mut closing = false;
        loop {
            let settled = self.settle(&mut conn, &mut stalled, stream);
            report.report(&conn, metrics);
            let write_blocked = match settled {
                Ok(blocked) => blocked,
                Err(reason) => {
                    metrics.connection_closed(&reason);
                    return if closing {
                        Ended::Done
                    } else {
                        Ended::Lost(reason)
                    };
                }
            };
            let deadline = [conn.poll_timeout(), self.calls.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            timer.set(deadline);
            tokio::select! {
                biased;
                () = async { (&mut stalled.as_mut().expect("guarded").1).await }, if stalled.is_some() => {
                    let (msg, _) = stalled.take().expect("guarded");
                    stalled = self.offer(msg);
                }
                cmd = self.commands.recv(), if !closing && self.calls.wants_calls() => match cmd {
                    None => return Ended::Done,
                    Some(Command::Call(call)) => {
                        self.calls.call(Some(&mut conn), call, Instant::now(), &mut answer);
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
                    Ok(()) => {
                        stream::read_into(stream, &mut conn);
                    }
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
                    let unread = stalled.is_some().then(|| self.pushes.len());
                    self.calls.handle_timeout(&mut conn, now, unread, &mut answer);
                }
            }
        }
    }

    /// After any change: drains events, writes what the socket takes, drains again if the
    /// write changed anything. `Ok(true)` when output waits for writability; `Err` once
    /// the connection is over.
    fn settle(
        &mut self,
        conn: &mut Connection,
        stalled: &mut Option<(Message, EventListener)>,
        stream: &Stream,
    ) -> Result<bool, CloseReason> {
        if let Some(reason) = self.drain(conn, stalled) {
            return Err(reason);
        }
        let before = conn.pending_transmit();
        let blocked = stream::flush(stream, conn, Instant::now());
        if (conn.pending_transmit() != before || conn.is_closed())
            && let Some(reason) = self.drain(conn, stalled)
        {
            return Err(reason);
        }
        Ok(blocked)
    }

    /// Drains events unless a push waits for room in the incoming queue (then the core
    /// stops reading: backpressure). Returns the close reason once the connection is over.
    fn drain(
        &mut self,
        conn: &mut Connection,
        stalled: &mut Option<(Message, EventListener)>,
    ) -> Option<CloseReason> {
        while stalled.is_none() {
            let event = conn.poll_event()?;
            match self
                .calls
                .handle_event(conn, event, Instant::now(), &mut answer)
            {
                Delivery::Push(msg) => *stalled = self.offer(msg),
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
}
