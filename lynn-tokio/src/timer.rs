//! [`Timer`]: a tokio sleep moved to each new deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lynn_proto::Instant;
use tokio::time::Sleep;

/// A tokio sleep that can be moved: the [`Timer`](lynn_service::Timer) of
/// [`TokioRuntime`](crate::TokioRuntime).
///
/// Once polled pending it holds the task's waker, so a poll before it fired is one atomic
/// load (`Sleep::is_elapsed`) instead of a poll of the sleep; one task owns the timer, so
/// the waker it holds is that task's.
#[derive(Debug)]
pub struct Timer {
    sleep: Pin<Box<Sleep>>,
    /// Polled pending since it was last reset: it will wake the task.
    waiting: bool,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Timer {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            waiting: false,
        }
    }
}

impl lynn_service::Timer for Timer {
    fn reset(&mut self, deadline: Instant) {
        self.waiting = false;
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::from_std(deadline));
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiting && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        let res = self.sleep.as_mut().poll(cx);
        self.waiting = res.is_pending();
        res
    }

    fn is_waiting(&self) -> bool {
        self.waiting
    }
}
