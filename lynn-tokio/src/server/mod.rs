//! The server: [`Server::builder`] → [`ServerBuilder`] → [`Server`] → `serve`.

mod builder;
mod context;
mod events;
mod handle;
mod handler;
mod inbox;
mod listener;
mod serve;
mod task;
mod workers;

use std::sync::Arc;

use lynn_proto::router::Router;
use lynn_proto::{ConnectionConfig, SocketOptions};
use lynn_service::Metrics;
use tokio::sync::{Semaphore, mpsc};

pub use builder::ServerBuilder;
pub use context::{Context, SyncContext};
pub use events::{Responder, ServerEvent, ServerEvents};
pub use handle::ServerHandle;
pub use serve::Server;

use handler::Handler;

/// What every connection task of one server shares (one `Arc`).
pub(crate) struct App<S> {
    pub(crate) router: Router<Handler<S>>,
    /// Some route is synchronous: received messages are offered to be answered in place.
    /// Without one, offering each message costs a route lookup for nothing.
    pub(crate) sync_routes: bool,
    pub(crate) state: Arc<S>,
    pub(crate) events: Option<mpsc::Sender<ServerEvent<S>>>,
    pub(crate) handle: ServerHandle,
    /// The global handler limit (`max_concurrent_handlers`), if any.
    pub(crate) limit: Option<Arc<Semaphore>>,
    /// One copy for every connection (each `Connection` reads its limits from it).
    pub(crate) connection: Arc<ConnectionConfig>,
    pub(crate) outbound_queue: usize,
    pub(crate) socket: SocketOptions,
}

impl<S> App<S> {
    /// Whether `router` has a synchronous route or fallback.
    pub(crate) fn has_sync_route(router: &Router<Handler<S>>) -> bool {
        let sync = |h: Option<&Handler<S>>| matches!(h, Some(handler::Route::Sync(_)));
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
        assert!(!App::has_sync_route(&routes(false, false)));
        assert!(App::has_sync_route(&routes(true, false)));
        assert!(App::has_sync_route(&routes(false, true)));
    }
}
