//! Handlers: user `async fn`s boxed behind one trait, and synchronous handlers that answer
//! in place. A handler that is ready on its first
//! poll (an echo) runs in a future box the connection keeps (`FutureSlots`) and costs no
//! allocation; a synchronous one needs no future at all.

use std::sync::Arc;

pub(crate) use crate::{FutureSlots, HandlerFn, HandlerFuture, Pending, Route};

use super::{Context, ServerHandle, SyncContext};

/// A route's handler, shared by every connection.
pub(crate) type Handler<S> = Route<Arc<dyn HandlerFn<Context<S>>>, S, ServerHandle>;

/// A handler from a function that boxes its own futures.
pub(crate) fn from_fn<S, F>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> HandlerFuture + Send + Sync + 'static,
{
    Route::Async(Arc::new(crate::from_fn(f)))
}

/// Boxes `f` (an `async fn(Context<S>) -> impl IntoReply` or an equivalent closure).
pub(crate) fn boxed<S, F, Fut, R>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: crate::IntoReply,
{
    Route::Async(Arc::new(crate::boxed(f)))
}

/// Boxes `f`, a `fn(&mut SyncContext<S>) -> impl SyncOutcome`.
pub(crate) fn sync<S, F, R>(f: F) -> Handler<S>
where
    F: Fn(&mut SyncContext<'_, '_, S>) -> R + Send + Sync + 'static,
    R: crate::SyncOutcome,
{
    Route::Sync(crate::sync(f))
}
