//! [`Context`]: what a handler knows about the request it handles (the shared
//! [`lynn_service::Context`] with this crate's [`ServerHandle`]).

use super::ServerHandle;

/// A request as a handler sees it: [`id`](lynn_service::Context::id),
/// [`peer`](lynn_service::Context::peer), [`method`](lynn_service::Context::method),
/// [`body`](lynn_service::Context::body), [`state`](lynn_service::Context::state),
/// [`server`](lynn_service::Context::server) and [`reply`](lynn_service::Context::reply).
pub type Context<S = ()> = lynn_service::Context<S, ServerHandle>;

/// What one connection shares with every request it carries.
pub(crate) type Scope<S> = lynn_service::RequestScope<S, ServerHandle>;

/// A message answered in place by a synchronous handler
/// ([`ServerBuilder::route_sync`](super::ServerBuilder::route_sync)): the same accessors as
/// [`Context`], a body borrowed from the receive buffer, and
/// [`reply`](lynn_service::SyncContext::reply) copying the reply into the send queue.
pub type SyncContext<'a, 'm, S = ()> = lynn_service::SyncContext<'a, 'm, S, ServerHandle>;
