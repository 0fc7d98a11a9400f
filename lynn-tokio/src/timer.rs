//! One reusable sleep per drive loop. A deadline that moves later (the idle timeout after
//! every received frame) does not reset the sleep: it fires at the old deadline, sees the
//! new one and sleeps again. Only an earlier deadline resets it at once.
//!
//! The loop polls the timer on every turn; once the sleep is registered (polled pending
//! since its last reset) it holds the task's waker, so it is polled again only after it
//! fired (`Sleep::is_elapsed`, one atomic load) instead of every turn (~120 instructions).
//! And when the caller read the clock after this poll's wake-up and it is still before
//! the sleep's deadline, not even that load is made: the sleep lives in its own allocation,
//! a cache line that misses on every turn with 1,024 connections.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lynn_proto::Instant;
use tokio::time::Sleep;

/// A timer armed at the next deadline of a state machine: the
/// [`Timer`](lynn_service::Timer) of [`TokioRuntime`](crate::TokioRuntime).
#[derive(Debug)]
pub struct Timer {
    sleep: Pin<Box<Sleep>>,
    /// When the sleep fires (at or before `deadline`).
    armed: Instant,
    deadline: Option<Instant>,
    /// The sleep was polled pending since it was last reset: it will wake the task.
    waiting: bool,
}

impl Timer {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Timer {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
                now,
            ))),
            armed: now,
            deadline: None,
            waiting: false,
        }
    }

    /// Arms the timer at `deadline` (`None` disarms it); resets the sleep only when the
    /// deadline comes earlier than the sleep's.
    pub(crate) fn set(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        if let Some(d) = deadline
            && d < self.armed
        {
            self.rearm(d);
        }
    }

    fn rearm(&mut self, at: Instant) {
        self.armed = at;
        self.waiting = false;
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::from_std(at));
    }

    /// Whether a deadline is armed.
    pub(crate) fn is_armed(&self) -> bool {
        self.deadline.is_some()
    }
}

impl Timer {
    /// Polls the timer. `woken_at` is the time read after the wake-up that started the
    /// current poll of the task, if one was: a registered sleep whose deadline is later
    /// cannot have fired yet (were it to fire later, it wakes the task, whose next poll
    /// passes `None`).
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, woken_at: Option<Instant>) -> Poll<()> {
        if self.waiting && woken_at.is_some_and(|now| now < self.armed) {
            return Poll::Pending;
        }
        Pin::new(self).poll(cx)
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Some(deadline) = self.deadline else {
                return Poll::Pending;
            };
            // The task polling this is the one whose waker the sleep holds (one task owns
            // the timer), so a registered sleep that has not fired needs no poll.
            if self.waiting && !self.sleep.is_elapsed() {
                return Poll::Pending;
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                self.waiting = true;
                return Poll::Pending;
            }
            self.waiting = false;
            if self.armed >= deadline {
                return Poll::Ready(());
            }
            // Fired at an old, earlier deadline: sleep on to the current one.
            self.rearm(deadline);
        }
    }
}
