//! Types the adapters share that are not protocol: what a handler may return
//! ([`IntoReply`], [`HandlerError`]) and what a connection's task receives from other tasks
//! ([`Outbound`]).

use std::fmt;

use bytes::Bytes;
use thiserror::Error;

use crate::reply::Reply;

/// A handler failed. Logged and counted by the runtime; the request is completed without a
/// reply and the connection carries on.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("handler failed: {0}")]
pub struct HandlerError(pub String);

/// What a handler may return: [`Reply`], `()` (no reply), `Option<Reply>`, or a `Result` of
/// any of these with an error that can be displayed.
pub trait IntoReply {
    /// The reply, or why the handler failed.
    fn into_reply(self) -> Result<Reply, HandlerError>;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Result<Reply, HandlerError> {
        Ok(self)
    }
}

impl IntoReply for () {
    fn into_reply(self) -> Result<Reply, HandlerError> {
        Ok(Reply::none())
    }
}

impl IntoReply for Option<Reply> {
    fn into_reply(self) -> Result<Reply, HandlerError> {
        Ok(self.unwrap_or_default())
    }
}

impl<R: IntoReply, E: fmt::Display> IntoReply for Result<R, E> {
    fn into_reply(self) -> Result<Reply, HandlerError> {
        self.map_err(|e| HandlerError(e.to_string()))?.into_reply()
    }
}

/// A message for a connection's task, sent through its bounded outbound channel by other
/// connections, broadcasts, or the server handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// Encode and send one message frame.
    Message {
        /// Method id.
        method: u16,
        /// Body.
        body: Bytes,
    },
    /// Send bytes that already hold whole frames (a broadcast encoded once, shared).
    Encoded(Bytes),
    /// Close gracefully: flush, then close with [`CloseReason::Local`](lynn_proto::CloseReason::Local).
    Close,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_reply_variants() {
        assert_eq!(().into_reply(), Ok(Reply::none()));
        let r = Reply::to_sender(1, "x");
        assert_eq!(Some(r.clone()).into_reply(), Ok(r.clone()));
        assert_eq!(Ok::<_, String>(r.clone()).into_reply(), Ok(r));
        let e = Err::<Reply, _>("boom").into_reply().unwrap_err();
        assert_eq!(e, HandlerError("boom".into()));
    }
}
