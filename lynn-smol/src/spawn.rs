//! Where client tasks run: a small crate-wide executor with its own threads.
//!
//! A client's task must make progress (heartbeats, reconnects, reading) whether or not the
//! caller is polling anything, and it must not depend on which executor the caller uses. So
//! clients run on one `async_executor::Executor` driven by a few threads started on first
//! use (`async_io::block_on`, which also drives the async-io reactor). This works the same
//! under smol, async-std, or a plain `block_on`.

use std::future::Future;
use std::io;
use std::sync::OnceLock;

use async_executor::{Executor, Task};

static EXECUTOR: Executor<'static> = Executor::new();
static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
/// Most threads the client executor uses.
const MAX_THREADS: usize = 4;

fn start() -> Result<(), String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    for i in 0..threads {
        std::thread::Builder::new()
            .name(format!("lynn-smol-client-{i}"))
            .spawn(|| async_io::block_on(EXECUTOR.run(futures_lite::future::pending::<()>())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Spawns `future` on the client executor, starting its threads on first use.
pub(crate) fn spawn<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> io::Result<Task<T>> {
    STARTED
        .get_or_init(start)
        .clone()
        .map_err(io::Error::other)?;
    Ok(EXECUTOR.spawn(future))
}
