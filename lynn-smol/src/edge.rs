//! Edge-triggered readiness for a server's connections (Linux): one epoll instance per
//! server, polled by the server's task loop ([`TaskSet`](crate::tasks::TaskSet)) between
//! batches of tasks.
//!
//! async-io registers each socket one-shot, so every wait for readiness re-arms it with an
//! `epoll_ctl` (one syscall per read on top of the read), and every readiness event goes
//! through its reactor's wake-up. Here a socket is registered once, edge-triggered; what
//! the kernel reported is kept in the socket's [`Registered`] state until a read or write
//! finds the socket drained (a short read, or `WouldBlock`), so waiting costs no syscall.
//! The epoll instance is itself registered with async-io, so that an idle server sleeps in
//! async-io's reactor like any other future.

use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use async_io::Async;
use rustix::event::{Timespec, epoll};
use slab::Slab;

/// Most events taken from the kernel per poll.
const EVENTS: usize = 256;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One server's epoll instance and the readiness of the sockets registered with it.
pub(crate) struct Epoll {
    /// The epoll instance, registered with async-io to sleep on while the server is idle.
    fd: Async<OwnedFd>,
    sockets: Mutex<Slab<Arc<Readiness>>>,
}

/// Readiness bits: reported readable.
const READ: u32 = 1;
/// Readiness bits: reported writable.
const WRITE: u32 = 2;
/// Readiness bits: the peer closed its half or the socket failed. Never cleared: a short
/// read may leave the end of stream (or the error) behind it, with no event to follow.
const READ_CLOSED: u32 = 4;
/// Readiness bits: the socket hung up or failed. Never cleared.
const WRITE_CLOSED: u32 = 8;
/// Added to the readiness by every event, above the bits: a read or write clears a bit
/// only if no event came since it looked (one could have come after the syscall).
const TICK: u32 = 16;

/// What the kernel last reported of one socket, and the task that owns it.
///
/// One task owns the socket for its whole life: its waker is kept from its first wait on,
/// so a wait costs no lock and no clone, and an event wakes it without a lock (a lock on
/// both sides cost ~45 instructions per loop turn). A task woken while it waits for
/// something else (its handlers, its outbound queue) polls once for nothing.
#[derive(Default)]
struct Readiness {
    /// [`READ`] and [`WRITE`]: reported by the kernel, and not drained by a read or write
    /// since; [`READ_CLOSED`] and [`WRITE_CLOSED`]; events counted in [`TICK`]s.
    ready: AtomicU32,
    /// The waker of the owning task, set by its first wait.
    owner: OnceLock<Waker>,
}

impl Readiness {
    /// Ready when one of `bits` is set; otherwise the task of `cx` is woken by the next
    /// event.
    #[inline]
    fn poll(&self, bits: u32, cx: &Context<'_>) -> Poll<io::Result<()>> {
        if self.ready.load(Ordering::SeqCst) & bits != 0 {
            return Poll::Ready(Ok(()));
        }
        match self.owner.get() {
            // Registered: an event after the check above wakes this task.
            Some(owner) if owner.will_wake(cx.waker()) => return Poll::Pending,
            // Not the owner (no such poll is made): polled again rather than left asleep.
            Some(_) => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            None => {
                // Another first wait that won a race is not this task's: `Some(_)` above
                // then makes its next poll come at once.
                let _ = self.owner.set(cx.waker().clone());
            }
        }
        // An event recorded before the waker was set found no waker to wake.
        fence(Ordering::SeqCst);
        if self.ready.load(Ordering::SeqCst) & bits != 0 {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// Records an event and wakes the task.
    fn set(&self, bits: u32) {
        let _ = self
            .ready
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                Some(r.wrapping_add(TICK) | bits)
            });
        // Pairs with the fence in `poll`: either it sees this event, or this sees its waker.
        fence(Ordering::SeqCst);
        if let Some(owner) = self.owner.get() {
            owner.wake_by_ref();
        }
    }

    /// The readiness before a read or write, for [`clear`](Self::clear).
    fn seen(&self) -> u32 {
        self.ready.load(Ordering::Acquire)
    }

    /// A read or write that started when the readiness was `seen` found the socket
    /// drained: clears `bit`, unless an event came since.
    fn clear(&self, bit: u32, seen: u32) {
        let _ = self
            .ready
            .compare_exchange(seen, seen & !bit, Ordering::AcqRel, Ordering::Relaxed);
    }
}

