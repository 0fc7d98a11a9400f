//! [`Reactor`]: a [`Runtime`] of streams and timers on async-io's reactor (feature
//! `async-io`), for the adapters that bring no reactor of their own. They differ only in
//! how they run a task ([`Spawn`]): lynn-smol on smol's executor (or the caller's),
//! lynn-blocking on an executor of one thread per CPU.

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use bytes::BytesMut;
use lynn_proto::{Endpoint, Instant, PeerAddr, SocketOptions};

use crate::runtime::{Runtime, Transport};

/// Most bytes one read takes (the size of each thread's scratch buffer).
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    /// Where reads land before they are copied into a connection's buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SCRATCH_LEN]);
}

/// How a [`Reactor`] runtime runs a task in the background.
pub trait Spawn: Clone + Default + Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);
}

/// The [`Runtime`] of async-io's streams and timers, running tasks with `S`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reactor<S>(pub S);

impl<S: Spawn> Runtime for Reactor<S> {
    type Stream = Stream;
    type Timer = Timer;
    type Listener = Listener;

    fn connect(
        &self,
        endpoint: Endpoint,
        options: SocketOptions,
    ) -> impl Future<Output = io::Result<Stream>> + Send + 'static {
        connect(endpoint, options)
    }

    fn bind(
        &self,
        endpoint: Endpoint,
        backlog: u32,
    ) -> impl Future<Output = io::Result<Listener>> + Send + 'static {
        bind(endpoint, backlog)
    }

    fn adopt(&self, stream: Stream, options: &SocketOptions) -> io::Result<Stream> {
        if let Stream::Tcp(s) = &stream {
            crate::apply_socket_options(s.get_ref(), options);
        }
        Ok(stream)
    }

    fn timer(&self) -> Timer {
        Timer::default()
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(task);
    }
}

/// A connected, non-blocking stream registered with async-io's reactor.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(Async<TcpStream>),
    /// A Unix domain socket.
    #[cfg(unix)]
    Unix(Async<UnixStream>),
}

/// Connects to `endpoint` (resolving a host name first) and applies `options` to a TCP
/// socket.
pub async fn connect(endpoint: Endpoint, options: SocketOptions) -> io::Result<Stream> {
    match endpoint {
        #[cfg(unix)]
        Endpoint::Unix(path) => Ok(Stream::Unix(Async::<UnixStream>::connect(path).await?)),
        #[cfg(not(unix))]
        Endpoint::Unix(_) => Err(io::ErrorKind::Unsupported.into()),
        Endpoint::Tcp(addr) => {
            let stream = Async::<TcpStream>::connect(resolve(&addr).await?).await?;
            crate::apply_socket_options(stream.get_ref(), &options);
            Ok(Stream::Tcp(stream))
        }
    }
}

/// The first address of `addr` (`host:port`), resolved off the calling thread.
pub async fn resolve(addr: &str) -> io::Result<SocketAddr> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    async_net::resolve(addr)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address")))
}

impl Transport for Stream {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_readable(cx),
            #[cfg(unix)]
            Stream::Unix(s) => s.poll_readable(cx),
        }
    }

    /// Through a scratch buffer of the thread's: std's `Read` wants initialised memory,
    /// and zeroing the buffer's spare room before every read (16 KiB for a read of a few
    /// hundred bytes) cost more than the rest of the server's work per message; copying
    /// what was read costs only its length.
    fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let room = (buf.capacity() - buf.len()).clamp(1, SCRATCH_LEN);
        SCRATCH.with_borrow_mut(|scratch| {
            let scratch = &mut scratch[..room];
            let res = match self {
                Stream::Tcp(s) => s.get_ref().read(scratch),
                #[cfg(unix)]
                Stream::Unix(s) => s.get_ref().read(scratch),
            };
            if let Ok(n) = res {
                buf.extend_from_slice(&scratch[..n]);
            }
            res
        })
    }

    fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_writable(cx),
            #[cfg(unix)]
            Stream::Unix(s) => s.poll_writable(cx),
        }
    }

    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.get_ref().write_vectored(bufs),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().write_vectored(bufs),
        }
    }

    fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.get_ref().shutdown(Shutdown::Write),
            #[cfg(unix)]
            Stream::Unix(s) => s.get_ref().shutdown(Shutdown::Write),
        };
    }
}

/// A listening socket registered with async-io's reactor.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(Async<TcpListener>),
    /// A Unix domain socket.
    #[cfg(unix)]
    Unix(Async<UnixListener>),
}

