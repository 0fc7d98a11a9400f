//! Handlers: user `async fn`s boxed behind one type, synchronous handlers that answer in
//! place, and how a connection task runs an async one (panics caught, the server-wide
//! concurrency limit applied).
//!
//! The boxing and the future-box reuse come from [`lynn_service`] (shared with
//! lynn-tokio): a handler that is ready on its first poll (an echo) costs no allocation,
//! and a synchronous one needs no future at all.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use async_lock::Semaphore;
use futures_util::FutureExt;
use lynn_proto::RequestId;
use lynn_service::dispatch::HandlerOutcome;
use lynn_service::{IntoReply, SyncOutcome};

use crate::context::{Context, SyncContext};
use crate::handle::ServerHandle;

pub(crate) use lynn_service::{FutureSlots, HandlerFn, HandlerFuture, HandlerResult, Route};

/// An `async fn` route's handler, type-erased.
pub(crate) type AsyncHandler<S> = Box<dyn HandlerFn<Context<S>>>;

/// A route's handler, shared by every connection: async, or synchronous (answered in
/// place).
pub(crate) type Handler<S> = Route<AsyncHandler<S>, S, ServerHandle>;

/// A running request: resolves to its id and how the handler ended.
pub(crate) type Running = Pin<Box<dyn Future<Output = (RequestId, HandlerOutcome)> + Send>>;

/// A handler from a function that boxes its own futures.
pub(crate) fn from_fn<S, F>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> HandlerFuture + Send + Sync + 'static,
{
    Route::Async(Box::new(lynn_service::from_fn(f)))
}

/// Boxes an `async fn(Context<S>) -> impl IntoReply`.
pub(crate) fn boxed<S, F, Fut, R>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply + 'static,
{
    Route::Async(Box::new(lynn_service::boxed(f)))
}

/// Boxes `f`, a `fn(&mut SyncContext<S>) -> impl SyncOutcome`.
pub(crate) fn sync<S, F, R>(f: F) -> Handler<S>
where
    F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
    R: SyncOutcome,
{
    Route::Sync(lynn_service::sync(f))
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
/// Without a `limit`, the handler runs inline in a box from `slots` (no allocation when it
/// is ready at once). The first poll uses a no-op waker: a handler that is not ready is
/// boxed into a [`Running`], and the `FuturesUnordered` it is pushed into polls it again
/// at once with the connection task's waker, so no wake-up is lost.
pub(crate) fn start<S>(
    handler: &AsyncHandler<S>,
    ctx: Context<S>,
    id: RequestId,
    limit: Option<&Arc<Semaphore>>,
    slots: &mut FutureSlots,
) -> Started {
    let Some(sem) = limit else {
        let pending =
            match std::panic::catch_unwind(AssertUnwindSafe(|| handler.run_inline(ctx, slots))) {
                Ok(Ok(result)) => return Started::Done(HandlerOutcome::from(result)),
                Ok(Err(pending)) => pending,
                Err(_) => return Started::Done(HandlerOutcome::Panicked),
            };
        let fut = AssertUnwindSafe(pending).catch_unwind();
        return Started::Pending(Box::pin(async move { (id, outcome(fut.await)) }));
    };
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(ctx))) {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind(),
        Err(_) => return Started::Done(HandlerOutcome::Panicked),
    };
    // A free slot is taken at once; otherwise wait for one in the background.
    let Some(slot) = sem.try_acquire_arc() else {
        let sem = Arc::clone(sem);
        return Started::Pending(Box::pin(async move {
            let _slot = sem.acquire_arc().await;
            (id, outcome(fut.await))
        }));
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

/// How a handler's (panic-caught) result ends its request.
fn outcome(result: Result<HandlerResult, Box<dyn Any + Send>>) -> HandlerOutcome {
    match result {
        Ok(result) => HandlerOutcome::from(result),
        Err(_) => HandlerOutcome::Panicked,
    }
}
