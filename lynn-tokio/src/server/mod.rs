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
use lynn_proto::{ConnectionConfig, Metrics, SocketOptions};
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
    pub(crate) state: Arc<S>,
    pub(crate) events: Option<mpsc::Sender<ServerEvent<S>>>,
    pub(crate) handle: ServerHandle,
    /// The global handler limit (`max_concurrent_handlers`), if any.
    pub(crate) limit: Option<Arc<Semaphore>>,
    pub(crate) connection: ConnectionConfig,
    pub(crate) outbound_queue: usize,
    pub(crate) socket: SocketOptions,
}

impl<S> App<S> {
    pub(crate) fn metrics(&self) -> &Metrics {
        self.handle.metrics()
    }
}
