//! What a [`Client`](crate::Client) handle asks of its task.

use bytes::Bytes;
use lynn_proto::ClientError;

/// Where the task answers one call (a one-slot channel used as a oneshot).
pub(crate) type Ack<T> = async_channel::Sender<Result<T, ClientError>>;

/// A call from a client handle to its task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send one message.
    Send {
        method: u16,
        body: Bytes,
        ack: Ack<()>,
    },
    /// Send one message and wait for the next message with the same method.
    Request {
        method: u16,
        body: Bytes,
        reply: Ack<Bytes>,
    },
    /// Close gracefully; `done` is dropped when the task has finished.
    Close { done: async_channel::Sender<()> },
}

impl Command {
    /// Fails the call with `error`.
    pub(crate) fn fail(self, error: ClientError) {
        match self {
            Command::Send { ack, .. } => {
                let _ = ack.try_send(Err(error));
            }
            Command::Request { reply, .. } => {
                let _ = reply.try_send(Err(error));
            }
            Command::Close { .. } => {}
        }
    }
}
