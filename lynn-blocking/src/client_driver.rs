//! The client's driver thread: owns the socket, the [`Connection`], the pending requests and
//! the reconnect policy. It waits on one bounded channel that carries the user's commands
//! and the reader thread's bytes, with the earliest deadline of the connection's timers, the
//! request timeouts and the reconnect back-off as its timeout.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use lynn_proto::client_calls::{Answer, Call, ClientCalls, Delivery};
use lynn_proto::reconnect::{Reconnect, Step};
use lynn_proto::{ClientConfig, ClientError, CloseReason, Connection, Instant, Message};
use lynn_service::StatsReport;
use lynn_service::client_status::ClientEnd;
use lynn_service::pushes::Offer;

use crate::client::Status;
use crate::dial::dial;
use crate::io::{ReadEvent, WRITE_SLICE, spawn_reader, write_once};
use crate::stream::Stream;

/// Answers one send.
pub(crate) type Ack = SyncSender<Result<(), ClientError>>;
/// A caller waiting for the reply to its request.
pub(crate) type Waiter = SyncSender<Result<Bytes, ClientError>>;

/// A user's command.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A send or a request, decided by the core's `ClientCalls`.
    Call(Call<Ack, Waiter>),
    Close {
        ack: SyncSender<()>,
    },
    /// `recv` made room in the incoming queue.
    Wake,
    /// The last handle was dropped.
    Stop,
}

/// Everything that wakes the driver.
#[derive(Debug)]
pub(crate) enum Input {
    Cmd(Cmd),
    /// From the reader of connection number `.0` (stale numbers are ignored).
    Read(u64, ReadEvent),
}

/// Passes one answer on to its caller (who may have stopped waiting).
fn answer(a: Answer<Ack, Waiter>) {
    match a {
        Answer::Sent(ack, r) => {
            let _ = ack.send(r);
        }
        Answer::Replied(w, r) => {
            let _ = w.send(r);
        }
    }
}

/// Starts the driver on an established `stream`.
pub(crate) fn spawn(
    config: ClientConfig,
    stream: Stream,
    tx: SyncSender<Input>,
    rx: Receiver<Input>,
    status: &Arc<Status>,
) -> Result<JoinHandle<()>, ClientError> {
    let reconnect = match config.reconnect.clone() {
        Some(rc) => {
            let mut rc = Reconnect::new(rc.with_distinct_seed(lynn_service::reconnect_entropy()))
                .map_err(|e| lynn_proto::ConfigError {
                field: "reconnect",
                problem: e.to_string(),
            })?;
            let now = Instant::now();
            let _ = rc.poll(now);
            rc.handle_connected(now);
            Some(rc)
        }
        None => None,
    };
    let mut driver = Driver {
        calls: ClientCalls::new(&config),
        config,
        tx,
        rx,
        status: Arc::clone(status),
        live: None,
        reconnect,
        held: None,
        closers: Vec::new(),
        closing: false,
        generation: 0,
        last_reason: None,
    };
    driver.install(stream).map_err(ClientError::Connect)?;
    thread::Builder::new()
        .name("lynn-client".into())
        .spawn(move || driver.run())
        .map_err(ClientError::Connect)
}

/// One established connection.
struct Live {
    conn: Connection,
    stream: Stream,
    tokens: SyncSender<Vec<u8>>,
    spare: Option<Vec<u8>>,
    reader: Option<JoinHandle<()>>,
    reader_done: bool,
    report: StatsReport,
}

struct Driver {
    config: ClientConfig,
    tx: SyncSender<Input>,
    rx: Receiver<Input>,
    status: Arc<Status>,
    live: Option<Live>,
    reconnect: Option<Reconnect>,
    calls: ClientCalls<Ack, Waiter>,
    /// A push that did not fit in the incoming queue; events wait behind it.
    held: Option<Message>,
    closers: Vec<SyncSender<()>>,
    closing: bool,
    generation: u64,
    last_reason: Option<CloseReason>,
}

/// Whether the driver loop goes on.
enum Flow {
    Go,
    Finish(ClientEnd),
    Stop,
}

