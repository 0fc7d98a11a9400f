//! [`BlockingRuntime`]: the shared layer's [`Runtime`] for programs without an async
//! runtime: streams and timers on async-io's reactor ([`lynn_service::reactor`]), and a
//! thread per task that blocks on it.

use std::future::Future;
use std::io;

use lynn_proto::{Endpoint, SocketOptions};
use lynn_service::Runtime;
use lynn_service::reactor::{self, Stream, Timer};

/// Threads, as lynn's shared client sees them: each task runs on a thread of its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockingRuntime;

impl Runtime for BlockingRuntime {
    type Stream = Stream;
    type Timer = Timer;

    fn connect(
        &self,
        endpoint: Endpoint,
        options: SocketOptions,
    ) -> impl Future<Output = io::Result<Stream>> + Send + 'static {
        reactor::connect(endpoint, options)
    }

    fn timer(&self) -> Timer {
        Timer::default()
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let started = std::thread::Builder::new()
            .name("lynn-client".into())
            .spawn(move || async_io::block_on(task));
        if let Err(e) = started {
            tracing::error!(error = %e, "a client thread could not start");
        }
    }
}
