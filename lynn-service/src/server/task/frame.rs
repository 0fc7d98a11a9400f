//! A connection's share of the server's frame budget, while it receives a large frame.

use event_listener::EventListener;
use lynn_proto::{CloseReason, OverBudget};

use super::Task;
use crate::runtime::Runtime;

/// A connection's share of the frame budget.
#[derive(Default)]
pub(super) struct FrameHold {
    /// Bytes of the large frame it receives, granted.
    pub(super) held: usize,
    /// Paused at the budget: a wake-up for when memory is released.
    pub(super) starved: Option<EventListener>,
}

impl<S: Send + Sync + 'static, R: Runtime> Task<S, R> {
    /// Budgets `large` bytes for the frame the connection is receiving. Over the budget, it
    /// pauses (stops reading until memory is released) or closes, by the server's policy.
    #[cold]
    pub(super) fn grow_frame(&mut self, large: usize) -> bool {
        if self.resize_frame(large) {
            return true;
        }
        match self.app.budget.over() {
            OverBudget::Close => {
                self.conn.close_with(CloseReason::FrameBudget, self.now);
                false
            }
            OverBudget::Pause => {
                // Listening before the second try: a release in between is not missed.
                let released = self.app.budget.listen();
                if self.resize_frame(large) {
                    return true;
                }
                if let Some(hold) = &mut self.frame {
                    hold.starved = Some(released);
                }
                false
            }
        }
    }

    pub(super) fn resize_frame(&mut self, to: usize) -> bool {
        let (app, ip) = (&*self.app, self.scope.peer.admission_ip());
        let hold = self.frame.get_or_insert_with(Box::default);
        let done = app.budget.try_resize(ip, &mut hold.held, to, app.metrics());
        if hold.held == 0 && done {
            self.frame = None;
        }
        done
    }

    pub(super) fn frame_held(&self) -> usize {
        self.frame.as_ref().map_or(0, |hold| hold.held)
    }
}
