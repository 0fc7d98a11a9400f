//! Worker threads for [`TokioRuntime::with_workers`](crate::TokioRuntime::with_workers):
//! each runs its own single-threaded tokio runtime, and accepted connections are handed to
//! them in turn.
//!
//! Why: a connection never moves between threads, so nothing is stolen or re-queued, and a
//! saturated worker serves its ready connections in the order they became ready. Under
//! saturation tokio's multi-threaded scheduler does not: woken tasks that overflow a
//! worker's local queue (256) wait in the global queue, which is checked only every ~40
//! tasks, so some connections wait 100+ ms while others are served at once (measured in
//! `BENCHMARKS.md`).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Running worker threads; dropping this stops them once their tasks are gone.
#[derive(Debug)]
pub(crate) struct Workers {
    handles: Vec<Handle>,
    /// Dropped with `Workers`: each worker's `block_on` then returns and its runtime (and
    /// any task a handler spawned on it) is dropped on its own thread.
    _stop: Vec<oneshot::Sender<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` (at least 1) worker threads named `lynn-worker-{i}`.
    pub(crate) fn start(n: usize) -> io::Result<Self> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "workers: must be at least 1",
            ));
        }
        let mut handles = Vec::with_capacity(n);
        let mut stop = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (tx, rx) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            thread::Builder::new()
                .name(format!("lynn-worker-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = rx.await;
                    });
                })?;
            stop.push(tx);
        }
        Ok(Workers {
            handles,
            _stop: stop,
            next: AtomicUsize::new(0),
        })
    }

    /// The runtime of the next worker, round robin.
    pub(crate) fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}
