//! [`Doorbell`]: how what comes from outside (commands from the [`ServerHandle`], a close
//! request) wakes a connection task, cheaply enough to be checked on every loop turn.
//!
//! The task checks its outbound channel and the close request twice per loop turn. Polling
//! an `async_channel::Receiver` that has nothing costs loads through the channel's queue
//! variants, and its listener registration ~190 instructions; checking three of them (the
//! outbound channel, a close channel, the server's shutdown channel) cost ~100
//! instructions per response. Here a check that found nothing arms the doorbell, and while
//! it stays armed a check is one atomic load: every sender rings it (disarms, then wakes the
//! task) after queuing. The channel is then only a queue, read with `try_recv`.
//!
//! [`ServerHandle`]: crate::ServerHandle

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// The task's side of one connection's wake-ups from outside.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    /// A check that looked for everything found nothing since the last ring, and the
    /// task's waker is registered: a check has nothing to look at. Set by the task before
    /// it registers, cleared by every ring before it wakes.
    armed: AtomicBool,
    /// A graceful close was requested.
    close: AtomicBool,
    waker: AtomicWaker,
}

impl Doorbell {
    /// Wakes the task after something was queued for it.
    pub(crate) fn ring(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Asks the task to close gracefully.
    pub(crate) fn request_close(&self) {
        self.close.store(true, Ordering::SeqCst);
        self.ring();
    }

    /// Whether a close was requested.
    pub(crate) fn close_requested(&self) -> bool {
        self.close.load(Ordering::SeqCst)
    }

    /// Polls `check`, which looks at what the task waits for from outside: pending at once
    /// while armed; otherwise checks, and when that finds nothing, registers the task's
    /// waker and checks again. `full`: `check` looks at everything a ring may announce, so
    /// finding nothing arms the doorbell (a narrower check must not: what it skipped would
    /// go unseen until the next ring).
    #[inline]
    pub(crate) fn poll<T>(
        &self,
        cx: &Context<'_>,
        full: bool,
        mut check: impl FnMut() -> Poll<T>,
    ) -> Poll<T> {
        if self.armed.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        if let ready @ Poll::Ready(_) = check() {
            return ready;
        }
        // Armed before registering: a ring in between disarms it again, and what it
        // announced is seen by the check below.
        if full {
            self.armed.store(true, Ordering::SeqCst);
        }
        self.waker.register(cx.waker());
        let found = check();
        if found.is_ready() {
            // More may be queued behind what was found, announced by rings that came
            // before the doorbell was armed: the next check must look.
            self.armed.store(false, Ordering::SeqCst);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Waker;

    use super::*;
    use crate::test_waker::Count;

    #[test]
    fn an_armed_doorbell_checks_nothing_until_it_rings() {
        let bell = Doorbell::default();
        let woken = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&woken));
        let cx = Context::from_waker(&waker);
        let checks = AtomicUsize::new(0);
        let queued = AtomicUsize::new(0);
        let check = || {
            checks.fetch_add(1, Ordering::SeqCst);
            match queued.swap(0, Ordering::SeqCst) {
                0 => Poll::Pending,
                n => Poll::Ready(n),
            }
        };
        assert!(bell.poll(&cx, true, check).is_pending());
        assert_eq!(checks.load(Ordering::SeqCst), 2);
        assert!(bell.poll(&cx, true, check).is_pending());
        assert_eq!(checks.load(Ordering::SeqCst), 2, "armed: not checked");
        queued.store(1, Ordering::SeqCst);
        bell.ring();
        assert_eq!(woken.get(), 1);
        assert_eq!(bell.poll(&cx, true, check), Poll::Ready(1));
    }

    #[test]
    fn a_narrow_check_does_not_arm() {
        let bell = Doorbell::default();
        let waker = Waker::from(Arc::new(Count::default()));
        let cx = Context::from_waker(&waker);
        let checks = AtomicUsize::new(0);
        let check = || {
            checks.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        };
        assert!(bell.poll(&cx, false, check).is_pending());
        assert!(bell.poll(&cx, false, check).is_pending());
        assert_eq!(checks.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn found_after_arming_disarms_for_what_is_queued_behind_it() {
        let bell = Doorbell::default();
        let waker = Waker::from(Arc::new(Count::default()));
        let cx = Context::from_waker(&waker);
        // Two commands whose rings came before the doorbell was armed: the first check
        // misses them (queued in between), the second finds one.
        let first = AtomicBool::new(true);
        let queued = AtomicUsize::new(2);
        let check = || {
            if first.swap(false, Ordering::SeqCst) {
                return Poll::Pending;
            }
            match queued.load(Ordering::SeqCst) {
                0 => Poll::Pending,
                n => {
                    queued.store(n - 1, Ordering::SeqCst);
                    Poll::Ready(())
                }
            }
        };
        assert!(bell.poll(&cx, true, check).is_ready());
        assert!(
            bell.poll(&cx, true, check).is_ready(),
            "the second is found"
        );
        assert!(bell.poll(&cx, true, check).is_pending());
    }

    #[test]
    fn a_close_request_rings() {
        let bell = Doorbell::default();
        let woken = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&woken));
        let cx = Context::from_waker(&waker);
        let check = || {
            if bell.close_requested() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        };
        assert!(bell.poll(&cx, true, check).is_pending());
        bell.request_close();
        assert_eq!(woken.get(), 1);
        assert!(bell.poll(&cx, true, check).is_ready());
    }
}
