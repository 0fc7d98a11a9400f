//! A fixed-size pool of worker threads that run handlers.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;

/// A unit of work.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Jobs waiting per worker before `submit` blocks (backpressure onto the connection).
const QUEUE_PER_WORKER: usize = 16;

/// `size` worker threads sharing one bounded job queue. Dropping the pool lets the workers
/// finish the queued jobs and exit.
#[derive(Debug)]
pub(crate) struct Pool {
    jobs: SyncSender<Job>,
}

impl Pool {
    /// Starts `size` workers (at least one).
    pub(crate) fn new(size: usize) -> std::io::Result<Pool> {
        let size = size.max(1);
        let (jobs, rx) = sync_channel::<Job>(size * QUEUE_PER_WORKER);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size {
            let rx = Arc::clone(&rx);
            thread::Builder::new()
                .name(format!("lynn-worker-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Pool { jobs })
    }

    /// Queues `job`; blocks while the queue is full. Returns the job if the pool is gone.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }

    /// The default size: twice the available parallelism.
    pub(crate) fn default_size() -> usize {
        thread::available_parallelism().map_or(2, |n| n.get()) * 2
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let guard = match rx.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            guard.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}
