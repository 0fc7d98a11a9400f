//! [`Inbox`]: what reaches one connection task from outside — commands (sends from other
//! connections, broadcasts, `ServerHandle::send`) and the request to close.
//!
//! Two costs shaped it. Memory: it allocates nothing until the first command, so an idle
//! connection pays a few words (a bounded tokio mpsc channel allocates ~1.8 KiB up front).
//! Time: the task checks it on every turn of its loop, so an empty check is two atomic
//! loads and an `AtomicWaker` registration, no lock (a `Notify` or `watch` takes a mutex
//! on every poll, which measured ~1,000 instructions per response in the echo benchmark).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use lynn_proto::Outbound;
use lynn_proto::switchboard::Refused;

/// What [`Inbox::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A close was requested.
    Close,
    /// Commands were moved into the batch.
    Commands,
}

/// A bounded command queue and a close flag for one connection task.
#[derive(Debug)]
pub(crate) struct Inbox {
    queue: Mutex<VecDeque<Outbound>>,
    /// Commands in `queue`, readable without the lock.
    queued: AtomicUsize,
    capacity: usize,
    close: AtomicBool,
    /// The task has ended: further commands are refused.
    gone: AtomicBool,
    waker: AtomicWaker,
}

impl Inbox {
    /// An empty inbox that holds at most `capacity` commands.
    pub(crate) fn new(capacity: usize) -> Self {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            capacity,
            close: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Outbound>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `out` without waiting; refused when full or when the task has ended.
    pub(crate) fn offer(&self, out: Outbound) -> Result<(), Refused> {
        {
            let mut queue = self.lock();
            if self.gone.load(Ordering::Acquire) {
                return Err(Refused::Closed);
            }
            if queue.len() >= self.capacity {
                return Err(Refused::Full);
            }
            queue.push_back(out);
            self.queued.store(queue.len(), Ordering::Release);
        }
        self.waker.wake();
        Ok(())
    }

    /// Asks the task to close gracefully. Returns whether the task was still there.
    pub(crate) fn request_close(&self) -> bool {
        self.close.store(true, Ordering::Release);
        self.waker.wake();
        !self.gone.load(Ordering::Acquire)
    }

    /// Waits for whichever is asked for: a close request (`close`, checked first) or
    /// queued commands (`take`: moved into `batch`, empty on entry, in order). One waker
    /// registration per poll for both.
    pub(crate) async fn next(
        &self,
        batch: &mut VecDeque<Outbound>,
        close: bool,
        take: bool,
    ) -> Signal {
        let check = |batch: &mut VecDeque<Outbound>| {
            if close && self.close.load(Ordering::Acquire) {
                Some(Signal::Close)
            } else if take && self.try_take(batch) {
                Some(Signal::Commands)
            } else {
                None
            }
        };
        poll_fn(|cx| {
            if let Some(signal) = check(batch) {
                return Poll::Ready(signal);
            }
            self.waker.register(cx.waker());
            match check(batch) {
                Some(signal) => Poll::Ready(signal),
                None => Poll::Pending,
            }
        })
        .await
    }

    fn try_take(&self, batch: &mut VecDeque<Outbound>) -> bool {
        if self.queued.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut queue = self.lock();
        // Swap, so both deques keep their allocations: no churn under steady traffic.
        std::mem::swap(&mut *queue, batch);
        self.queued.store(0, Ordering::Release);
        !batch.is_empty()
    }

    /// The task has ended: refuse further commands and drop the queued ones.
    pub(crate) fn hang_up(&self) {
        let mut queue = self.lock();
        self.gone.store(true, Ordering::Release);
        queue.clear();
        self.queued.store(0, Ordering::Release);
    }
}
