//! [`Context`]: what a handler knows about the request it handles (the shared
//! [`crate::Context`] with the server's [`ServerHandle`]).

use super::ServerHandle;

/// A request as a handler sees it: [`id`](crate::Context::id),
/// [`peer`](crate::Context::peer), [`method`](crate::Context::method),
/// [`body`](crate::Context::body), [`state`](crate::Context::state),
/// [`server`](crate::Context::server) and [`reply`](crate::Context::reply).
pub type Context<S = ()> = crate::Context<S, ServerHandle>;

/// What one connection shares with every request it carries.
pub(crate) type Scope<S> = crate::RequestScope<S, ServerHandle>;

/// A message answered in place by a synchronous handler
/// ([`ServerBuilder::route_sync`](super::ServerBuilder::route_sync)): the same accessors as
/// [`Context`], a body borrowed from the receive buffer, and
/// [`reply`](crate::SyncContext::reply) copying the reply into the send queue.
pub type SyncContext<'a, 'm, S = ()> = crate::SyncContext<'a, 'm, S, ServerHandle>;
