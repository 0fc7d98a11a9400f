//! [`ServerHandle`]: what any thread can do to a running server, and the per-connection
//! entry of the connection table.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::admission::Admission;
use lynn_proto::codec::{self, FrameKind, Marks};
use lynn_proto::groups::GroupError;
use lynn_proto::{
    ConnectionId, Instant, Metrics, Outbound, PeerAddr, Registry, SendToError, Target,
};

use crate::conn::Input;
use crate::stream::Stream;

/// Locks `m`, recovering from poisoning (a panic elsewhere must not wedge the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the connection table keeps per connection.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) tx: SyncSender<Input>,
    /// Outbound messages queued for the connection thread and not yet taken by its
    /// `Connection`; bounded by `outbound_queue`.
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) close_sent: AtomicBool,
    pub(crate) peer: PeerAddr,
    /// A clone of the socket, shut down to force the connection closed.
    pub(crate) kill: Stream,
}

impl Entry {
    /// Queues `out` unless `limit` messages already wait.
    fn try_out(&self, out: Outbound, limit: usize) -> bool {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= limit {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        match self.tx.try_send(Input::Out(out)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                false
            }
        }
    }

    /// Asks the connection to close gracefully (once; a slot is reserved for it).
    pub(crate) fn request_close(&self) {
        if !self.close_sent.swap(true, Ordering::AcqRel) {
            let _ = self.tx.try_send(Input::Out(Outbound::Close));
        }
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
    pub(crate) registry: Mutex<Registry<Entry>>,
    pub(crate) admission: Mutex<Admission>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) wake: Option<WakeAddr>,
    pub(crate) live: Mutex<usize>,
    pub(crate) live_cv: Condvar,
    pub(crate) marks: Marks,
    pub(crate) peer_max_frame_len: u64,
    pub(crate) outbound_queue: usize,
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
        let body = body.into();
        codec::encode_header(
            self.inner.marks,
            FrameKind::Message,
            method,
            body.len(),
            self.inner.peer_max_frame_len,
        )?;
        let reg = lock(&self.inner.registry);
        let entry = reg.get(id).ok_or(SendToError::UnknownConnection(id))?;
        if entry.try_out(
            Outbound::Message { method, body },
            self.inner.outbound_queue,
        ) {
            Ok(())
        } else {
            Err(SendToError::QueueFull(id))
        }
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
        let body = body.into();
        let frame = match codec::encode_to_bytes(
            self.inner.marks,
            FrameKind::Message,
            method,
            &body,
            self.inner.peer_max_frame_len,
        ) {
            Ok(f) => f,
            Err(e) => {
                log::warn!("fanout of method {method} refused: {e}");
                return 0;
            }
        };
        let limit = self.inner.outbound_queue;
        let (mut queued, mut skipped) = (0, 0u64);
        lock(&self.inner.registry).for_each_recipient(&target, |_, entry| {
            if entry.try_out(Outbound::Encoded(frame.clone()), limit) {
                queued += 1;
            } else {
                skipped += 1;
            }
        });
        if skipped > 0 {
            self.inner.metrics.add(&lynn_proto::ConnectionStats {
                send_refused: skipped,
                ..Default::default()
            });
        }
        queued
    }

    /// Adds connection `id` to `group`; `Ok(false)` if already a member or not connected.
    pub fn join(&self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        lock(&self.inner.registry).join(group, id)
    }

    /// Removes `id` from `group`; returns whether it was a member.
    pub fn leave(&self, group: &str, id: ConnectionId) -> bool {
        lock(&self.inner.registry).leave(group, id)
    }

    /// Open connections and their peers.
    pub fn connections(&self) -> Vec<(ConnectionId, PeerAddr)> {
        let reg = lock(&self.inner.registry);
        reg.ids()
            .filter_map(|id| reg.get(id).map(|e| (id, e.peer.clone())))
            .collect()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.registry).len()
    }

    /// Closes connection `id` gracefully (in-flight requests are answered, output is
    /// flushed). Returns whether it was open.
    pub fn close(&self, id: ConnectionId) -> bool {
        match lock(&self.inner.registry).get(id) {
            Some(entry) => {
                entry.request_close();
                true
            }
            None => false,
        }
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
        &self.inner.metrics
    }

    /// Sends `Close` to every connection, waits up to `timeout` for all of them to end,
    /// then forces the rest closed and waits briefly for their threads.
    pub(crate) fn drain(&self, timeout: Duration) {
        {
            let reg = lock(&self.inner.registry);
            reg.for_each_recipient(&Target::All, |_, e| e.request_close());
        }
        if !self.wait_idle(Instant::now() + timeout) {
            log::warn!("shutdown timeout: forcing remaining connections closed");
            let reg = lock(&self.inner.registry);
            reg.for_each_recipient(&Target::All, |_, e| e.kill.shutdown());
            drop(reg);
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
