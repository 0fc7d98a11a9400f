//! [`Context`]: what a handler gets for one request (the shared [`lynn_service::Context`]
//! with this crate's [`ServerHandle`]), [`SyncContext`] for synchronous routes, and the
//! boxed handler type.

use std::sync::Arc;

use lynn_service::{HandlerError, IntoReply, Reply};

use crate::handle::ServerHandle;

/// A handler as stored in the router: the user's closure with its result converted.
pub(crate) type BoxHandler<S> =
    Arc<dyn Fn(Context<S>) -> Result<Reply, HandlerError> + Send + Sync + 'static>;

/// Boxes a user closure.
pub(crate) fn boxed<S, F, R>(f: F) -> BoxHandler<S>
where
    F: Fn(Context<S>) -> R + Send + Sync + 'static,
    R: IntoReply,
{
    Arc::new(move |ctx| f(ctx).into_reply())
}

/// One request, as a handler (or the event stream) sees it: [`id`](lynn_service::Context::id),
/// [`peer`](lynn_service::Context::peer), [`method`](lynn_service::Context::method),
/// [`body`](lynn_service::Context::body), [`state`](lynn_service::Context::state),
/// [`server`](lynn_service::Context::server) and [`reply`](lynn_service::Context::reply).
pub type Context<S = ()> = lynn_service::Context<S, ServerHandle>;

/// What one connection shares with every request it carries.
pub(crate) type Scope<S> = lynn_service::RequestScope<S, ServerHandle>;

/// A message answered in place by a synchronous handler
/// ([`ServerBuilder::route_sync`](crate::ServerBuilder::route_sync)), on the connection's
/// own thread: the same accessors as [`Context`] ([`id`](lynn_service::SyncContext::id),
/// [`peer`](lynn_service::SyncContext::peer), [`method`](lynn_service::SyncContext::method),
/// [`state`](lynn_service::SyncContext::state), [`server`](lynn_service::SyncContext::server)),
/// a [`body`](lynn_service::SyncContext::body) borrowed from the receive buffer, and
/// [`reply`](lynn_service::SyncContext::reply) copying the reply into the send queue.
pub type SyncContext<'a, 'm, S = ()> = lynn_service::SyncContext<'a, 'm, S, ServerHandle>;
