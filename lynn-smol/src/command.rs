//! What a [`Client`](crate::Client) handle asks of its task, and how the task answers.

use bytes::Bytes;
use lynn_proto::ClientError;
use lynn_proto::client_calls::{Answer, Call};

/// Where the task answers one call (a one-slot channel used as a oneshot).
pub(crate) type Ack<T> = async_channel::Sender<Result<T, ClientError>>;

/// A call from a client handle to its task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A send or a request, decided by the core's `ClientCalls`.
    Call(Call<Ack<()>, Ack<Bytes>>),
    /// Close gracefully; `done` is dropped when the task has finished.
    Close { done: async_channel::Sender<()> },
}

/// Passes one answer on to its caller (who may have stopped waiting).
pub(crate) fn answer(a: Answer<Ack<()>, Ack<Bytes>>) {
    match a {
        Answer::Sent(ack, r) => {
            let _ = ack.try_send(r);
        }
        Answer::Replied(w, r) => {
            let _ = w.try_send(r);
        }
    }
}
