//! [`LazyTimer`]: one reusable sleep per drive loop, armed at the state machine's next
//! deadline.
//!
//! A deadline that moves later (the idle timeout after every received frame) does not move
//! the sleep: it fires at the old deadline, sees the new one and sleeps again. Only an
//! earlier deadline moves it at once. Moving a sleep costs a timer-wheel update; a later
//! deadline moves on nearly every turn.

use std::task::{Context, Poll};

use lynn_proto::Instant;

use crate::runtime::Timer;

/// A runtime [`Timer`] armed lazily at a moving deadline.
#[derive(Debug)]
pub struct LazyTimer<T> {
    timer: T,
    /// When the sleep fires (at or before `deadline`); `None` before it was first set.
    armed: Option<Instant>,
    deadline: Option<Instant>,
}

impl<T: Timer> LazyTimer<T> {
    /// Wraps `timer`, not armed.
    pub fn new(timer: T) -> Self {
        LazyTimer {
            timer,
            armed: None,
            deadline: None,
        }
    }

    /// Arms the timer at `deadline` (`None` disarms it); moves the sleep only when the
    /// deadline comes earlier than the sleep's.
    #[inline]
    pub fn set(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        if let Some(d) = deadline
            && self.armed.is_none_or(|armed| d < armed)
        {
            self.rearm(d);
        }
    }

    fn rearm(&mut self, at: Instant) {
        self.armed = Some(at);
        self.timer.reset(at);
    }

    /// Whether a deadline is armed.
    pub fn is_armed(&self) -> bool {
        self.deadline.is_some()
    }

    /// Ready once the armed deadline passed. `woken_at` is the time the caller read after
    /// the wake-up that started its current poll, if one did: a sleep already waiting whose
    /// deadline is later cannot have fired yet (were it to fire later, it wakes the task,
    /// whose next poll passes `None`), so it is not even looked at. Always inlined: it
    /// runs on every turn of a drive loop.
    #[inline(always)]
    pub fn poll_at(&mut self, cx: &mut Context<'_>, woken_at: Option<Instant>) -> Poll<()> {
        loop {
            let (Some(deadline), Some(armed)) = (self.deadline, self.armed) else {
                return Poll::Pending;
            };
            if self.timer.is_waiting() && woken_at.is_some_and(|now| now < armed) {
                return Poll::Pending;
            }
            if self.timer.poll_elapsed(cx).is_pending() {
                return Poll::Pending;
            }
            if armed >= deadline {
                return Poll::Ready(());
            }
            // Fired at an old, earlier deadline: sleep on to the current one.
            self.rearm(deadline);
        }
    }
}
