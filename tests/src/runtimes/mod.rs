//! The [`Runtime`](crate::runtime::Runtime) impls, one per adapter, and [`Tls`]: each of
//! them over TLS.

/// Defines, for one adapter crate, `HandlerEffects` (what a handler, async or synchronous,
/// does to its server: through the adapter's `ServerHandle`, as the calling connection)
/// and `run_sync` (the suite's synchronous route). The adapters' handle types differ but
/// share these method names.
macro_rules! handler_glue {
    ($adapter:ident) => {
        struct HandlerEffects<'a>(&'a $adapter::ServerHandle, lynn_proto::ConnectionId);

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

        fn run_sync(app: crate::app::App, ctx: &mut $adapter::SyncContext<'_, '_>) {
            let effects = HandlerEffects(ctx.server(), ctx.id());
            let reply = app.handle_sync(ctx.method(), ctx.body(), &effects);
            ctx.reply(&reply);
        }
    };
}
use handler_glue;

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
