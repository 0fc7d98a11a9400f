//! An echo server on one thread and one mio event loop (edge-triggered epoll on Linux),
//! driving lynn-proto's `Admission`, `Connection` and `Router` by hand: no runtime crate.
//!
//! One `Poll` serves the listener and every connection. Each turn of the loop:
//!
//! 1. waits for readiness, at most until the earliest connection deadline;
//! 2. reads the clock once: every call in this turn gets that `now`;
//! 3. drives each ready connection: read until drained while `wants_read()`, hand the
//!    events to the handlers the `Router` resolves, write until `WouldBlock`, repeat while
//!    input can still be taken (a bounded number of rounds, then the connection waits in a
//!    ready list so that one busy peer cannot starve the others);
//! 4. accepts new connections until `WouldBlock`, each one through `Admission`;
//! 5. runs the timers that are due (`handle_timeout(now)`), earliest first, from a heap.
//!
//! `WRITABLE` interest is registered only while output waits on a full socket buffer.
//! The crate docs (`lynn_proto::docs::embedding`) explain every step.
//!
//! Run with `cargo run -p lynn-proto --example epoll_server -- --addr 127.0.0.1:9177`.
//! The first line printed is the bound address (so `--addr 127.0.0.1:0` works for tests).
//! Flags: `--max-connections N` (default 10 000); `--stop-on-eof` stops the server when
//! standard input closes, then prints a summary line.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::admission::{Admission, AdmissionConfig, Permit};
use lynn_proto::router::{Resolved, Router};
use lynn_proto::{
    CloseReason, Connection, ConnectionConfig, Event, Instant, Request, SpareBuffers,
};
use mio::event::Event as Readiness;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The listener's token; the connection in slot `i` has token `i + 1`.
const LISTENER: Token = Token(0);
/// The loop looks at the stop flag at least this often.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// Read/dispatch/write rounds one connection gets per turn before others have theirs.
const ROUNDS_PER_TURN: usize = 8;
/// Output chunks gathered into one vectored write.
const WRITE_CHUNKS: usize = 16;
/// Bounds of the adaptive read size (see `read_input`).
const MIN_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// A handler: from a request to an optional reply `(method, body)`.
type Handler = fn(&Request) -> Option<(u16, Bytes)>;

/// Replies with the request's own method and body. The body is a slice of the receive
/// buffer: under 1 KiB it is copied into the send queue, larger ones are shared until
/// written.
fn echo(req: &Request) -> Option<(u16, Bytes)> {
    Some((req.method, req.body.clone()))
}

/// What [`run`] needs besides the listener.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Settings of each accepted connection.
    pub connection: ConnectionConfig,
    /// Connection limits.
    pub admission: AdmissionConfig,
}

/// Counters [`run`] returns when it stops.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Connections admitted.
    pub accepted: u64,
    /// Connections refused by admission (closed at once).
    pub rejected: u64,
    /// Replies queued.
    pub responses: u64,
}

/// One admitted connection.
struct Peer {
    stream: TcpStream,
    conn: Connection,
    /// Given back to `Admission::release` exactly once, in `Server::close`.
    permit: Permit,
    /// Unique per accept, so heap and ready-list entries of a reused slot go stale.
    generation: u64,
    /// The socket may hold unread input (edge-triggered: no new edge until it is drained).
    can_read: bool,
    /// The peer closed or the socket failed: read until end of stream or the error.
    read_closed: bool,
    /// Bytes offered to the next read: grows while reads fill it, shrinks when they don't.
    read_size: usize,
    /// The socket may take more output.
    can_write: bool,
    /// `WRITABLE` is registered.
    writable_interest: bool,
    /// The deadline this peer has in the timer heap, if any.
    armed: Option<Instant>,
    /// The peer waits in the ready list.
    in_ready: bool,
    /// `Event::Closed` was seen: drop the socket.
    closed: bool,
}

/// The whole server state, owned by the loop's thread.
struct Server {
    poll: Poll,
    listener: TcpListener,
    peers: Vec<Option<Peer>>,
    free: Vec<usize>,
    next_generation: u64,
    /// `(deadline, slot, generation)`, earliest first. An entry is live only while its peer
    /// still has exactly that deadline armed; others are skipped when they surface.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Peers that stopped for fairness with input left: `(slot, generation)`.
    ready: VecDeque<(usize, u64)>,
    admission: Admission,
    router: Router<Handler>,
    config: ConnectionConfig,
    /// The receive and staging buffers the connections take turns using (each step takes
    /// them and gives them back if it leaves them empty).
    spare: SpareBuffers,
    summary: Summary,
}

