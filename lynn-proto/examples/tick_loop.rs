//! An echo server inside a game-style fixed-tick loop: 30 ticks per second, std non-blocking
//! sockets, no readiness API. All network work happens inside the tick, in this order:
//!
//! 1. read the clock once: `tick_time`, the only time any call in this tick sees;
//! 2. accept until `WouldBlock`, each connection through `Admission`;
//! 3. for each connection: read until `WouldBlock` while `wants_read()`, run handlers on
//!    the events, and repeat a bounded number of rounds;
//! 4. `handle_timeout(tick_time)` once per connection, then drain its events again;
//! 5. write until `WouldBlock`, drop closed connections (releasing their permits);
//! 6. sleep until the next tick.
//!
//! # Time that advances per tick
//!
//! The connections never see a time between ticks: bytes that arrived mid-tick are stamped
//! with the next tick's time, and a deadline fires at the first tick at or after it. So
//! with a 33 ms tick:
//!
//! - Timers are never early and at most one tick late. An idle timeout of `T` closes a
//!   silent peer at the first tick at or after `last_alive + T`, where `last_alive` is the
//!   tick that processed its last bytes: the real silence is at least `T` and at most
//!   `T` plus two ticks.
//! - Input is processed before timers, so a frame that arrived by the tick counts as life
//!   even when the idle deadline falls on the same tick.
//! - Heartbeats (`--heartbeat-ms`) are queued by `handle_timeout` at the first tick at or
//!   after `last_sent + interval` and written in the same tick (output comes last). They go
//!   out on tick boundaries: an interval of 100 ms becomes 100 to 133 ms.
//! - Replies leave at the end of the tick that read the request, so a request waits for the
//!   next tick: up to 33 ms of latency, the price of the model.
//! - A tick that overruns is not repeated: the next tick starts at once and the schedule
//!   moves on (time simply jumps; timers due meanwhile fire in that tick).
//!
//! Run with `cargo run -p lynn-proto --example tick_loop -- --addr 127.0.0.1:9177`. The first
//! line printed is the bound address. Flags: `--max-connections N`, `--heartbeat-ms N`
//! (server heartbeats, default off), `--idle-timeout-ms N` (default 180 000),
//! `--stop-on-eof` (stop when standard input closes, then print a summary line).

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::admission::{Admission, AdmissionConfig, Permit};
use lynn_proto::router::{Resolved, Router};
use lynn_proto::{CloseReason, Connection, ConnectionConfig, Event, Instant, Request};

/// 30 ticks per second.
const TICK: Duration = Duration::from_nanos(1_000_000_000 / 30);
/// Read/dispatch rounds per connection per tick (bounds one tick's work per peer).
const ROUNDS_PER_TICK: usize = 4;
/// Output chunks gathered into one vectored write.
const WRITE_CHUNKS: usize = 16;
/// Bounds of the adaptive read size (see `read_input`).
const MIN_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// A handler: from a request to an optional reply `(method, body)`.
type Handler = fn(&Request) -> Option<(u16, Bytes)>;

/// Replies with the request's own method and body.
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
    /// Ticks run.
    pub ticks: u64,
}

/// One admitted connection.
struct Peer {
    stream: TcpStream,
    conn: Connection,
    /// Given back to `Admission::release` exactly once, when the peer is dropped from the
    /// table.
    permit: Permit,
    /// The last read did not reach `WouldBlock` or end of stream.
    can_read: bool,
    /// Bytes offered to the next read: grows while reads fill it, shrinks when they don't.
    read_size: usize,
    /// `Event::Closed` was seen: drop the socket.
    closed: bool,
}

/// Serves `listener` at 30 ticks per second until `stop` is set (seen at the next tick),
/// then drops every connection and returns the counters.
pub fn run(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    settings: Settings,
) -> io::Result<Summary> {
    settings.connection.validate().map_err(io::Error::other)?;
    let mut admission = Admission::new(settings.admission).map_err(io::Error::other)?;
    let router: Router<Handler> = Router::builder()
        .fallback(echo as Handler)
        .build()
        .map_err(io::Error::other)?;
    listener.set_nonblocking(true)?;
    let mut peers: Vec<Peer> = Vec::new();
    let mut summary = Summary::default();
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let tick_time = Instant::now();
        summary.ticks += 1;

        accept(
            &listener,
            &mut admission,
            &settings.connection,
            &mut peers,
            &mut summary,
            tick_time,
        );

        for peer in &mut peers {
            summary.responses += tick_peer(peer, &router, tick_time);
        }

        // Drop closed connections; each permit is released exactly once, here.
        let mut i = 0;
        while i < peers.len() {
            if peers[i].closed {
                let peer = peers.swap_remove(i);
                admission.release(peer.permit);
            } else {
                i += 1;
            }
        }

        // Fixed schedule; an overrun tick is followed at once by the next one.
        next_tick += TICK;
        let now = Instant::now();
        if next_tick > now {
            std::thread::sleep(next_tick - now);
        } else {
            next_tick = now;
        }
    }
    for peer in peers.drain(..) {
        admission.release(peer.permit);
    }
    Ok(summary)
}

