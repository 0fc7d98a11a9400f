//! [`Context`]: what a handler knows about the request it serves (the core's
//! [`lynn_proto::Context`] with this crate's [`ServerHandle`]).

use crate::handle::ServerHandle;

/// One request, as a handler sees it: [`id`](lynn_proto::Context::id),
/// [`peer`](lynn_proto::Context::peer), [`method`](lynn_proto::Context::method),
/// [`body`](lynn_proto::Context::body), [`state`](lynn_proto::Context::state),
/// [`server`](lynn_proto::Context::server) and [`reply`](lynn_proto::Context::reply).
pub type Context<S = ()> = lynn_proto::Context<S, ServerHandle>;

/// What one connection shares with every request it carries.
pub(crate) type Scope<S> = lynn_proto::RequestScope<S, ServerHandle>;

/// A message answered in place by a synchronous handler
/// ([`ServerBuilder::route_sync`](crate::ServerBuilder::route_sync)): the same accessors as
/// [`Context`], a body borrowed from the receive buffer, and
/// [`reply`](lynn_proto::SyncContext::reply) copying the reply into the send queue.
pub type SyncContext<'a, 'm, S = ()> = lynn_proto::SyncContext<'a, 'm, S, ServerHandle>;