/// Serves `listener` until `stop` is set (seen within 100 ms), then drops every connection
/// and returns the counters.
pub fn run(
    listener: std::net::TcpListener,
    stop: Arc<AtomicBool>,
    settings: Settings,
) -> io::Result<Summary> {
    settings.connection.validate().map_err(io::Error::other)?;
    let admission = Admission::new(settings.admission).map_err(io::Error::other)?;
    let router = Router::builder()
        .route(1, echo as Handler)
        .fallback(echo as Handler) // every other method echoes too
        .build()
        .map_err(io::Error::other)?;
    listener.set_nonblocking(true)?;
    let poll = Poll::new()?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut server = Server {
        poll,
        listener,
        peers: Vec::new(),
        free: Vec::new(),
        next_generation: 0,
        timers: BinaryHeap::new(),
        ready: VecDeque::new(),
        admission,
        router,
        config: settings.connection,
        spare: SpareBuffers::default(),
        summary: Summary::default(),
    };
    let mut events = Events::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let timeout = server.poll_timeout(Instant::now());
        if let Err(e) = server.poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        let mut accept = false;
        // Connections first, then the listener: a peer's close that happened before a new
        // connect releases its permit before the new one asks for admission.
        for event in events.iter() {
            match event.token() {
                LISTENER => accept = true,
                Token(t) => server.on_readiness(t - 1, event, now),
            }
        }
        server.run_ready(now);
        if accept {
            server.accept(now);
        }
        server.run_timers(now);
    }
    Ok(server.shutdown())
}

impl Server {
    /// How long the loop may sleep: until the earliest deadline, no longer than the stop
    /// check, not at all while connections wait in the ready list.
    fn poll_timeout(&mut self, now: Instant) -> Duration {
        if !self.ready.is_empty() {
            return Duration::ZERO;
        }
        match self.earliest_deadline() {
            Some(deadline) => deadline.saturating_duration_since(now).min(STOP_CHECK),
            None => STOP_CHECK,
        }
    }

