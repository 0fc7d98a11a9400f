//! [`SmolRuntime`]: the shared layer's [`Runtime`] over smol: async-io's sockets and timers
//! ([`lynn_service::reactor`]), and tasks spawned on smol's global executor or on an
//! executor of the caller's.

use std::future::Future;
use std::io;
use std::sync::Arc;

use lynn_proto::{Endpoint, SocketOptions};
use lynn_service::Runtime;
use lynn_service::reactor::{self, Reactor, Spawn};
pub use lynn_service::reactor::{Listener, Stream, Timer};
use smol::Executor;

/// smol, as lynn's shared server and client see it: async-io's reactor for sockets and
/// timers, and an executor for tasks. By default (`SmolRuntime::default()`) tasks are
/// spawned on smol's global executor (`smol::spawn`, whose threads `SMOL_THREADS` sets);
/// [`SmolRuntime::on`] spawns them on an executor of yours instead.
#[derive(Clone, Debug, Default)]
pub struct SmolRuntime(Reactor<Spawner>);

/// Where a [`SmolRuntime`] spawns: smol's global executor, or the one it was given.
#[derive(Clone, Debug, Default)]
struct Spawner(Option<Arc<Executor<'static>>>);

impl Spawn for Spawner {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match &self.0 {
            Some(executor) => executor.spawn(task).detach(),
            None => smol::spawn(task).detach(),
        }
    }
}

impl SmolRuntime {
    /// A runtime that spawns on `executor`: a server given it with
    /// [`ServerBuilder::runtime`](crate::ServerBuilder::runtime) runs each connection
    /// (and its metrics endpoint) as a task of `executor`. The tasks make progress only
    /// while something runs the executor (`executor.run(..)`, on as many threads as you
    /// like); the accept loop runs wherever the `serve` future is polled.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use lynn_smol::{Client, Context, Server, ServerConfig, SmolRuntime};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Arc::new(smol::Executor::new());
    /// // One thread runs everything: the accept loop, connections, this code.
    /// smol::block_on(executor.run(async {
    ///     let config = ServerConfig::builder().addr("127.0.0.1:0").build()?;
    ///     let server = Server::builder(config)
    ///         .runtime(SmolRuntime::on(executor.clone()))
    ///         .route(1, |ctx: Context| async move { ctx.reply(ctx.body().clone()) })
    ///         .bind()
    ///         .await?;
    ///     let addr = server.local_addr().to_string();
    ///     let handle = server.handle();
    ///     let serving = executor.spawn(server.serve());
    ///
    ///     let client = Client::connect(addr).await?;
    ///     assert_eq!(client.request(1, "hi").await?, "hi");
    ///     client.close().await;
    ///     handle.shutdown();
    ///     serving.await?;
    ///     Ok(())
    /// }))
    /// # }
    /// ```
    pub fn on(executor: Arc<Executor<'static>>) -> Self {
        SmolRuntime(Reactor(Spawner(Some(executor))))
    }
}

impl Runtime for SmolRuntime {
    type Stream = Stream;
    type Timer = Timer;
    type Listener = Listener;

    fn bind(
        &self,
        endpoint: Endpoint,
        backlog: u32,
    ) -> impl Future<Output = io::Result<Listener>> + Send + 'static {
        reactor::bind(endpoint, backlog)
    }

    fn adopt(&self, accepted: Stream, options: &SocketOptions) -> io::Result<Stream> {
        self.0.adopt(accepted, options)
    }

    fn connect(
        &self,
        endpoint: Endpoint,
        options: SocketOptions,
    ) -> impl Future<Output = io::Result<Stream>> + Send + 'static {
        reactor::connect(endpoint, options)
    }

    fn timer(&self) -> Timer {
        self.0.timer()
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(task);
    }
}
