//! Handlers: user `async fn`s boxed behind one trait ([`lynn_handler`], shared with
//! lynn-smol). A handler that is ready on its first poll (an echo) runs in a future box the
//! connection keeps (`FutureSlots`) and costs no allocation.

use std::sync::Arc;

pub(crate) use lynn_handler::{FutureSlots, HandlerFn, HandlerFuture, Pending};

use super::Context;

/// A route's handler, shared by every connection.
pub(crate) type Handler<S> = Arc<dyn HandlerFn<Context<S>>>;

/// A handler from a function that boxes its own futures.
pub(crate) fn from_fn<S, F>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> HandlerFuture + Send + Sync + 'static,
{
    Arc::new(lynn_handler::from_fn(f))
}

/// Boxes `f` (an `async fn(Context<S>) -> impl IntoReply` or an equivalent closure).
pub(crate) fn boxed<S, F, Fut, R>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: lynn_proto::IntoReply,
{
    Arc::new(lynn_handler::boxed(f))
}