    /// The earliest live deadline, dropping stale heap entries on the way.
    fn earliest_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, slot, generation))) = self.timers.peek() {
            if self.peer_armed(slot, generation) == Some(deadline) {
                return Some(deadline);
            }
            self.timers.pop();
        }
        None
    }

    fn peer_armed(&self, slot: usize, generation: u64) -> Option<Instant> {
        let peer = self.peers.get(slot)?.as_ref()?;
        (peer.generation == generation).then_some(peer.armed)?
    }

    /// Handles one readiness event of the connection in `slot`.
    fn on_readiness(&mut self, slot: usize, event: &Readiness, now: Instant) {
        let Some(peer) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            return; // closed earlier in this batch
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            peer.can_read = true;
        }
        if event.is_read_closed() || event.is_error() {
            peer.read_closed = true;
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            peer.can_write = true;
        }
        self.drive(slot, now);
    }

    /// Gives each peer in the ready list (as it is now) another turn.
    fn run_ready(&mut self, now: Instant) {
        for _ in 0..self.ready.len() {
            let Some((slot, generation)) = self.ready.pop_front() else {
                break;
            };
            if let Some(peer) = self.peers.get_mut(slot).and_then(Option::as_mut)
                && peer.generation == generation
            {
                peer.in_ready = false;
                self.drive(slot, now);
            }
        }
    }

    /// Runs every due timer, earliest first.
    fn run_timers(&mut self, now: Instant) {
        while let Some(deadline) = self.earliest_deadline()
            && deadline <= now
        {
            let Some(Reverse((_, slot, _))) = self.timers.pop() else {
                break;
            };
            if let Some(peer) = self.peers.get_mut(slot).and_then(Option::as_mut) {
                peer.armed = None;
                peer.conn.handle_timeout(now);
            }
            // A heartbeat may have been queued, or the connection closed: drain as usual.
            self.drive(slot, now);
        }
    }

    /// The drive step of one connection: input, events, output, until nothing moves; then
    /// interest, timer and close bookkeeping.
    fn drive(&mut self, slot: usize, now: Instant) {
        let Some(peer) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        peer.conn.take_buffers(&mut self.spare);
        let mut rounds = 0;
        loop {
            read_input(peer, now);
            self.summary.responses += dispatch(&self.router, peer, now);
            let wrote = write_output(peer, now);
            if peer.closed {
                break;
            }
            // Writing can produce events (`Writable`, or `Closed` once a closing connection
            // has flushed), and handling events can make `wants_read` true again.
            let more_input = peer.can_read && peer.conn.wants_read();
            let more_events = wrote > 0 && peer.conn.has_events();
            if !more_input && !more_events {
                break;
            }
            rounds += 1;
            if rounds == ROUNDS_PER_TURN {
                if more_input && !peer.in_ready {
                    peer.in_ready = true;
                    self.ready.push_back((slot, peer.generation));
                }
                break;
            }
        }
        peer.conn.give_buffers(&mut self.spare);
        if peer.closed {
            self.close(slot);
            return;
        }
        // WRITABLE only while output waits for room in the socket buffer.
        let want_writable = peer.conn.wants_write() && !peer.can_write;
        if want_writable != peer.writable_interest {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(slot + 1);
            match self
                .poll
                .registry()
                .reregister(&mut peer.stream, token, interest)
            {
                Ok(()) => peer.writable_interest = want_writable,
                Err(e) => {
                    peer.conn.handle_transport_error(e.kind(), now);
                    self.close(slot);
                    return;
                }
            }
        }
        // Arm the timer when the deadline came earlier. A later deadline keeps the old
        // entry: it fires early, `handle_timeout` does nothing, and the peer re-arms.
        if let Some(deadline) = peer.conn.poll_timeout()
            && peer.armed.is_none_or(|armed| deadline < armed)
        {
            peer.armed = Some(deadline);
            self.timers.push(Reverse((deadline, slot, peer.generation)));
            self.compact_timers();
        }
    }

    /// Keeps the heap bounded: when stale entries outnumber live peers, rebuild it from the
    /// armed deadlines (amortised O(1) per push).
    fn compact_timers(&mut self) {
        let live = self.peers.len() - self.free.len();
        if self.timers.len() > 2 * live + 64 {
            self.timers = (self.peers.iter().enumerate())
                .filter_map(|(slot, p)| {
                    let p = p.as_ref()?;
                    Some(Reverse((p.armed?, slot, p.generation)))
                })
                .collect();
        }
    }

    /// Accepts until `WouldBlock`, admitting or refusing each connection.
    fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // For example EMFILE. The pending connection stays in the backlog and is
                    // retried at the next connect; a production server would also back off.
                    eprintln!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, addr: SocketAddr, now: Instant) {
        let permit = match self.admission.try_admit(addr.ip(), now) {
            Ok(permit) => permit,
            Err(_rejection) => {
                self.summary.rejected += 1;
                return; // dropping the stream closes it
            }
        };
        let _ = stream.set_nodelay(true);
        let slot = self.free.pop().unwrap_or(self.peers.len());
        let registered =
            self.poll
                .registry()
                .register(&mut stream, Token(slot + 1), Interest::READABLE);
        // The config was validated in `run`, so `Connection::new` cannot fail here.
        let conn = match (registered, Connection::new(self.config.clone(), now)) {
            (Ok(()), Ok(conn)) => conn,
            _ => {
                let _ = self.poll.registry().deregister(&mut stream);
                self.admission.release(permit);
                self.free.push(slot);
                return;
            }
        };
        self.next_generation += 1;
        let armed = conn.poll_timeout();
        let peer = Peer {
            stream,
            conn,
            permit,
            generation: self.next_generation,
            can_read: false, // registration reports input already waiting
            read_closed: false,
            read_size: MIN_READ,
            can_write: true,
            writable_interest: false,
            armed,
            in_ready: false,
            closed: false,
        };
        if let Some(deadline) = armed {
            self.timers.push(Reverse((deadline, slot, peer.generation)));
        }
        if slot == self.peers.len() {
            self.peers.push(Some(peer));
        } else {
            self.peers[slot] = Some(peer);
        }
        self.summary.accepted += 1;
    }

    /// Deregisters and drops the connection in `slot` and releases its permit.
    fn close(&mut self, slot: usize) {
        let Some(mut peer) = self.peers.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut peer.stream);
        self.admission.release(peer.permit);
        self.free.push(slot);
    }

    fn shutdown(mut self) -> Summary {
        for slot in 0..self.peers.len() {
            self.close(slot);
        }
        debug_assert_eq!(self.admission.open(), 0);
        self.summary
    }
}

