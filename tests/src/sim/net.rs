//! The simulation's network: listeners by address, and streams that are two in-memory
//! pipes. A read hands out, and a write takes, at most a seeded number of bytes (a few
//! bytes one time in four, up to 4 KiB or 16 KiB otherwise), so frames arrive split and
//! writes are partial in different places for different seeds. Every
//! connection comes from an address of its own (its IP chosen by the caller, its port
//! counted), so per-IP admission sees what the test meant.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use lynn_proto::PeerAddr;

/// Where [`SimRuntime::connect`](super::SimRuntime) connects from.
pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// Bytes a pipe holds before its writer waits.
const PIPE_CAPACITY: usize = 64 * 1024;

#[derive(Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The writer is gone: the reader sees the end of the stream once the bytes are read.
    closed: bool,
    /// The reader is gone: writes fail.
    reader_gone: bool,
    /// The writer closed with input it had not read (a TCP reset): what it sent and was
    /// not read yet is lost, and reads fail.
    reset: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

type Shared = Arc<Mutex<Pipe>>;

/// How many of `len` bytes a read hands out or a write takes (at least one): from the
/// seed, 1 to 16 one time in four, else 1 to `most`. Recorded in the world's digest.
fn seeded_len(len: usize, most: usize) -> usize {
    let r = super::random();
    let cap = if r % 4 == 0 { 16 } else { most };
    let n = (1 + (r >> 8) as usize % cap).min(len);
    super::with(|w| super::record(w, n as u64));
    n
}

/// One end of an in-memory connection: the [`Transport`](lynn_service::Transport) of
/// [`SimRuntime`](super::SimRuntime).
pub struct SimStream {
    rx: Shared,
    tx: Shared,
}

impl std::fmt::Debug for SimStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimStream")
    }
}

fn pair() -> (SimStream, SimStream) {
    let (a, b) = (Shared::default(), Shared::default());
    (
        SimStream {
            rx: Arc::clone(&a),
            tx: Arc::clone(&b),
        },
        SimStream { rx: b, tx: a },
    )
}

