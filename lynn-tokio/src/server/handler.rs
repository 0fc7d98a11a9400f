//! Handlers: user `async fn`s boxed behind one type so the router can hold them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lynn_proto::{HandlerError, IntoReply, Reply};

use super::Context;

/// The future a boxed handler returns.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, HandlerError>> + Send>>;

/// A route's handler, shared by every connection.
pub(crate) type Handler<S> = Arc<dyn Fn(Context<S>) -> HandlerFuture + Send + Sync>;

/// Boxes `f` (an `async fn(Context<S>) -> impl IntoReply` or an equivalent closure).
pub(crate) fn boxed<S, F, Fut, R>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    Arc::new(move |ctx| {
        let fut = f(ctx);
        Box::pin(async move { fut.await.into_reply() })
    })
}