/// Reads until the socket is drained, end of stream, or `wants_read()` turns false.
///
/// Reads go straight into the connection's receive buffer (bodies are slices of it, never
/// copied). Safe code cannot read into uninitialised memory, so the room offered to a read
/// is zeroed first; the room adapts to the traffic so that small messages do not pay for
/// zeroing a large buffer. A short read means the kernel buffer was empty (epoll(7)), so
/// the socket counts as drained without a second read that would only say `WouldBlock`;
/// after the peer's FIN or an error (`read_closed`), reading goes on to the end.
fn read_input(peer: &mut Peer, now: Instant) {
    while peer.can_read && peer.conn.wants_read() {
        let buf = peer.conn.receive_buffer();
        let len = buf.len();
        let room = (buf.capacity() - len).clamp(1, peer.read_size);
        buf.resize(len + room, 0);
        let result = peer.stream.read(&mut buf[len..]);
        buf.truncate(len + *result.as_ref().unwrap_or(&0));
        match result {
            Ok(0) => {
                peer.can_read = false;
                peer.conn.handle_eof(now);
            }
            Ok(n) => {
                peer.conn.handle_received(now);
                if n == room {
                    peer.read_size = (peer.read_size * 2).min(MAX_READ);
                } else {
                    peer.read_size = (peer.read_size / 2).max(MIN_READ);
                    peer.can_read = peer.read_closed;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => peer.can_read = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                peer.can_read = false;
                peer.conn.handle_transport_error(e.kind(), now);
            }
        }
    }
}

/// Drains every event, calling handlers; returns how many replies were queued.
fn dispatch(router: &Router<Handler>, peer: &mut Peer, now: Instant) -> u64 {
    let mut replies = 0;
    while let Some(event) = peer.conn.poll_event() {
        match event {
            Event::Message(req) => {
                let reply = match router.resolve(req.method) {
                    Resolved::Route(handler) | Resolved::Fallback(handler) => handler(&req),
                    Resolved::Ignore => None,
                    Resolved::Close => {
                        peer.conn
                            .abort(CloseReason::UnknownMethod { method: req.method });
                        continue;
                    }
                };
                replies += u64::from(reply.is_some());
                // Every delivered message is completed, reply or not, or the in-flight
                // limit eventually stops reading.
                let _ = peer.conn.complete(req.id, reply, now);
            }
            // The connection counted it as liveness; nothing to answer.
            Event::Heartbeat => {}
            // Only `send` refusals ask for this; the echo server only replies.
            Event::Writable => {}
            Event::Closed(_reason) => peer.closed = true,
        }
    }
    replies
}

/// Writes until the output is gone or the socket would block; returns the bytes written.
fn write_output(peer: &mut Peer, now: Instant) -> usize {
    let mut total = 0;
    while peer.can_write && peer.conn.wants_write() {
        let mut chunks = [&[][..]; WRITE_CHUNKS];
        let n = peer.conn.transmit_chunks(&mut chunks);
        let slices: [IoSlice<'_>; WRITE_CHUNKS] = chunks.map(IoSlice::new);
        match peer.stream.write_vectored(&slices[..n]) {
            Ok(0) => peer
                .conn
                .handle_transport_error(io::ErrorKind::WriteZero, now),
            Ok(written) => {
                peer.conn.handle_written(written, now);
                total += written;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => peer.can_write = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => peer.conn.handle_transport_error(e.kind(), now),
        }
    }
    total
}

/// Command-line flags.
struct Args {
    addr: String,
    max_connections: usize,
    stop_on_eof: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:9177".into(),
        max_connections: 10_000,
        stop_on_eof: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?,
            "--max-connections" => {
                args.max_connections = value()?.parse().map_err(|e| format!("{flag}: {e}"))?;
            }
            "--stop-on-eof" => args.stop_on_eof = true,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let listener = std::net::TcpListener::bind(&args.addr)?;
    println!("{}", listener.local_addr()?);
    io::stdout().flush()?;
    let stop = Arc::new(AtomicBool::new(false));
    if args.stop_on_eof {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin(), &mut io::sink());
            stop.store(true, Ordering::Relaxed);
        });
    }
    let settings = Settings {
        connection: ConnectionConfig::server(),
        admission: AdmissionConfig {
            max_connections: args.max_connections,
            // A loopback demo: every client shares one address.
            max_per_ip: args.max_connections,
            ..AdmissionConfig::default()
        },
    };
    let summary = run(listener, stop, settings)?;
    println!(
        "accepted {} rejected {} responses {}",
        summary.accepted, summary.rejected, summary.responses
    );
    Ok(())
}
