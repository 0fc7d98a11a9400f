//! [`Inbox`]: what reaches one connection task from outside — commands (sends from other
//! connections, broadcasts, `ServerHandle::send`), the request to close and, when a
//! shutdown runs out of time, the order to stop.
//!
//! Two costs shaped it. Memory: it allocates nothing until the first command, so an idle
//! connection pays a few words (a bounded tokio mpsc channel allocates ~1.8 KiB up front).
//! Time: the task checks it on every turn of its loop, so an empty check is a few atomic
//! loads, no lock (a `Notify` or `watch` takes a mutex on every poll, which measured ~1,000
//! instructions per response in the echo benchmark), and no `AtomicWaker` registration
//! while the last one is still armed (~90 instructions per turn when re-registered); while
//! armed, a poll is a single load (two polls per turn cost ~90 instructions per response
//! when each checked both signals).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::Outbound;
use crate::switchboard::Refused;

/// What [`Inbox::poll_next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A graceful close was requested.
    Close,
    /// Stop now: the shutdown timed out.
    Abort,
    /// Commands were moved into the batch.
    Commands,
}

/// How far the task was asked to end (the `ending` level).
const OPEN: u8 = 0;
const CLOSE: u8 = 1;
const ABORT: u8 = 2;

/// A bounded command queue and a close flag for one connection task.
#[derive(Debug)]
pub(crate) struct Inbox {
    queue: Mutex<VecDeque<Outbound>>,
    /// Commands in `queue`, readable without the lock.
    queued: AtomicUsize,
    capacity: usize,
    /// `OPEN`, `CLOSE` or `ABORT`; only ever raised.
    ending: AtomicU8,
    /// The task has ended: further commands are refused.
    gone: AtomicBool,
    waker: AtomicWaker,
    /// The task's waker is registered in `waker`, and no wake has taken it since a check
    /// for both signals found neither. Set by the task before it registers, cleared by
    /// every waking side before it wakes; while set, a poll has nothing to look at.
    armed: AtomicBool,
}

impl Inbox {
    /// An empty inbox that holds at most `capacity` commands.
    pub(crate) fn new(capacity: usize) -> Self {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            capacity,
            ending: AtomicU8::new(OPEN),
            gone: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            armed: AtomicBool::new(false),
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
        self.wake();
        Ok(())
    }