impl Driver {
    fn run(mut self) {
        let end = loop {
            match self.turn() {
                Flow::Go => {}
                Flow::Finish(state) => break Some(state),
                Flow::Stop => break None,
            }
        };
        if let Some(live) = self.live.take() {
            self.teardown(live);
        }
        let end = end.unwrap_or(ClientEnd::Closed(self.last_reason.clone()));
        self.status.core.end(end);
        let status = Arc::clone(&self.status);
        self.calls.finish(|| status.core.error(), &mut answer);
        self.status.pushes.close();
        for c in self.closers.drain(..) {
            let _ = c.send(());
        }
    }

    /// One loop turn: settle the connection, then wait for one input or deadline.
    fn turn(&mut self) -> Flow {
        let now = Instant::now();
        let mut deadline = if self.live.is_some() {
            if let Some(reason) = self.drive() {
                return self.lost(reason);
            }
            self.live.as_ref().and_then(|l| l.conn.poll_timeout())
        } else {
            match self.redial(now) {
                Ok(d) => d,
                Err(flow) => return flow,
            }
        };
        if let Some(live) = &mut self.live {
            let unread = self.held.is_some().then(|| self.status.pushes.len());
            self.calls
                .handle_timeout(&mut live.conn, now, unread, &mut answer);
        }
        deadline = min(deadline, self.calls.poll_timeout());
        let busy = self.live.as_ref().is_some_and(|l| l.conn.wants_write());
        let input = if busy {
            match self.rx.try_recv() {
                Ok(i) => Some(i),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        } else if let Some(d) = deadline {
            match self
                .rx
                .recv_timeout(d.saturating_duration_since(Instant::now()))
            {
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Flow::Stop,
            }
        } else {
            match self.rx.recv() {
                Ok(i) => Some(i),
                Err(_) => return Flow::Stop,
            }
        };
        let now = Instant::now();
        if let Some(live) = &mut self.live {
            live.conn.handle_timeout(now);
        }
        match input {
            Some(Input::Cmd(cmd)) => self.command(cmd, now),
            Some(Input::Read(generation, event)) => {
                self.read(generation, event, now);
                Flow::Go
            }
            None => Flow::Go,
        }
    }

    /// Drains events (while the incoming queue has room), writes, grants a read. Returns
    /// the close reason once the connection is over.
    fn drive(&mut self) -> Option<CloseReason> {
        loop {
            let reason = self.drain_events();
            let metrics = self.status.core.metrics();
            let live = self.live.as_mut()?;
            live.report.report(&live.conn, metrics);
            if let Some(reason) = reason {
                metrics.connection_closed(&reason);
                return Some(reason);
            }
            if live.conn.wants_write() {
                match write_once(&mut live.conn, &mut live.stream) {
                    Ok(0) => {}
                    // Progress may have closed the connection: drain again.
                    Ok(_) => continue,
                    Err(e) => {
                        live.conn.handle_transport_error(e.kind(), Instant::now());
                        continue;
                    }
                }
            }
            if !live.reader_done
                && live.conn.wants_read()
                && let Some(buf) = live.spare.take()
                && let Err(e) = live.tokens.try_send(buf)
            {
                live.spare = Some(match e {
                    TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
                });
            }
            return None;
        }
    }

    /// Drains events while the incoming queue has room.
    fn drain_events(&mut self) -> Option<CloseReason> {
        while self.deliver_held() {
            let live = self.live.as_mut()?;
            let event = live.conn.poll_event()?;
            let now = Instant::now();
            match self
                .calls
                .handle_event(&mut live.conn, event, now, &mut answer)
            {
                Delivery::Push(msg) => self.held = Some(msg),
                Delivery::Late => self.status.core.metrics().message_dropped(),
                Delivery::Closed(reason) => return Some(reason),
                Delivery::Nothing => {}
            }
        }
        None
    }

    /// Hands the held push to `recv`'s queue; false while it is full (backpressure).
    fn deliver_held(&mut self) -> bool {
        let Some(msg) = self.held.take() else {
            return true;
        };
        let (pushes, metrics) = (&self.status.pushes, self.status.core.metrics());
        let Offer::Full(msg, _) = pushes.offer(msg, metrics) else {
            return true;
        };
        // Ask `recv` for a wake-up, then look again in case it made room meanwhile.
        self.status.incoming_blocked.store(true, Ordering::Release);
        match pushes.offer(msg, metrics) {
            Offer::Full(msg, _) => {
                self.held = Some(msg);
                false
            }
            Offer::Queued | Offer::Dropped => true,
        }
    }

    /// Not connected: dials when the policy says so. `Ok(deadline)` to wait, `Err` to end.
    fn redial(&mut self, now: Instant) -> Result<Option<Instant>, Flow> {
        let last = ClientEnd::Closed(self.last_reason.clone());
        let Some(rc) = self.reconnect.as_mut().filter(|_| !self.closing) else {
            return Err(Flow::Finish(last));
        };
        match rc.poll(now) {
            Step::Connect => {
                match dial(&self.config) {
                    Ok(stream) => {
                        rc.handle_connected(Instant::now());
                        if let Err(e) = self.install(stream) {
                            log::debug!("reconnect failed: {e}");
                            if let Some(rc) = self.reconnect.as_mut() {
                                rc.handle_disconnected(Instant::now());
                            }
                        }
                    }
                    Err(e) => {
                        log::debug!("reconnect to {} failed: {e}", self.config.addr);
                        rc.handle_connect_failed(Instant::now());
                    }
                }
                Ok(Some(Instant::now()))
            }
            Step::Wait(at) => Ok(Some(at)),
            Step::GaveUp { attempts } => Err(Flow::Finish(ClientEnd::GaveUp(attempts))),
            Step::Stopped => Err(Flow::Finish(last)),
            Step::Connecting | Step::Connected => Ok(Some(now)),
        }
    }

    /// Starts using a new connection: its reader, then the offline queue.
    fn install(&mut self, stream: Stream) -> std::io::Result<()> {
        let now = Instant::now();
        let mut conn = Connection::new(self.config.connection.clone(), now)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        stream.set_write_timeout(Some(WRITE_SLICE))?;
        self.generation += 1;
        let generation = self.generation;
        let (tokens, token_rx) = sync_channel(1);
        let reader = spawn_reader("lynn-client-read".into(), stream.try_clone()?, token_rx, {
            let tx = self.tx.clone();
            move |e| tx.send(Input::Read(generation, e)).is_ok()
        })?;
        self.calls.connected(&mut conn, now);
        self.status.core.metrics().connection_opened();
        self.live = Some(Live {
            conn,
            stream,
            tokens,
            spare: Some(vec![0; self.config.connection.read_chunk]),
            reader: Some(reader),
            reader_done: false,
            report: StatsReport::default(),
        });
        self.status.core.set_connected(true);
        Ok(())
    }

    /// The connection ended with `reason`.
    fn lost(&mut self, reason: CloseReason) -> Flow {
        log::debug!("client connection to {} closed: {reason}", self.config.addr);
        if let Some(live) = self.live.take() {
            self.teardown(live);
        }
        self.status.core.set_connected(false);
        self.calls.disconnected(&mut answer);
        self.last_reason = Some(reason);
        if self.closing {
            return Flow::Finish(ClientEnd::Closed(self.last_reason.clone()));
        }
        if let Some(rc) = &mut self.reconnect {
            rc.handle_disconnected(Instant::now());
        }
        Flow::Go
    }

    fn teardown(&mut self, mut live: Live) {
        live.stream.shutdown();
        drop(live.tokens);
        if let Some(r) = live.reader.take() {
            let _ = r.join();
        }
    }

    fn read(&mut self, generation: u64, event: ReadEvent, now: Instant) {
        let Some(live) = self.live.as_mut().filter(|_| generation == self.generation) else {
            return;
        };
        match event {
            ReadEvent::Data(buf, n) => {
                live.conn.handle_bytes(&buf[..n], now);
                live.spare = Some(buf);
            }
            ReadEvent::Eof => {
                live.reader_done = true;
                live.conn.handle_eof(now);
            }
            ReadEvent::Failed(kind) => {
                live.reader_done = true;
                live.conn.handle_transport_error(kind, now);
            }
        }
    }

    fn command(&mut self, cmd: Cmd, now: Instant) -> Flow {
        match cmd {
            Cmd::Call(call) => {
                let conn = self.live.as_mut().map(|l| &mut l.conn);
                self.calls.call(conn, call, now, &mut answer);
            }
            Cmd::Close { ack } => {
                self.closers.push(ack);
                self.closing = true;
                if let Some(rc) = &mut self.reconnect {
                    rc.stop();
                }
                match &mut self.live {
                    Some(live) => live.conn.close(now),
                    None => return Flow::Finish(ClientEnd::Closed(self.last_reason.clone())),
                }
            }
            Cmd::Wake => {}
            Cmd::Stop => return Flow::Stop,
        }
        Flow::Go
    }
}

fn min(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
