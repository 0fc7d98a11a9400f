//! [`BlockingRuntime`]: the shared layer's [`Runtime`](lynn_service::Runtime) for programs
//! without an async runtime: async-io's streams and timers ([`lynn_service::reactor`]), and
//! a thread per task that blocks on them.

use std::future::Future;

use lynn_service::reactor::{Reactor, Spawn};

/// Threads, as lynn's shared client sees them.
pub type BlockingRuntime = Reactor<Threads>;

/// Runs each task on a thread of its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct Threads;

impl Spawn for Threads {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let started = std::thread::Builder::new()
            .name("lynn-client".into())
            .spawn(move || async_io::block_on(task));
        if let Err(e) = started {
            tracing::error!(error = %e, "a client thread could not start");
        }
    }
}