impl lynn_service::Transport for SimStream {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        super::count_io_poll();
        let mut pipe = self.rx.lock().unwrap();
        if pipe.bytes.is_empty() && !pipe.closed {
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut pipe = self.rx.lock().unwrap();
        if pipe.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if pipe.bytes.is_empty() {
            return if pipe.closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = seeded_len(pipe.bytes.len(), 4096);
        super::with(|w| w.reads += 1);
        let (a, b) = pipe.bytes.as_slices();
        let from_a = n.min(a.len());
        buf.extend_from_slice(&a[..from_a]);
        buf.extend_from_slice(&b[..n - from_a]);
        pipe.bytes.drain(..n);
        if let Some(w) = pipe.writer.take() {
            w.wake();
        }
        Ok(n)
    }

    fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        super::count_io_poll();
        let mut pipe = self.tx.lock().unwrap();
        if !pipe.reader_gone && pipe.bytes.len() >= PIPE_CAPACITY {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut pipe = self.tx.lock().unwrap();
        if pipe.reader_gone {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = PIPE_CAPACITY - pipe.bytes.len();
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        let room = seeded_len(room.min(total), 16 * 1024);
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(room - n);
            pipe.bytes.extend(&b[..take]);
            n += take;
        }
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
        Ok(n)
    }

    fn shutdown_write(&mut self) {
        close(&self.tx, |p| p.closed = true);
    }
}

fn close(pipe: &Shared, mark: impl FnOnce(&mut Pipe)) {
    let mut p = pipe.lock().unwrap();
    mark(&mut p);
    let wakers = [p.reader.take(), p.writer.take()];
    drop(p);
    wakers.into_iter().flatten().for_each(Waker::wake);
}

impl Drop for SimStream {
    /// Closes both directions. With input not read, as a kernel does, it resets the
    /// connection rather than ending it: the peer loses what it has not read yet, and its
    /// reads fail with `ConnectionReset` (what a lingering close is there to avoid).
    fn drop(&mut self) {
        let unread = !self.rx.lock().unwrap().bytes.is_empty();
        close(&self.tx, |p| {
            p.closed = true;
            if unread {
                p.reset = true;
                p.bytes.clear();
            }
        });
        close(&self.rx, |p| p.reader_gone = true);
    }
}

/// A listener's queue of connections not accepted yet.
pub(super) struct Backlog {
    streams: VecDeque<(SimStream, PeerAddr)>,
    /// Most connections queued (the listen backlog).
    limit: usize,
    waker: Option<Waker>,
}

/// Listeners by address.
#[derive(Default)]
pub(super) struct Net {
    listeners: HashMap<String, Arc<Mutex<Backlog>>>,
    /// The last port a connection came from.
    last_port: u16,
}

impl Net {
    /// Connects from `ip` (a port of its own) to the listener at `addr`: refused when there
    /// is none, or when its backlog is full (where Linux would drop the SYN and let the
    /// client retry, the simulation refuses at once).
    pub(super) fn connect(&mut self, addr: &str, ip: IpAddr) -> io::Result<SimStream> {
        let backlog = self
            .listeners
            .get(addr)
            .ok_or(io::ErrorKind::ConnectionRefused)?;
        let mut b = backlog.lock().unwrap();
        if b.streams.len() >= b.limit {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        self.last_port = self.last_port.wrapping_add(1).max(1024);
        let peer = PeerAddr::Tcp(SocketAddr::new(ip, self.last_port));
        let (client, server) = pair();
        b.streams.push_back((server, peer));
        if let Some(w) = b.waker.take() {
            w.wake();
        }
        Ok(client)
    }

    /// Listens at `addr` with a queue of `backlog` connections (at least one); refused
    /// while another listener is there.
    pub(super) fn listen(&mut self, addr: &str, backlog: u32) -> io::Result<Arc<Mutex<Backlog>>> {
        if self.listeners.contains_key(addr) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let queue = Arc::new(Mutex::new(Backlog {
            streams: VecDeque::new(),
            limit: backlog.max(1) as usize,
            waker: None,
        }));
        self.listeners.insert(addr.to_string(), Arc::clone(&queue));
        Ok(queue)
    }

    /// Stops listening at `addr`.
    pub(super) fn unlisten(&mut self, addr: &str) {
        self.listeners.remove(addr);
    }
}

/// The next stream a listener accepted, and where it comes from.
fn poll_accept(backlog: &Mutex<Backlog>, cx: &mut Context<'_>) -> Poll<(SimStream, PeerAddr)> {
    let mut b = backlog.lock().unwrap();
    match b.streams.pop_front() {
        Some(s) => Poll::Ready(s),
        None => {
            b.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// A listening address of the simulation: the [`Listener`](lynn_service::Listener) of
/// [`SimRuntime`](super::SimRuntime). Stops listening when dropped.
pub struct SimListener {
    addr: String,
    backlog: Arc<Mutex<Backlog>>,
}

impl SimListener {
    pub(super) fn new(addr: String, backlog: Arc<Mutex<Backlog>>) -> Self {
        SimListener { addr, backlog }
    }
}

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimListener({})", self.addr)
    }
}

impl lynn_service::Listener for SimListener {
    type Accepted = SimStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(SimStream, PeerAddr)>> {
        poll_accept(&self.backlog, cx).map(Ok)
    }

    /// The address as a TCP address when it is one (`10.0.0.1:20001`), else as a path.
    fn local_addr(&self) -> io::Result<PeerAddr> {
        Ok(match self.addr.parse() {
            Ok(addr) => PeerAddr::Tcp(addr),
            Err(_) => PeerAddr::Unix(Some(self.addr.clone())),
        })
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        super::try_with(|w| w.net.unlisten(&self.addr));
    }
}
