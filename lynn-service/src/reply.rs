//! [`Reply`]: what a server handler wants sent, and to whom.
//!
//! A reply to the sender goes back through the sender's [`Connection`](lynn_proto::Connection)
//! in request order. Everything else (given connections, a group, everyone) is a
//! [`Fanout`]: the runtime encodes it once and shares the bytes among the recipients.
//!
//! ```
//! use lynn_proto::ConnectionId;
//! use lynn_service::{Reply, Target};
//!
//! let reply = Reply::to_sender(1, "ok").and(Target::Group("lobby".into()), 7, "joined");
//! let (to_sender, fanout) = reply.into_parts();
//! assert_eq!(to_sender.unwrap().0, 1);
//! assert_eq!(fanout[0].target, Target::Group("lobby".into()));
//! ```

use bytes::Bytes;

use lynn_proto::ConnectionId;

/// Recipients of a [`Fanout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// These connections (unknown or closed ones are skipped).
    Connections(Vec<ConnectionId>),
    /// Every member of a named group.
    Group(String),
    /// Every open connection.
    All,
    /// Every open connection but one (typically the sender).
    AllExcept(ConnectionId),
}

/// One message for recipients other than the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// Who receives it.
    pub target: Target,
    /// Its method id.
    pub method: u16,
    /// Its body, shared by every recipient.
    pub body: Bytes,
}

/// What a handler wants sent. The default sends nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Reply {
    to_sender: Option<(u16, Bytes)>,
    fanout: Vec<Fanout>,
}

impl Reply {
    /// Send nothing.
    pub fn none() -> Self {
        Reply::default()
    }

    /// Answer the sender (in request order).
    pub fn to_sender(method: u16, body: impl Into<Bytes>) -> Self {
        Reply {
            to_sender: Some((method, body.into())),
            fanout: Vec::new(),
        }
    }

    /// Send to `target` only (lynn_tcp's `HandlerResult::new_with_send`).
    pub fn to(target: Target, method: u16, body: impl Into<Bytes>) -> Self {
        Reply::none().and(target, method, body)
    }

    /// Also send to `target`.
    pub fn and(mut self, target: Target, method: u16, body: impl Into<Bytes>) -> Self {
        self.fanout.push(Fanout {
            target,
            method,
            body: body.into(),
        });
        self
    }

    /// The answer to the sender, if any.
    pub fn sender_reply(&self) -> Option<&(u16, Bytes)> {
        self.to_sender.as_ref()
    }

    /// The messages for other recipients.
    pub fn fanout(&self) -> &[Fanout] {
        &self.fanout
    }

    /// Splits into the answer to the sender and the messages for others.
    pub fn into_parts(self) -> (Option<(u16, Bytes)>, Vec<Fanout>) {
        (self.to_sender, self.fanout)
    }
}

impl From<()> for Reply {
    fn from((): ()) -> Self {
        Reply::none()
    }
}
