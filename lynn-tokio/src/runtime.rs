//! [`TokioRuntime`]: the shared layer's [`Runtime`] over tokio: its sockets, its timer, its
//! `spawn`, on the runtime the caller runs on or on worker threads of the server's own.

use std::future::Future;
use std::io;
use std::sync::Arc;

use lynn_proto::{Endpoint, SocketOptions};
use lynn_service::Runtime;

use crate::stream::Accepted;
pub use crate::stream::{Listener, Stream};
pub use crate::timer::Timer;
use crate::workers::Workers;

/// Tokio, as lynn's shared server and client see it. By default tasks are spawned on the
/// runtime the caller runs on (`tokio::spawn`); [`TokioRuntime::with_workers`] runs each
/// accepted connection on one of `n` threads of its own instead.
#[derive(Clone, Debug, Default)]
pub struct TokioRuntime {
    workers: Option<Arc<Workers>>,
}

impl TokioRuntime {
    /// A runtime whose server connections run on `n` (at least 1) worker threads, each with
    /// its own single-threaded tokio runtime, handed out in turn; the accept loop, the
    /// metrics endpoint and the event stream stay on the runtime that calls `serve`.
    ///
    /// A connection's task never moves, and a busy worker serves its ready connections in
    /// turn: under saturation tokio's multi-threaded scheduler leaves woken tasks that
    /// overflow a worker's local queue waiting in the global queue, and some connections
    /// wait 100+ ms while others are served at once (see `BENCHMARKS.md`). The price: at
    /// saturation the multi-threaded scheduler answers a few percent more requests per
    /// second, because the connections it keeps serving stay in the CPU's caches. Inside a
    /// handler, `tokio::spawn` spawns on that connection's worker, and
    /// `tokio::task::block_in_place` is not available (single-threaded runtime). The
    /// threads end once every clone of the runtime and every connection on them is gone.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use lynn_tokio::{Context, Server, ServerConfig, TokioRuntime};
    ///
    /// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// let config = ServerConfig::builder().addr("127.0.0.1:9177").build()?;
    /// Server::builder(config)
    ///     .runtime(TokioRuntime::with_workers(cores)?)
    ///     .fallback(|ctx: Context| async move { ctx.reply(ctx.body().clone()) })
    ///     .bind()
    ///     .await?
    ///     .serve()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_workers(n: usize) -> io::Result<Self> {
        Ok(TokioRuntime {
            workers: Some(Arc::new(Workers::start(n)?)),
        })
    }
}

impl Runtime for TokioRuntime {
    type Stream = Stream;
    type Timer = Timer;
    type Listener = Listener;

    fn bind(
        &self,
        endpoint: Endpoint,
        backlog: u32,
    ) -> impl Future<Output = io::Result<Listener>> + Send + 'static {
        Listener::bind(endpoint, backlog, self.workers.is_some())
    }

    fn adopt(&self, accepted: Accepted, options: &SocketOptions) -> io::Result<Stream> {
        let stream = accepted.adopt()?;
        if let Stream::Tcp(s) = &stream {
            lynn_service::apply_socket_options(s, options);
        }
        Ok(stream)
    }

    // Not `async fn`: the future must be `'static`, not borrow the runtime.
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        endpoint: Endpoint,
        options: SocketOptions,
    ) -> impl Future<Output = io::Result<Stream>> + Send + 'static {
        async move { Stream::connect(endpoint, &options).await }
    }

    fn timer(&self) -> Timer {
        Timer::new()
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match &self.workers {
            Some(workers) => drop(workers.next().spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }
}
