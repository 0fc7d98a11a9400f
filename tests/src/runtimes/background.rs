//! A server's serving loop on a thread of its own, whose end can be awaited with a deadline.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::support::DEADLINE;

/// A thread running a serving loop.
pub(crate) struct Background {
    done: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl Background {
    /// Runs `serve` on a new thread named `name`.
    pub(crate) fn spawn<E: std::fmt::Debug>(
        name: &str,
        serve: impl FnOnce() -> Result<(), E> + Send + 'static,
    ) -> Background {
        let (tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let result = serve();
                let _ = tx.send(());
                result.expect("serve returns Ok");
            })
            .expect("spawn the serving thread");
        Background { done, thread }
    }

    /// Waits until serving has ended; panics after the suite's deadline.
    pub(crate) fn join(self) {
        self.done
            .recv_timeout(DEADLINE)
            .expect("the server stops within the deadline");
        self.thread.join().expect("serve does not panic");
    }
}
