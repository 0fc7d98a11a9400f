//! The server, written once for every runtime: [`Server::builder`] → [`ServerBuilder`] →
//! [`Server`] → `serve`.
//!
//! - **One task per connection** owns the socket and its `lynn_proto::Connection`. It reads
//!   only after readiness, straight into the connection's receive buffer (idle connections
//!   hold no buffer), runs that connection's handlers inside itself (up to
//!   `max_in_flight`; replies leave in request order), writes all ready output with one
//!   vectored write, and keeps one timer at the connection's next deadline.
//! - **Sends between connections** go through a bounded inbox per connection. The
//!   connection table (id → inbox) is locked once per direct send or fanout, never per
//!   recipient and never on the request/reply path. A broadcast is encoded once and its
//!   bytes shared; a recipient whose queue is full is skipped, not waited for.
//! - **Admission** (connection limits, per-IP limits, connection rate) is checked once per
//!   accept; the slot is released on every exit path of the connection.
//! - **Shutdown** stops accepting, closes every connection gracefully (requests in flight
//!   are answered and flushed), waits up to `shutdown_timeout`, then ends the rest.

mod budget;
mod builder;
mod context;
mod events;
mod handle;
mod handler;
mod inbox;
mod io;
mod serve;
mod task;
mod upgrade;

use std::sync::Arc;

use async_lock::Semaphore;
use lynn_proto::ConnectionConfig;
use lynn_proto::router::Router;

use crate::Metrics;

pub use builder::ServerBuilder;
pub use context::{Context, SyncContext};
pub use events::{Responder, ServerEvent, ServerEvents};
pub use handle::ServerHandle;
pub use serve::Server;

use handler::Handler;

/// What every connection task of one server shares (one `Arc`).
pub(crate) struct App<S, R> {
    pub(crate) router: Router<Handler<S>>,
    /// Some route is synchronous: received messages are offered to be answered in place.
    /// Without one, offering each message costs a route lookup for nothing.
    pub(crate) sync_routes: bool,
    /// The state and handle every connection's [`Scope`](context::Scope) points to.
    pub(crate) scope: Arc<crate::ServerScope<S, ServerHandle>>,
    pub(crate) events: Option<async_channel::Sender<ServerEvent<S>>>,
    pub(crate) handle: ServerHandle,
    /// The global handler limit (`max_concurrent_handlers`), if any.
    pub(crate) limit: Option<Arc<Semaphore>>,
    /// One copy for every connection (each `Connection` reads its limits from it).
    pub(crate) connection: Arc<ConnectionConfig>,
    pub(crate) outbound_queue: usize,
    pub(crate) socket: lynn_proto::SocketOptions,
    /// Memory held by large frames still arriving, across connections.
    pub(crate) budget: budget::SharedBudget,
    /// The server's TLS, if any: every connection handshakes first.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::ServerTls>,
    pub(crate) rt: R,
}

impl<S, R> App<S, R> {
    /// Whether `router` has a synchronous route or fallback.
    pub(crate) fn has_sync_route(router: &Router<Handler<S>>) -> bool {
        let sync = |h: Option<&Handler<S>>| matches!(h, Some(crate::Route::Sync(_)));
        router.methods().any(|m| sync(router.get(m))) || sync(router.fallback())
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        self.handle.metrics()
    }
}

#[cfg(test)]
mod tests {
    use lynn_proto::router::Router;

    use super::{App, Context, Handler, SyncContext, handler};

    fn routes(sync_route: bool, sync_fallback: bool) -> Router<Handler<()>> {
        let pick = |sync: bool| {
            if sync {
                handler::sync(|_: &mut SyncContext<'_, '_>| {})
            } else {
                handler::boxed(|_: Context| async {})
            }
        };
        Router::builder()
            .route(1, pick(false))
            .route(2, pick(sync_route))
            .fallback(pick(sync_fallback))
            .build()
            .unwrap()
    }

    #[test]
    fn a_sync_route_or_fallback_is_found() {
        assert!(!App::<(), ()>::has_sync_route(&routes(false, false)));
        assert!(App::<(), ()>::has_sync_route(&routes(true, false)));
        assert!(App::<(), ()>::has_sync_route(&routes(false, true)));
    }
}
