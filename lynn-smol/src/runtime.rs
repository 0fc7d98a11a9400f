//! [`SmolRuntime`]: the shared layer's [`Runtime`] over async-io (streams and timers of
//! [`lynn_service::reactor`]), with the crate's client executor for the client's
//! background task.

use std::future::Future;
use std::io;

use lynn_proto::{Endpoint, SocketOptions};
use lynn_service::Runtime;
use lynn_service::reactor::{self, Stream, Timer};

/// async-io, as lynn's shared client sees it. A client's background task runs on the
/// crate's own small executor, so it makes progress under smol, async-std or a plain
/// `block_on` alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
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
        match crate::spawn::spawn(task) {
            Ok(task) => task.detach(),
            Err(e) => tracing::error!(error = %e, "the client executor could not start"),
        }
    }
}
