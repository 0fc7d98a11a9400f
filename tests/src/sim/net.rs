//! The simulation's network: listeners by address, and streams that are two in-memory
//! pipes. A read hands out at most a seeded number of bytes, so frames arrive split.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;

/// Bytes a pipe holds before its writer waits.
const PIPE_CAPACITY: usize = 64 * 1024;

#[derive(Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The writer is gone: the reader sees the end of the stream once the bytes are read.
    closed: bool,
    /// The reader is gone: writes fail.
    reader_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

type Shared = Arc<Mutex<Pipe>>;

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
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        let mut pipe = self.rx.lock().unwrap();
        if pipe.bytes.is_empty() {
            if pipe.closed {
                return Poll::Ready(Ok(0));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let most = 1 + (super::random() % 4096) as usize;
        let n = most.min(pipe.bytes.len());
        let (a, b) = pipe.bytes.as_slices();
        let from_a = n.min(a.len());
        buf.extend_from_slice(&a[..from_a]);
        buf.extend_from_slice(&b[..n - from_a]);
        pipe.bytes.drain(..n);
        if let Some(w) = pipe.writer.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.tx.lock().unwrap();
        if pipe.reader_gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = PIPE_CAPACITY - pipe.bytes.len();
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(room - n);
            pipe.bytes.extend(&b[..take]);
            n += take;
        }
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
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
    fn drop(&mut self) {
        close(&self.tx, |p| p.closed = true);
        close(&self.rx, |p| p.reader_gone = true);
    }
}

/// A listener's queue of accepted streams.
#[derive(Default)]
pub(super) struct Backlog {
    streams: VecDeque<SimStream>,
    waker: Option<Waker>,
}

/// Listeners by address.
#[derive(Default)]
pub(super) struct Net {
    listeners: HashMap<String, Arc<Mutex<Backlog>>>,
}

impl Net {
    /// Connects to the listener at `addr`: refused when there is none.
    pub(super) fn connect(&mut self, addr: &str) -> io::Result<SimStream> {
        let backlog = self
            .listeners
            .get(addr)
            .ok_or(io::ErrorKind::ConnectionRefused)?;
        let (client, server) = pair();
        let mut b = backlog.lock().unwrap();
        b.streams.push_back(server);
        if let Some(w) = b.waker.take() {
            w.wake();
        }
        Ok(client)
    }

    /// Listens at `addr`.
    pub(super) fn listen(&mut self, addr: &str) -> Arc<Mutex<Backlog>> {
        Arc::clone(self.listeners.entry(addr.to_string()).or_default())
    }

    /// Stops listening at `addr`.
    pub(super) fn unlisten(&mut self, addr: &str) {
        self.listeners.remove(addr);
    }
}

/// The next stream a listener accepted.
pub(super) fn poll_accept(backlog: &Mutex<Backlog>, cx: &mut Context<'_>) -> Poll<SimStream> {
    let mut b = backlog.lock().unwrap();
    match b.streams.pop_front() {
        Some(s) => Poll::Ready(s),
        None => {
            b.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
