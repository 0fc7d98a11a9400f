//! The [`Runtime`](crate::runtime::Runtime) impls, one per adapter, and [`Tls`]: each of
//! them over TLS.

/// Defines, for one adapter crate (or `lynn_service::server`, which the simulation runs),
/// `HandlerEffects` (what a handler, async or synchronous, does to its server: through the
/// adapter's `ServerHandle`, as the calling connection), `run_sync` (the suite's
/// synchronous route) and `with_routes` (the suite's routes on a builder of type
/// `$builder`, async ones answered by the module's own `run`). The adapters' handle types
/// differ but share these method names.
macro_rules! handler_glue {
    ($($adapter:ident)::+, $builder:ty) => {
        struct HandlerEffects<'a>(&'a $($adapter)::+::ServerHandle, lynn_proto::ConnectionId);

        impl crate::app::Effects for HandlerEffects<'_> {
            fn join(&self, group: &str) -> bool {
                self.0.join(group, self.1).is_ok()
            }
            fn broadcast_group(&self, group: &str, method: u16, body: bytes::Bytes) -> usize {
                self.0.broadcast_group(group, method, body)
            }
            fn broadcast(&self, method: u16, body: bytes::Bytes) -> usize {
                self.0.broadcast(method, body)
            }
        }

        fn run_sync(app: crate::app::App, ctx: &mut $($adapter)::+::SyncContext<'_, '_>) {
            let effects = HandlerEffects(ctx.server(), ctx.id());
            let reply = app.handle_sync(ctx.method(), ctx.body(), &effects);
            ctx.reply(&reply);
        }

        /// `app`'s routes and synchronous routes on `builder`.
        fn with_routes(mut builder: $builder, app: crate::app::App) -> $builder {
            for &method in app.routes() {
                builder = builder.route(method, move |ctx: $($adapter)::+::Context| run(app, ctx));
            }
            for &method in app.sync_routes() {
                builder = builder.route_sync(method, move |ctx| run_sync(app, ctx));
            }
            builder
        }
    };
}
pub(crate) use handler_glue;

mod background;
mod blocking;
mod smol;
mod tls;
mod tokio;

pub use blocking::{BlockingClient, BlockingRuntime, BlockingServer};
pub use smol::{SmolClient, SmolRuntime, SmolServer};
pub use tls::{SuiteTls, Tls, TlsRuntime};
pub use tokio::{TokioClient, TokioRuntime, TokioServer, TokioWorkersRuntime};

/// lynn-tokio over mutual TLS.
pub type TokioTlsRuntime = Tls<TokioRuntime>;
/// lynn-smol over mutual TLS.
pub type SmolTlsRuntime = Tls<SmolRuntime>;
/// lynn-blocking over mutual TLS.
pub type BlockingTlsRuntime = Tls<BlockingRuntime>;
