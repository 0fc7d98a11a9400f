//! [`Switchboard`]: a server's table of open connections as every runtime uses it: direct
//! sends, fanout encoded once, groups, closes, and the bookkeeping of a connection's life
//! ([`Registration`]).
//!
//! A runtime supplies what it keeps per connection as a [`Mailbox`] (the sending half of
//! that connection's bounded outbound channel and its peer address). The table lock is
//! taken once per send, fanout, join, leave, connect and disconnect, never once per
//! recipient and never on the request/reply path.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use lynn_service::switchboard::{Mailbox, Refused, Switchboard};
//! use lynn_proto::admission::AdmissionConfig;
//! use lynn_proto::{Instant, PeerAddr, ServerConfig};
//! use lynn_service::Metrics;
//! use lynn_service::{Outbound, Target};
//! use lynn_service::SharedAdmission;
//!
//! /// A mailbox that keeps what it gets (a runtime would wrap a channel sender).
//! struct Inbox(PeerAddr, Mutex<Vec<Outbound>>);
//! impl Mailbox for Inbox {
//!     fn offer(&self, out: Outbound) -> Result<(), Refused> {
//!         self.1.lock().unwrap().push(out);
//!         Ok(())
//!     }
//!     fn peer(&self) -> &PeerAddr { &self.0 }
//!     fn close(&self) -> bool { true }
//! }
//!
//! let board = Arc::new(Switchboard::new(&ServerConfig::default(), Arc::new(Metrics::default())));
//! let admission = SharedAdmission::new(AdmissionConfig::default()).unwrap();
//! let peer = PeerAddr::Tcp("127.0.0.1:5000".parse().unwrap());
//! let seat = admission.try_admit(peer.admission_ip(), Instant::now()).unwrap();
//! let reg = board.register(Inbox(peer, Mutex::new(Vec::new())), seat);
//! assert_eq!(board.fanout(&Target::All, 1, &"hi".into()), Ok(1));
//! drop(reg); // the connection ended: unregistered, counted, its seat released
//! assert_eq!((board.len(), admission.open()), (0, 0));
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::Metrics;
use crate::Outbound;
use crate::Target;
use crate::{Registry, Seat};
use lynn_proto::codec::{self, FrameKind, Marks};
use lynn_proto::groups::GroupError;
use lynn_proto::{CloseReason, EncodeError};
use lynn_proto::{ConnectionId, ServerConfig};
use lynn_proto::{PeerAddr, SendToError};

/// Why a [`Mailbox`] refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The connection's outbound queue is full (a slow consumer).
    Full,
    /// The connection is gone.
    Closed,
}

/// What a runtime keeps per connection in the [`Switchboard`].
pub trait Mailbox {
    /// Queues `out` for the connection's task without waiting.
    fn offer(&self, out: Outbound) -> Result<(), Refused>;
    /// Where the connection comes from.
    fn peer(&self) -> &PeerAddr;
    /// Asks the connection to close gracefully, without waiting. Returns whether the
    /// request was delivered (false when the connection is already gone).
    ///
    /// Decide whether the connection is there before making the request, not after: the
    /// request can end the connection at once (nothing in flight, nothing to flush), on
    /// another thread, before this returns. Its task may then have let go of its side
    /// (while the table, locked by the caller, still lists it), and a check made after the
    /// request would report an open connection as gone.
    fn close(&self) -> bool;
}

/// The open connections of one server, shared by its tasks (or threads) and handles.
#[derive(Debug)]
pub struct Switchboard<M> {
    registry: Mutex<Registry<M>>,
    metrics: Arc<Metrics>,
    marks: Marks,
    peer_max_frame_len: u64,
}

