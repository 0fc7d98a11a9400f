//! [`SmolRuntime`]: the shared layer's [`Runtime`](lynn_service::Runtime) over async-io
//! ([`lynn_service::reactor`]), running a client's background task on the crate's client
//! executor.

use std::future::Future;

use lynn_service::reactor::{Reactor, Spawn};

/// async-io, as lynn's shared client sees it.
pub type SmolRuntime = Reactor<ClientExecutor>;

/// Runs tasks on the crate's own small executor, so that a client makes progress under
/// smol, async-std or a plain `block_on` alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientExecutor;

impl Spawn for ClientExecutor {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match crate::spawn::spawn(task) {
            Ok(task) => task.detach(),
            Err(e) => tracing::error!(error = %e, "the client executor could not start"),
        }
    }
}