/// Accepts until `WouldBlock`, admitting or refusing each connection.
fn accept(
    listener: &TcpListener,
    admission: &mut Admission,
    config: &ConnectionConfig,
    peers: &mut Vec<Peer>,
    summary: &mut Summary,
    tick_time: Instant,
) {
    loop {
        let (stream, addr) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // WouldBlock ends this tick's accepts; other errors (EMFILE…) are retried at the
            // next tick.
            Err(_) => return,
        };
        let Ok(permit) = admission.try_admit(addr.ip(), tick_time) else {
            summary.rejected += 1;
            continue; // dropping the stream closes it
        };
        let set_up = stream
            .set_nonblocking(true)
            .and_then(|()| stream.set_nodelay(true));
        // The config was validated in `run`, so `Connection::new` cannot fail here.
        match (set_up, Connection::new(config.clone(), tick_time)) {
            (Ok(()), Ok(conn)) => {
                summary.accepted += 1;
                peers.push(Peer {
                    stream,
                    conn,
                    permit,
                    can_read: true,
                    read_size: MIN_READ,
                    closed: false,
                });
            }
            _ => admission.release(permit),
        }
    }
}

/// One connection's share of the tick; returns how many replies were queued.
fn tick_peer(peer: &mut Peer, router: &Router<Handler>, tick_time: Instant) -> u64 {
    let mut replies = 0;
    // Without readiness we cannot know whether input waits: try every tick.
    peer.can_read = true;
    for _ in 0..ROUNDS_PER_TICK {
        read_input(peer, tick_time);
        replies += dispatch(router, peer, tick_time);
        write_output(peer, tick_time);
        if peer.closed || !(peer.can_read && peer.conn.wants_read()) {
            break;
        }
    }
    // Once per tick, after input: deadlines up to `tick_time` fire now.
    peer.conn.handle_timeout(tick_time);
    replies += dispatch(router, peer, tick_time);
    // Output last: replies, heartbeats, and the flush of a closing connection. A flush that
    // completes a close yields `Closed`, so drain the events once more.
    write_output(peer, tick_time);
    replies += dispatch(router, peer, tick_time);
    replies
}

/// Reads until the socket is drained, end of stream, or `wants_read()` turns false.
///
/// Safe code cannot read into uninitialised memory, so the room offered to a read is zeroed
/// first; it adapts to the traffic so that small messages do not pay for zeroing a large
/// buffer. A short read means the kernel buffer was empty: the rest waits for the next tick.
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
                    peer.can_read = false;
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
                let _ = peer.conn.complete(req.id, reply, now);
            }
            Event::Heartbeat | Event::Writable => {}
            Event::Closed(_reason) => peer.closed = true,
        }
    }
    replies
}

/// Writes until the output is gone or the socket would block (the rest waits for the next
/// tick; the write timeout bounds how long).
fn write_output(peer: &mut Peer, now: Instant) {
    while peer.conn.wants_write() {
        let mut chunks = [&[][..]; WRITE_CHUNKS];
        let n = peer.conn.transmit_chunks(&mut chunks);
        let slices: [IoSlice<'_>; WRITE_CHUNKS] = chunks.map(IoSlice::new);
        match peer.stream.write_vectored(&slices[..n]) {
            Ok(0) => peer
                .conn
                .handle_transport_error(io::ErrorKind::WriteZero, now),
            Ok(written) => peer.conn.handle_written(written, now),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => peer.conn.handle_transport_error(e.kind(), now),
        }
    }
}

/// Command-line flags.
struct Args {
    addr: String,
    max_connections: usize,
    heartbeat: Option<Duration>,
    idle_timeout: Duration,
    stop_on_eof: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:9177".into(),
        max_connections: 10_000,
        heartbeat: None,
        idle_timeout: Duration::from_secs(180),
        stop_on_eof: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let mut number =
            || -> Result<u64, String> { value()?.parse().map_err(|e| format!("{flag}: {e}")) };
        match flag.as_str() {
            "--addr" => args.addr = value()?,
            "--max-connections" => args.max_connections = number()? as usize,
            "--heartbeat-ms" => args.heartbeat = Some(Duration::from_millis(number()?)),
            "--idle-timeout-ms" => args.idle_timeout = Duration::from_millis(number()?),
            "--stop-on-eof" => args.stop_on_eof = true,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let listener = TcpListener::bind(&args.addr)?;
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
    let mut connection = ConnectionConfig::server();
    connection.heartbeat_interval = args.heartbeat;
    connection.idle_timeout = Some(args.idle_timeout);
    let settings = Settings {
        connection,
        admission: AdmissionConfig {
            max_connections: args.max_connections,
            // A loopback demo: every client shares one address.
            max_per_ip: args.max_connections,
            ..AdmissionConfig::default()
        },
    };
    let summary = run(listener, stop, settings)?;
    println!(
        "accepted {} rejected {} responses {} ticks {}",
        summary.accepted, summary.rejected, summary.responses, summary.ticks
    );
    Ok(())
}