impl Epoll {
    /// A new epoll instance.
    pub(crate) fn new() -> io::Result<Arc<Self>> {
        let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(Arc::new(Epoll {
            fd: Async::new(fd)?,
            sockets: Mutex::default(),
        }))
    }

    /// Registers an accepted socket (made non-blocking here).
    pub(crate) fn register(self: &Arc<Self>, socket: Socket) -> io::Result<Registered> {
        match &socket {
            Socket::Tcp(s) => s.set_nonblocking(true)?,
            Socket::Unix(s) => s.set_nonblocking(true)?,
        }
        let readiness = Arc::default();
        let key = lock(&self.sockets).insert(Arc::clone(&readiness));
        let interest = epoll::EventFlags::IN
            | epoll::EventFlags::OUT
            | epoll::EventFlags::RDHUP
            | epoll::EventFlags::ET;
        let data = epoll::EventData::new_u64(key as u64);
        if let Err(e) = epoll::add(self.fd.get_ref(), &socket, data, interest) {
            lock(&self.sockets).remove(key);
            return Err(e.into());
        }
        Ok(Registered {
            socket,
            readiness,
            key,
            epoll: Arc::clone(self),
        })
    }

    /// Takes the events the kernel has (without waiting), records them and wakes the
    /// tasks waiting for them. Returns whether there were any.
    pub(crate) fn poll_events(&self) -> bool {
        let mut buf = [const { MaybeUninit::uninit() }; EVENTS];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let events = match epoll::wait(self.fd.get_ref(), &mut buf, Some(&zero)) {
            Ok((events, _)) => events,
            Err(e) => {
                if e != rustix::io::Errno::INTR {
                    tracing::warn!(error = %e, "epoll_wait failed");
                }
                return false;
            }
        };
        let sockets = lock(&self.sockets);
        for event in events.iter() {
            let Some(readiness) = usize::try_from(event.data.u64())
                .ok()
                .and_then(|key| sockets.get(key))
            else {
                continue;
            };
            let flags = event.flags;
            let failed = epoll::EventFlags::HUP | epoll::EventFlags::ERR;
            let mut bits = 0;
            if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::PRI) {
                bits |= READ;
            }
            if flags.intersects(epoll::EventFlags::OUT) {
                bits |= WRITE;
            }
            if flags.intersects(epoll::EventFlags::RDHUP | failed) {
                bits |= READ_CLOSED;
            }
            if flags.intersects(failed) {
                bits |= WRITE_CLOSED;
            }
            readiness.set(bits);
        }
        !events.is_empty()
    }

    /// Leaves `cx` to be woken (through async-io's reactor) when the kernel has events.
    pub(crate) fn wait(&self, cx: &mut Context<'_>) {
        // `Ready` reports an event from before (the events were taken since): poll again
        // to register for the next one.
        for _ in 0..2 {
            match self.fd.poll_readable(cx) {
                Poll::Pending => return,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    tracing::warn!(error = %e, "cannot wait for the server's sockets");
                    return;
                }
            }
        }
    }
}

/// An accepted socket, before it is registered.
#[derive(Debug)]
pub(crate) enum Socket {
    /// TCP.
    Tcp(TcpStream),
    /// Unix domain socket.
    Unix(UnixStream),
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }
}

/// A socket registered with an [`Epoll`]; deregistered when dropped.
pub(crate) struct Registered {
    socket: Socket,
    readiness: Arc<Readiness>,
    key: usize,
    epoll: Arc<Epoll>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl Registered {
    /// The socket, when it is TCP.
    pub(crate) fn tcp(&self) -> Option<&TcpStream> {
        match &self.socket {
            Socket::Tcp(s) => Some(s),
            Socket::Unix(_) => None,
        }
    }

    /// Ready once the kernel reported the socket readable and no read has drained it since.
    #[inline]
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.readiness.poll(READ | READ_CLOSED, cx)
    }

