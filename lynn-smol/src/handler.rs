//! Handlers: user `async fn`s boxed behind one type, and how a connection task runs one
//! (panics caught, the server-wide concurrency limit applied).

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

/// Starts `handler` for one request. A panic, in the call or in the future, becomes
/// [`HandlerOutcome::Panicked`]; with a `limit`, the handler waits for a server-wide slot first.
pub(crate) fn start<S>(
    handler: &Handler<S>,
    ctx: Context<S>,
    id: RequestId,
    limit: Option<Arc<Semaphore>>,
) -> Running {
    let fut = std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx)));
    Box::pin(async move {
        let _slot = match &limit {
            Some(sem) => Some(sem.acquire_arc().await),
            None => None,
        };
        let outcome = match fut {
            Err(_) => HandlerOutcome::Panicked,
            Ok(fut) => match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(result) => HandlerOutcome::from(result),
                Err(_) => HandlerOutcome::Panicked,
            },
        };
        (id, outcome)
    })
}
