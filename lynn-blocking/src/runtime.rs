//! [`BlockingRuntime`]: the shared layer's [`Runtime`](lynn_service::Runtime) for programs
//! without an async runtime: async-io's streams and timers ([`lynn_service::reactor`]), and
//! a fixed set of executor threads of this crate's own that run every task.
//!
//! The threads are started once per process, on the first task, one per available CPU, and
//! run for the rest of the process, each waiting on async-io's reactor while it has nothing
//! to do. Once per process rather than per server because the shared layer creates the
//! runtime with `Default` (a server, a client: nothing to configure, nothing to stop),
//! because a client's task may outlive every server, and because the thread count then
//! stays one per CPU however many servers and clients the program has.

use std::future::Future;
use std::sync::OnceLock;
use std::thread;

use async_executor::Executor as TaskQueue;
use lynn_service::reactor::{Reactor, Spawn};

/// async-io's reactor and this crate's executor threads, as lynn's shared server and client
/// see them.
pub type BlockingRuntime = Reactor<Executor>;

/// The tasks of every server connection and client of the process.
static TASKS: TaskQueue<'static> = TaskQueue::new();

/// How many executor threads run [`TASKS`], once they are started.
static THREADS: OnceLock<usize> = OnceLock::new();

/// Runs tasks on the process's executor threads: one per available CPU, started with the
/// first task and kept for the life of the process (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl Executor {
    /// How many executor threads run (starting them if they are not yet): one per
    /// available CPU, fewer only if the OS refused to start some.
    pub fn threads() -> usize {
        *THREADS.get_or_init(|| {
            let n = thread::available_parallelism().map_or(1, |n| n.get());
            (0..n)
                .filter(|i| {
                    let started = thread::Builder::new()
                        .name(format!("lynn-exec-{i}"))
                        .spawn(|| async_io::block_on(TASKS.run(std::future::pending::<()>())));
                    if let Err(e) = &started {
                        tracing::error!(error = %e, "an executor thread could not start");
                    }
                    started.is_ok()
                })
                .count()
        })
    }
}

impl Spawn for Executor {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if Executor::threads() == 0 {
            tracing::error!("no executor thread could start: task dropped");
            return;
        }
        TASKS.spawn(task).detach();
    }
}