    /// Ready once the kernel reported the socket writable and no write has filled it since.
    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.readiness.poll(WRITE | WRITE_CLOSED, cx)
    }

    /// One read. A read that would block, or that leaves room in `buf` (the socket is
    /// drained), clears the readiness: the next wait lasts until the kernel reports more.
    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let seen = self.readiness.seen();
        let result = match &self.socket {
            Socket::Tcp(s) => (&*s).read(buf),
            Socket::Unix(s) => (&*s).read(buf),
        };
        let drained = match &result {
            Ok(n) => *n > 0 && *n < buf.len(),
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        if drained {
            self.readiness.clear(READ, seen);
        }
        result
    }

    /// One write; one that would block clears the write readiness.
    #[inline]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let seen = self.readiness.seen();
        let result = match &self.socket {
            Socket::Tcp(s) => (&*s).write(buf),
            Socket::Unix(s) => (&*s).write(buf),
        };
        self.wrote(&result, seen);
        result
    }

    /// One vectored write; one that would block clears the write readiness.
    #[inline]
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let seen = self.readiness.seen();
        let result = match &self.socket {
            Socket::Tcp(s) => (&*s).write_vectored(bufs),
            Socket::Unix(s) => (&*s).write_vectored(bufs),
        };
        self.wrote(&result, seen);
        result
    }

    /// After a write that started when the readiness was `seen`: one that would block
    /// clears the write readiness.
    #[inline]
    fn wrote(&self, result: &io::Result<usize>, seen: u32) {
        if matches!(result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.readiness.clear(WRITE, seen);
        }
    }

    /// Shuts down the write half.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => s.shutdown(Shutdown::Write),
            Socket::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = epoll::delete(self.epoll.fd.get_ref(), &self.socket);
        lock(&self.epoll.sockets).try_remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_waker::Count;

    #[test]
    fn readable_from_an_event_until_a_read_drains_the_socket() {
        let epoll = Epoll::new().unwrap();
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let ours = epoll.register(Socket::Unix(ours)).unwrap();
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        epoll.poll_events(); // the writability reported at registration
        assert!(ours.poll_readable(&mut cx).is_pending());
        peer.write_all(b"hello").unwrap();
        assert!(epoll.poll_events());
        assert_eq!(count.get(), 1);
        assert!(ours.poll_readable(&mut cx).is_ready());
        let mut buf = [0u8; 16];
        assert_eq!(ours.read(&mut buf).unwrap(), 5);
        assert!(ours.poll_readable(&mut cx).is_pending());
        assert!(!epoll.poll_events());
        peer.write_all(b"again").unwrap();
        assert!(epoll.poll_events());
        assert_eq!(count.get(), 2);
        assert!(ours.poll_readable(&mut cx).is_ready());
    }

    #[test]
    fn an_event_during_a_read_keeps_the_socket_readable() {
        let readiness = Readiness::default();
        readiness.set(READ);
        let seen = readiness.seen();
        readiness.set(READ); // came after the read's syscall returned
        readiness.clear(READ, seen);
        assert_ne!(readiness.seen() & READ, 0);
        readiness.clear(READ, readiness.seen());
        assert_eq!(readiness.seen() & READ, 0);
    }

    #[test]
    fn readable_until_the_end_of_stream_behind_a_short_read() {
        let epoll = Epoll::new().unwrap();
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let ours = epoll.register(Socket::Unix(ours)).unwrap();
        let waker = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&waker);
        peer.write_all(b"bye").unwrap();
        drop(peer);
        assert!(epoll.poll_events());
        let mut buf = [0u8; 16];
        assert_eq!(ours.read(&mut buf).unwrap(), 3);
        assert!(ours.poll_readable(&mut cx).is_ready());
        assert_eq!(ours.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn writable_again_once_the_peer_reads() {
        let epoll = Epoll::new().unwrap();
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let ours = epoll.register(Socket::Unix(ours)).unwrap();
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        epoll.poll_events();
        assert!(ours.poll_writable(&mut cx).is_ready());
        let chunk = [1u8; 4096];
        let mut written = 0;
        loop {
            match ours.write_vectored(&[IoSlice::new(&chunk)]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write failed: {e}"),
            }
        }
        assert!(ours.poll_writable(&mut cx).is_pending());
        let mut sink = vec![0u8; written];
        peer.read_exact(&mut sink).unwrap();
        assert!(epoll.poll_events());
        assert_eq!(count.get(), 1);
        assert!(ours.poll_writable(&mut cx).is_ready());
    }
}
