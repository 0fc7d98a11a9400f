//! [`ServerHandle`]: what any thread can do to a running server, and the per-connection
//! entry of the connection table.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::groups::GroupError;
use lynn_proto::{ConnectionId, Instant, PeerAddr, SendToError};
use lynn_service::Metrics;
use lynn_service::SharedAdmission;
use lynn_service::switchboard::{Mailbox, Refused, Switchboard};
use lynn_service::{Outbound, Target};

use crate::conn::Input;
use crate::stream::Stream;

/// Locks `m`, recovering from poisoning (a panic elsewhere must not wedge the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the connection table keeps per connection.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) tx: Sender<Input>,
    /// Outbound messages queued for the connection thread and not yet taken by its
    /// `Connection`; bounded by `limit` (`outbound_queue`).
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) limit: usize,
    pub(crate) close_sent: AtomicBool,
    pub(crate) peer: PeerAddr,
    /// A clone of the socket, shut down to force the connection closed.
    pub(crate) kill: Stream,
}

impl Mailbox for Entry {
    /// Queues `out` unless `limit` messages already wait.
    fn offer(&self, out: Outbound) -> Result<(), Refused> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.send(Input::Out(out)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            Refused::Closed
        })
    }

    fn peer(&self) -> &PeerAddr {
        &self.peer
    }

    /// Asks the connection to close gracefully (once; a slot is reserved for it).
    fn close(&self) -> bool {
        if !self.close_sent.swap(true, Ordering::AcqRel) {
            return self.tx.send(Input::Out(Outbound::Close)).is_ok();
        }
        true
    }
}

/// Where the acceptor listens, so `shutdown` can wake it by connecting.
#[derive(Clone, Debug)]
pub(crate) enum WakeAddr {
    Tcp(SocketAddr),
    #[cfg(unix)]
    Unix(std::path::PathBuf),
}

#[derive(Debug)]
pub(crate) struct HandleInner {
    pub(crate) board: Arc<Switchboard<Entry>>,
    pub(crate) admission: SharedAdmission,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) wake: Option<WakeAddr>,
    pub(crate) live: Mutex<usize>,
    pub(crate) live_cv: Condvar,
}

/// A cheap, cloneable handle on a server: send to connections, broadcast, manage groups,
/// close connections, shut the server down. Usable from any thread, inside or outside
/// handlers.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    pub(crate) inner: Arc<HandleInner>,
}

impl ServerHandle {
    /// Queues a message for connection `id`. Never blocks: a full queue is an error.
    pub fn send(
        &self,
        id: ConnectionId,
        method: u16,
        body: impl Into<Bytes>,
    ) -> Result<(), SendToError> {
        self.inner.board.send(id, method, body.into())
    }

    /// Sends to every open connection; returns how many queued it.
    pub fn broadcast(&self, method: u16, body: impl Into<Bytes>) -> usize {
        self.fanout(Target::All, method, body)
    }

    /// Sends to every member of `group`; returns how many queued it.
    pub fn broadcast_group(&self, group: &str, method: u16, body: impl Into<Bytes>) -> usize {
        self.fanout(Target::Group(group.into()), method, body)
    }

    /// Sends to `target`: encodes once, takes the table lock once, and offers the shared
    /// bytes to each recipient without blocking (a full recipient is skipped and counted
    /// in `lynn_send_queue_full_total`). Returns how many queued it.
    pub fn fanout(&self, target: Target, method: u16, body: impl Into<Bytes>) -> usize {
        self.inner
            .board
            .fanout(&target, method, &body.into())
            .unwrap_or_else(|e| {
                log::warn!("fanout of method {method} refused: {e}");
                0
            })
    }

    /// Adds connection `id` to `group`; `Ok(false)` if already a member or not connected.
    pub fn join(&self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        self.inner.board.join(group, id)
    }

    /// Removes `id` from `group`; returns whether it was a member.
    pub fn leave(&self, group: &str, id: ConnectionId) -> bool {
        self.inner.board.leave(group, id)
    }

    /// Open connections and their peers.
    pub fn connections(&self) -> Vec<(ConnectionId, PeerAddr)> {
        self.inner.board.connections()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.inner.board.len()
    }

    /// Closes connection `id` gracefully (in-flight requests are answered, output is
    /// flushed). Returns whether it was open.
    pub fn close(&self, id: ConnectionId) -> bool {
        self.inner.board.close(id)
    }

    /// Starts a graceful shutdown: the server stops accepting, every connection finishes
    /// its accepted requests and flushes, within `shutdown_timeout`. Returns at once;
    /// `serve` returns when the shutdown is over.
    pub fn shutdown(&self) {
        if self.inner.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the acceptor blocked in `accept` by connecting to it.
        match &self.inner.wake {
            Some(WakeAddr::Tcp(a)) => {
                let _ = std::net::TcpStream::connect_timeout(a, Duration::from_secs(1));
            }
            #[cfg(unix)]
            Some(WakeAddr::Unix(p)) => {
                let _ = std::os::unix::net::UnixStream::connect(p);
            }
            None => {}
        }
    }

    /// Whether a shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.inner.board.metrics()
    }

    /// Sends `Close` to every connection, waits up to `timeout` for all of them to end,
    /// then forces the rest closed and waits briefly for their threads.
    pub(crate) fn drain(&self, timeout: Duration) {
        self.inner.board.close_all();
        if !self.wait_idle(Instant::now() + timeout) {
            log::warn!("shutdown timeout: forcing remaining connections closed");
            self.inner.board.for_each(|_, e| e.kill.shutdown());
            self.wait_idle(Instant::now() + Duration::from_secs(2));
        }
    }

    /// Waits until no connection thread is live, or `deadline`. Returns whether idle.
    fn wait_idle(&self, deadline: Instant) -> bool {
        let mut live = lock(&self.inner.live);
        while *live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            live = match self.inner.live_cv.wait_timeout(live, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}