impl<M: Mailbox> Switchboard<M> {
    /// An empty table for a server with `config`, counting into `metrics`.
    pub fn new(config: &ServerConfig, metrics: Arc<Metrics>) -> Self {
        Switchboard {
            registry: Mutex::new(Registry::new(config.groups)),
            metrics,
            marks: config.connection.marks,
            peer_max_frame_len: config.connection.peer_max_frame_len,
        }
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Enters an admitted connection (it becomes reachable) and counts it open. Dropping
    /// the returned [`Registration`] undoes all of it, on every exit path.
    pub fn register(self: &Arc<Self>, mailbox: M, seat: Seat) -> Registration<M> {
        let id = self.lock().insert(mailbox);
        self.metrics.connection_opened();
        Registration {
            board: Arc::clone(self),
            id,
            seat: Some(seat),
            reason: None,
        }
    }

    /// Queues one message for connection `id`, never waiting.
    pub fn send(&self, id: ConnectionId, method: u16, body: Bytes) -> Result<(), SendToError> {
        let max = codec::max_body_len(self.peer_max_frame_len);
        if body.len() as u64 > max {
            return Err(EncodeError::BodyTooLarge {
                body_len: body.len(),
                max_body_len: max,
            }
            .into());
        }
        let reg = self.lock();
        let mailbox = reg.get(id).ok_or(SendToError::UnknownConnection(id))?;
        mailbox
            .offer(Outbound::Message { method, body })
            .map_err(|refused| match refused {
                Refused::Full => SendToError::QueueFull(id),
                Refused::Closed => SendToError::UnknownConnection(id),
            })
    }

    /// Sends one message to `target`: encoded once, the bytes shared by every recipient,
    /// one table lock in all. A recipient that refuses is skipped and counted with
    /// [`Metrics::send_refused`]; it never holds up the others. Returns how many recipients
    /// got it queued, or the encode error when the body is too large for the peers.
    pub fn fanout(&self, target: &Target, method: u16, body: &Bytes) -> Result<usize, EncodeError> {
        let frame = codec::encode_to_bytes(
            self.marks,
            FrameKind::Message,
            method,
            body,
            self.peer_max_frame_len,
        )?;
        let (mut sent, mut skipped) = (0, 0u64);
        self.lock().for_each_recipient(target, |_, mailbox| {
            match mailbox.offer(Outbound::Encoded(frame.clone())) {
                Ok(()) => sent += 1,
                Err(_) => skipped += 1,
            }
        });
        if skipped > 0 {
            self.metrics.send_refused(skipped);
        }
        Ok(sent)
    }

    /// Adds `id` to `group`; `Ok(false)` when already a member or not connected.
    pub fn join(&self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        self.lock().join(group, id)
    }

    /// Removes `id` from `group`; returns whether it was a member.
    pub fn leave(&self, group: &str, id: ConnectionId) -> bool {
        self.lock().leave(group, id)
    }

    /// The open connections and their peers.
    pub fn connections(&self) -> Vec<(ConnectionId, PeerAddr)> {
        let reg = self.lock();
        let mut all = Vec::with_capacity(reg.len());
        reg.for_each_recipient(&Target::All, |id, m| all.push((id, m.peer().clone())));
        all
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Asks connection `id` to close gracefully; returns whether it was open.
    pub fn close(&self, id: ConnectionId) -> bool {
        self.lock().get(id).is_some_and(Mailbox::close)
    }

    /// Asks every open connection to close gracefully (the start of a shutdown).
    pub fn close_all(&self) {
        self.for_each(|_, m| {
            m.close();
        });
    }

    /// Calls `f` for every open connection, with the table locked.
    pub fn for_each(&self, mut f: impl FnMut(ConnectionId, &M)) {
        self.lock()
            .for_each_recipient(&Target::All, |id, m| f(id, m));
    }

    /// The table is consistent after a panic elsewhere (every change is one registry
    /// call), so a poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, Registry<M>> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One connection's place in a [`Switchboard`], from registration to its end. Dropping it
/// (normal close, error, panic, a task cut short at the end of a shutdown) releases the
/// admission seat, removes the connection and its group memberships, and counts the close
/// with the reason set by [`set_reason`](Self::set_reason) (`Local` when none was set).
#[derive(Debug)]
#[must_use = "dropping a Registration unregisters the connection at once"]
pub struct Registration<M: Mailbox> {
    board: Arc<Switchboard<M>>,
    id: ConnectionId,
    seat: Option<Seat>,
    reason: Option<CloseReason>,
}

impl<M: Mailbox> Registration<M> {
    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// Records why the connection ended (counted when this is dropped).
    pub fn set_reason(&mut self, reason: CloseReason) {
        self.reason = Some(reason);
    }
}

impl<M: Mailbox> Drop for Registration<M> {
    fn drop(&mut self) {
        // Admission first: once the connection leaves the table (what `len` reports), its
        // place is already free for the next peer.
        drop(self.seat.take());
        self.board.lock().remove(self.id);
        let reason = self.reason.take().unwrap_or(CloseReason::Local);
        self.board.metrics.connection_closed(&reason);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::SharedAdmission;
    use lynn_proto::Instant;
    use lynn_proto::admission::AdmissionConfig;

    struct Slot {
        peer: PeerAddr,
        room: Cell<usize>,
        got: Mutex<Vec<Outbound>>,
        closed: Cell<bool>,
    }

    impl Mailbox for Slot {
        fn offer(&self, out: Outbound) -> Result<(), Refused> {
            if self.room.get() == 0 {
                return Err(Refused::Full);
            }
            self.room.set(self.room.get() - 1);
            self.got.lock().unwrap().push(out);
            Ok(())
        }
        fn peer(&self) -> &PeerAddr {
            &self.peer
        }
        fn close(&self) -> bool {
            self.closed.set(true);
            true
        }
    }

    fn slot(room: usize) -> Slot {
        Slot {
            peer: PeerAddr::Unix(None),
            room: Cell::new(room),
            got: Mutex::new(Vec::new()),
            closed: Cell::new(false),
        }
    }

    fn seat(admission: &SharedAdmission) -> Seat {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        admission.try_admit(ip, Instant::now()).unwrap()
    }

    #[test]
    fn fanout_skips_full_recipients_and_counts_them() {
        let admission = SharedAdmission::new(AdmissionConfig::default()).unwrap();
        let board = Arc::new(Switchboard::new(&ServerConfig::default(), Arc::default()));
        let a = board.register(slot(1), seat(&admission));
        let b = board.register(slot(0), seat(&admission));
        assert_eq!(board.fanout(&Target::All, 3, &Bytes::from("x")), Ok(1));
        assert!(board.render_contains("lynn_send_queue_full_total 1"));
        assert_eq!(
            board.send(b.id(), 1, "y".into()),
            Err(SendToError::QueueFull(b.id()))
        );
        assert_eq!(
            board.send(a.id(), 1, "y".into()),
            Err(SendToError::QueueFull(a.id()))
        );
        drop((a, b));
        assert_eq!((board.len(), admission.open()), (0, 0));
    }

    #[test]
    fn oversized_bodies_are_refused_before_any_recipient() {
        let config = ServerConfig::builder().max_frame_len(64).build().unwrap();
        let board: Switchboard<Slot> = Switchboard::new(&config, Arc::default());
        let big = Bytes::from(vec![0; 100]);
        assert!(board.fanout(&Target::All, 1, &big).is_err());
        assert!(matches!(
            board.send(ConnectionId(1), 1, big),
            Err(SendToError::Encode(_))
        ));
    }

    #[test]
    fn registration_counts_the_close_reason_and_leaves_groups() {
        let admission = SharedAdmission::new(AdmissionConfig::default()).unwrap();
        let board = Arc::new(Switchboard::new(&ServerConfig::default(), Arc::default()));
        let mut reg = board.register(slot(4), seat(&admission));
        let id = reg.id();
        assert_eq!(board.join("g", id), Ok(true));
        assert!(board.close(id));
        reg.set_reason(CloseReason::IdleTimeout);
        drop(reg);
        assert!(!board.close(id));
        assert_eq!(board.metrics().closed_with("idle_timeout"), 1);
        assert_eq!(board.metrics().active_connections(), 0);
        assert_eq!(
            board.fanout(&Target::Group("g".into()), 1, &"z".into()),
            Ok(0)
        );
    }

    impl Switchboard<Slot> {
        fn render_contains(&self, text: &str) -> bool {
            self.metrics.render().contains(text)
        }
    }
}
