//! Answering a message in place: [`Connection::handle_received_inline`](crate::Connection::handle_received_inline) lends each message
//! that may be answered at once (nothing before it still waits for its reply) to a callback
//! as an [`InlineMessage`], whose body is a slice of the receive buffer and whose reply is
//! encoded straight into the send queue. No owned request, no event, no completion call:
//! the cheapest way through the core, for handlers that never wait.
//!
//! The callback chooses per message: [`Inline::Answered`], or [`Inline::Deferred`] to get
//! the message as an ordinary [`Event::Message`](crate::Event::Message) instead (for
//! example because its route is asynchronous). Messages after a deferred one are deferred
//! too until it completes, so replies still leave in request order.
//!
//! ```
//! use lynn_proto::codec::{self, FrameKind, Marks};
//! use lynn_proto::{Connection, ConnectionConfig, Event, Inline, Instant};
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
//! for method in [1, 2, 1] {
//!     let frame = codec::encode_to_bytes(Marks::default(), FrameKind::Message, method, b"hi", 1 << 20);
//!     conn.receive_buffer().extend_from_slice(&frame.unwrap());
//! }
//! conn.handle_received_inline(now, |msg| {
//!     if msg.method() != 1 {
//!         return Inline::Deferred;
//!     }
//!     let body = msg.body();
//!     msg.reply(7, body);
//!     Inline::Answered
//! });
//! // The first message was answered in place; the second is an event, and the third waits
//! // behind it (deferred too), so that replies keep their order.
//! assert!(conn.wants_write());
//! assert!(matches!(conn.poll_event(), Some(Event::Message(r)) if r.method == 2));
//! assert!(matches!(conn.poll_event(), Some(Event::Message(r)) if r.method == 1));
//! ```

use bytes::Bytes;

use crate::codec::{self, FrameKind, Marks};
use crate::connection::{Request, RequestId};
use crate::error::EncodeError;
use crate::sendq::SendQueue;

/// What the callback of [`Connection::handle_received_inline`] did with a message.
///
/// [`Connection::handle_received_inline`]: crate::Connection::handle_received_inline
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inline {
    /// Handled, with or without a reply: the message is done.
    Answered,
    /// Not handled here: deliver it as [`Event::Message`](crate::Event::Message). A
    /// callback that already replied cannot defer; the message then counts as answered.
    Deferred,
}

/// A message lent from the receive buffer, answerable in place; or, made with
/// [`detached`](Self::detached), a queued [`Request`] answered by the same kind of handler.
#[derive(Debug)]
pub struct InlineMessage<'a> {
    pub(crate) id: RequestId,
    pub(crate) method: u16,
    pub(crate) body: &'a [u8],
    pub(crate) out: Out<'a>,
    pub(crate) reply: Replied,
}

/// Whether a message was replied to. One field rather than three (a flag, a length, an
/// error): the path that answers in place sets it up once per message.
#[derive(Debug)]
pub(crate) enum Replied {
    /// No reply yet.
    No,
    /// Replied; `body_len` is the reply's body length (to withdraw a reply queued in place).
    Yes { body_len: usize },
    /// The last reply given was too large for the peer (nothing was queued).
    Refused(EncodeError),
}

/// Where a reply goes.
#[derive(Debug)]
pub(crate) enum Out<'a> {
    /// Encoded into the send queue at once (nothing before the message is owed).
    Queue {
        sendq: &'a mut SendQueue,
        marks: Marks,
        peer_max_frame_len: u64,
    },
    /// Kept for [`Connection::complete`](crate::Connection::complete).
    Keep(Option<(u16, Bytes)>),
}

impl<'a> InlineMessage<'a> {
    /// A message for `req`, a request delivered as [`Event::Message`](crate::Event::Message)
    /// (a synchronous route's message that could not be answered in place, because
    /// earlier requests were still in flight). Its reply is kept rather than queued: take it
    /// with [`into_reply`](Self::into_reply) and pass it to
    /// [`Connection::complete`](crate::Connection::complete).
    pub fn detached(req: &'a Request) -> Self {
        InlineMessage {
            id: req.id,
            method: req.method,
            body: &req.body,
            out: Out::Keep(None),
            reply: Replied::No,
        }
    }

    /// The message's position on its connection (ids are shared with
    /// [`Request::id`](crate::Request::id)).
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The route key.
    pub fn method(&self) -> u16 {
        self.method
    }

    /// The payload: a slice of the receive buffer, valid for this call only.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Replies `(method, body)` to the sender, copying `body` (into the send queue, or for
    /// a [`detached`](Self::detached) message into the kept reply). One reply per message,
    /// like lynn-service's `Reply::to_sender`: once one is given, later calls
    /// are ignored. A body
    /// too large for the peer is not queued; the refusal is kept in
    /// [`refused`](Self::refused), as a runtime reports a refused completion.
    #[inline]
    pub fn reply(&mut self, method: u16, body: &[u8]) {
        if let Replied::Yes { .. } = self.reply {
            return;
        }
        match &mut self.out {
            Out::Queue {
                sendq,
                marks,
                peer_max_frame_len,
            } => {
                let header = codec::encode_header(
                    *marks,
                    FrameKind::Message,
                    method,
                    body.len(),
                    *peer_max_frame_len,
                );
                match header {
                    Ok(header) => {
                        sendq.push_copied(&header, body, codec::encode_tail(*marks));
                        // Also after a refused reply: the message was answered.
                        self.reply = Replied::Yes {
                            body_len: body.len(),
                        };
                    }
                    Err(e) => self.reply = Replied::Refused(e),
                }
            }
            Out::Keep(kept) => {
                *kept = Some((method, Bytes::copy_from_slice(body)));
                self.reply = Replied::Yes {
                    body_len: body.len(),
                };
            }
        }
    }

    /// Whether a reply was given.
    pub fn replied(&self) -> bool {
        matches!(self.reply, Replied::Yes { .. })
    }

    /// Takes the reply back (it was the last frame queued), for a handler that failed
    /// after replying: as with an async handler, a failed request completes without a
    /// reply.
    pub fn withdraw_reply(&mut self) {
        let Replied::Yes { body_len } = self.reply else {
            return;
        };
        self.reply = Replied::No;
        match &mut self.out {
            Out::Queue { sendq, .. } => sendq.drop_last_copied(codec::OVERHEAD + body_len),
            Out::Keep(kept) => *kept = None,
        }
    }

    /// Why the reply was not queued, if it was refused.
    pub fn refused(&self) -> Option<&EncodeError> {
        match &self.reply {
            Replied::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// The reply of a [`detached`](Self::detached) message, for `Connection::complete`
    /// (`None` for a message answered in place: its reply is already queued).
    pub fn into_reply(self) -> Option<(u16, Bytes)> {
        match self.out {
            Out::Keep(kept) => kept,
            Out::Queue { .. } => None,
        }
    }
}
