//! Handlers: user `async fn`s boxed behind one type, and how a connection task runs one
//! (panics caught, the server-wide concurrency limit applied).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use async_lock::Semaphore;
use futures_util::FutureExt;
use lynn_proto::dispatch::HandlerOutcome;
use lynn_proto::{HandlerError, IntoReply, Reply, RequestId};

use crate::context::Context;

/// A boxed handler future.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, HandlerError>> + Send>>;

/// A route's handler, type-erased.
pub(crate) type Handler<S> = Box<dyn Fn(Context<S>) -> HandlerFuture + Send + Sync>;

/// A running request: resolves to its id and how the handler ended.
pub(crate) type Running = Pin<Box<dyn Future<Output = (RequestId, HandlerOutcome)> + Send>>;

/// Boxes an `async fn(Context<S>) -> impl IntoReply`.
pub(crate) fn boxed<S, F, Fut, R>(f: F) -> Handler<S>
where
    F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply + 'static,
{
    Box::new(move |ctx| {
        let fut = f(ctx);
        Box::pin(async move { fut.await.into_reply() })
    })
}

/// How [`start`] left a request.
pub(crate) enum Started {
    /// The handler finished on its first poll (an echo does): answer it now.
    Done(HandlerOutcome),
    /// The handler is waiting (for IO, a timer, or a server-wide slot): keep polling it.
    Pending(Running),
}

/// Starts `handler` for one request and polls it once. A panic, in the call or in the
/// future, becomes [`HandlerOutcome::Panicked`]; with a `limit`, the handler waits for a
/// server-wide slot first (and holds it until it finishes).
///
/// The first poll uses a no-op waker: a handler that is not ready is boxed into a
/// [`Running`], and the `FuturesUnordered` it is pushed into polls it again at once with
/// the connection task's waker, so no wake-up is lost.
pub(crate) fn start<S>(
    handler: &Handler<S>,
    ctx: Context<S>,
    id: RequestId,
    limit: Option<&Arc<Semaphore>>,
) -> Started {
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx))) {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind(),
        Err(_) => return Started::Done(HandlerOutcome::Panicked),
    };
    // A free slot is taken at once; otherwise wait for one in the background.
    let slot = match limit {
        None => None,
        Some(sem) => match sem.try_acquire_arc() {
            Some(slot) => Some(slot),
            None => {
                let sem = Arc::clone(sem);
                return Started::Pending(Box::pin(async move {
                    let _slot = sem.acquire_arc().await;
                    (id, outcome(fut.await))
                }));
            }
        },
    };
    let mut fut = fut;
    match (&mut fut).now_or_never() {
        Some(result) => Started::Done(outcome(result)),
        None => Started::Pending(Box::pin(async move {
            let _slot = slot;
            (id, outcome(fut.await))
        })),
    }
}

fn outcome(result: Result<Result<Reply, HandlerError>, Box<dyn Any + Send>>) -> HandlerOutcome {
    match result {
        Ok(result) => HandlerOutcome::from(result),
        Err(_) => HandlerOutcome::Panicked,
    }
}
