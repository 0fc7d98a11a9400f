//! One reusable sleep per drive loop, reset only when the deadline changes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lynn_proto::Instant;
use tokio::time::Sleep;

/// A timer armed at the next deadline of a state machine.
#[derive(Debug)]
pub(crate) struct Timer {
    sleep: Pin<Box<Sleep>>,
    deadline: Option<Instant>,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Timer {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            deadline: None,
        }
    }

    /// Arms the timer at `deadline` (`None` disarms it); resets the sleep only on change.
    pub(crate) fn set(&mut self, deadline: Option<Instant>) {
        if deadline != self.deadline {
            self.deadline = deadline;
            if let Some(d) = deadline {
                self.sleep.as_mut().reset(tokio::time::Instant::from_std(d));
            }
        }
    }

    /// Whether a deadline is armed.
    pub(crate) fn is_armed(&self) -> bool {
        self.deadline.is_some()
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.deadline.is_none() {
            return Poll::Pending;
        }
        self.sleep.as_mut().poll(cx)
    }
}