    /// Wakes the task. Disarms first: a task that then sees `armed` clear registers again
    /// (this wake takes its waker); one that sees it set still has its waker registered.
    fn wake(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Asks the task to close gracefully. Returns whether the task was still there.
    ///
    /// `gone` is read before the request, never after: the request may end the task at
    /// once (nothing in flight, nothing to flush), which then hangs up, so a check after it
    /// could see the task gone because of this very request.
    pub(crate) fn request_close(&self) -> bool {
        self.raise(CLOSE)
    }

    /// Orders the task to stop at once, dropping its handlers and unsent output. Returns
    /// whether the task was still there.
    pub(crate) fn abort(&self) -> bool {
        self.raise(ABORT)
    }

    fn raise(&self, level: u8) -> bool {
        if self.gone.load(Ordering::Acquire) {
            return false;
        }
        self.ending.fetch_max(level, Ordering::AcqRel);
        self.wake();
        true
    }

    /// Polls for an order to end beyond what the task already handles (`closing`: it
    /// handles a close request; an abort is still looked for; checked first) and, if
    /// `take`, for queued commands (moved into `batch`, empty on entry, in order).
    ///
    /// While armed, a poll costs one atomic load: nothing came since a check that looked
    /// for everything and found nothing, and that check's waker is still registered. Only a
    /// poll that takes commands arms; one that does not registers each time (commands it
    /// skipped did not disarm anything).
    #[inline]
    pub(crate) fn poll_next(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Outbound>,
        closing: bool,
        take: bool,
    ) -> Poll<Signal> {
        if self.armed.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        self.poll_unarmed(cx, batch, closing, take)
    }

    fn poll_unarmed(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Outbound>,
        closing: bool,
        take: bool,
    ) -> Poll<Signal> {
        let found = self.check(batch, closing, take);
        if found.is_ready() {
            return found;
        }
        // Armed before registering: a wake in between clears it again (the next poll then
        // checks once more), and its signal is seen by the check below.
        if take {
            self.armed.store(true, Ordering::SeqCst);
        }
        self.waker.register(cx.waker());
        self.check(batch, closing, take)
    }

    fn check(&self, batch: &mut VecDeque<Outbound>, closing: bool, take: bool) -> Poll<Signal> {
        let handled = if closing { CLOSE } else { OPEN };
        let ending = self.ending.load(Ordering::Acquire);
        if ending > handled {
            Poll::Ready(if ending == ABORT {
                Signal::Abort
            } else {
                Signal::Close
            })
        } else if take && self.try_take(batch) {
            Poll::Ready(Signal::Commands)
        } else {
            Poll::Pending
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_next(inbox: &Inbox, batch: &mut VecDeque<Outbound>, waker: &Waker) -> Poll<Signal> {
        inbox.poll_next(&mut Context::from_waker(waker), batch, false, true)
    }

    #[test]
    fn commands_skipped_by_a_narrower_poll_are_found_by_the_next_full_one() {
        let inbox = Inbox::new(4);
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();

        assert!(poll_next(&inbox, &mut batch, &waker).is_pending());
        inbox.offer(message()).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // Not taking commands now (earlier ones still unapplied): pending, not armed.
        assert!(
            inbox
                .poll_next(&mut cx, &mut batch, false, false)
                .is_pending()
        );
        assert!(
            inbox
                .poll_next(&mut cx, &mut batch, false, false)
                .is_pending()
        );
        assert_eq!(
            poll_next(&inbox, &mut batch, &waker),
            Poll::Ready(Signal::Commands),
            "no new wake came, yet the queued command is found"
        );
    }

    fn message() -> Outbound {
        Outbound::Message {
            method: 1,
            body: "x".into(),
        }
    }

    #[test]
    fn a_registration_stays_armed_until_a_wake_takes_it() {
        let inbox = Inbox::new(4);
        let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
        let mut batch = VecDeque::new();

        assert!(poll_next(&inbox, &mut batch, &w1).is_pending());
        // Still armed: this poll does not register its (different) waker.
        assert!(poll_next(&inbox, &mut batch, &w2).is_pending());
        inbox.offer(message()).unwrap();
        assert_eq!(
            first.0.load(Ordering::SeqCst),
            1,
            "the armed waker is woken"
        );
        assert_eq!(second.0.load(Ordering::SeqCst), 0);

        assert_eq!(
            poll_next(&inbox, &mut batch, &w2),
            Poll::Ready(Signal::Commands)
        );
        assert_eq!(batch.len(), 1);
        batch.clear();
        // The wake disarmed it: the next pending poll registers again.
        assert!(poll_next(&inbox, &mut batch, &w2).is_pending());
        assert!(inbox.request_close());
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            poll_next(&inbox, &mut batch, &w2),
            Poll::Ready(Signal::Close)
        );
    }

    #[test]
    fn a_closing_task_still_hears_an_abort() {
        let inbox = Inbox::new(4);
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();
        assert!(inbox.request_close());
        assert_eq!(
            inbox.poll_next(&mut cx, &mut batch, false, true),
            Poll::Ready(Signal::Close)
        );
        // Closing: the close request is handled, so it is not reported again.
        assert!(
            inbox
                .poll_next(&mut cx, &mut batch, true, true)
                .is_pending()
        );
        assert!(inbox.abort());
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the abort wakes the task"
        );
        assert_eq!(
            inbox.poll_next(&mut cx, &mut batch, true, true),
            Poll::Ready(Signal::Abort)
        );
    }

    /// A connection task that ends the moment it is woken, as one with nothing in flight
    /// and nothing to flush does on a close request.
    struct EndsOnWake(Arc<Inbox>);

    impl Wake for EndsOnWake {
        fn wake(self: Arc<Self>) {
            self.0.hang_up();
        }
    }

    #[test]
    fn a_close_that_ends_the_task_at_once_reports_it_there() {
        let inbox = Arc::new(Inbox::new(4));
        let waker = Waker::from(Arc::new(EndsOnWake(inbox.clone())));
        let mut batch = VecDeque::new();
        assert!(poll_next(&inbox, &mut batch, &waker).is_pending());
        assert!(inbox.request_close(), "there when asked");
        assert_eq!(
            inbox.offer(message()),
            Err(Refused::Closed),
            "the request ended it"
        );
        assert!(!inbox.request_close(), "gone now");
    }
}