/// Listens at `endpoint` (resolving a host name first) with a queue of `backlog`.
pub async fn bind(endpoint: Endpoint, backlog: u32) -> io::Result<Listener> {
    match endpoint {
        #[cfg(unix)]
        Endpoint::Unix(path) => Ok(Listener::Unix(Async::new(crate::listen_unix(
            path, backlog,
        )?)?)),
        #[cfg(not(unix))]
        Endpoint::Unix(_) => Err(io::ErrorKind::Unsupported.into()),
        Endpoint::Tcp(addr) => {
            let addr = resolve(&addr).await?;
            Ok(Listener::Tcp(Async::new(crate::listen_tcp(
                addr, backlog,
            )?)?))
        }
    }
}

impl crate::runtime::Listener for Listener {
    type Accepted = Stream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, PeerAddr)>> {
        match self {
            Listener::Tcp(l) => poll_accept(cx, l, |l| {
                let (s, addr) = l.accept()?;
                Ok((Stream::Tcp(Async::new(s)?), PeerAddr::Tcp(addr)))
            }),
            #[cfg(unix)]
            Listener::Unix(l) => poll_accept(cx, l, |l| {
                let (s, addr) = l.accept()?;
                Ok((Stream::Unix(Async::new(s)?), crate::unix_peer(&addr)))
            }),
        }
    }

    fn local_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Listener::Tcp(l) => Ok(PeerAddr::Tcp(l.get_ref().local_addr()?)),
            #[cfg(unix)]
            Listener::Unix(l) => Ok(crate::unix_peer(&l.get_ref().local_addr()?)),
        }
    }
}

fn poll_accept<L, T>(
    cx: &mut Context<'_>,
    listener: &Async<L>,
    accept: impl Fn(&L) -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        std::task::ready!(listener.poll_readable(cx))?;
        match accept(listener.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            res => return Poll::Ready(res),
        }
    }
}

/// An async-io timer, moved only when the deadline changes (each move re-registers it with
/// the reactor).
#[derive(Debug)]
pub struct Timer {
    timer: async_io::Timer,
    at: Option<Instant>,
    /// Polled pending since it was last moved.
    waiting: bool,
    /// Fired since it was last moved. async-io's timer is ready once, then pending for ever;
    /// a [`Timer`](crate::runtime::Timer) stays elapsed until moved (a lazily armed drive
    /// loop timer polls it again to move on to a later deadline).
    fired: bool,
}

impl Default for Timer {
    fn default() -> Self {
        Timer {
            timer: async_io::Timer::never(),
            at: None,
            waiting: false,
            fired: false,
        }
    }
}

impl crate::runtime::Timer for Timer {
    fn reset(&mut self, deadline: Instant) {
        if self.at != Some(deadline) {
            self.at = Some(deadline);
            self.waiting = false;
            self.fired = false;
            self.timer.set_at(deadline);
        }
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired {
            return Poll::Ready(());
        }
        let res = Pin::new(&mut self.timer).poll(cx).map(|_| ());
        self.waiting = res.is_pending();
        self.fired = res.is_ready();
        res
    }

    fn is_waiting(&self) -> bool {
        self.waiting
    }
}

#[cfg(test)]
mod tests {
    use std::future::{Future, poll_fn};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use lynn_proto::Instant;

    use super::Timer;
    use crate::lazy_timer::LazyTimer;
    use crate::runtime::Timer as _;

    /// As the `Timer` trait says, and tokio's and the simulated timers do: once its deadline
    /// passed a timer is ready at every poll until it is moved (async-io's own timer fires
    /// once, then is pending for ever).
    #[test]
    fn a_fired_timer_stays_fired_until_moved() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut timer = Timer::default();
        timer.reset(Instant::now());
        assert!(timer.poll_elapsed(&mut cx).is_ready());
        assert!(timer.poll_elapsed(&mut cx).is_ready(), "still elapsed");
        timer.reset(Instant::now() + Duration::from_secs(60));
        assert!(timer.poll_elapsed(&mut cx).is_pending());
    }

    /// A drive loop's timer whose deadline fired through `poll_at` (a request timeout), then
    /// armed at a later one (the next request's), fires again: the later deadline was left
    /// to an async-io timer that had fired and would never wake the task, which hung until
    /// other input woke it (a smol or blocking client's requests, until the server's idle
    /// timeout closed the connection 180 s later).
    #[test]
    fn a_lazy_timer_fires_again_after_firing() {
        let mut lazy = LazyTimer::new(Timer::default());
        lazy.set(Some(Instant::now()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(lazy.poll_at(&mut cx, None).is_ready());
        lazy.set(Some(Instant::now() + Duration::from_millis(20)));
        let mut give_up = async_io::Timer::after(Duration::from_secs(5));
        let fired = async_io::block_on(poll_fn(|cx| {
            if lazy.poll_at(cx, None).is_ready() {
                return Poll::Ready(true);
            }
            Pin::new(&mut give_up).poll(cx).map(|_| false)
        }));
        assert!(fired, "the later deadline fired");
    }
}
