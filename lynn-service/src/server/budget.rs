//! [`SharedBudget`]: one server's [`FrameLedger`] shared by its connection tasks, with a
//! wake-up for tasks paused at the budget when memory is released.

use std::net::IpAddr;
use std::sync::Mutex;

use event_listener::{Event, EventListener};
use lynn_proto::{FrameBudget, FrameLedger, OverBudget};

use crate::Metrics;

/// The frame memory ledger of one server.
#[derive(Debug)]
pub(crate) struct SharedBudget {
    ledger: Mutex<FrameLedger>,
    over: OverBudget,
    /// Notified when memory is released.
    released: Event,
}

impl SharedBudget {
    pub(crate) fn new(budget: FrameBudget) -> Self {
        SharedBudget {
            over: budget.over,
            ledger: Mutex::new(FrameLedger::new(budget)),
            released: Event::new(),
        }
    }

    /// What a connection over the budget does.
    pub(crate) fn over(&self) -> OverBudget {
        self.over
    }

    /// Moves what a connection from `ip` holds from `*held` to `to` bytes; `*held` follows
    /// when it succeeds (shrinking always does, and wakes paused connections).
    pub(crate) fn try_resize(
        &self,
        ip: IpAddr,
        held: &mut usize,
        to: usize,
        metrics: &Metrics,
    ) -> bool {
        let ok = self
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_resize(ip, *held, to);
        if ok {
            metrics.frame_bytes_add(to as i64 - *held as i64);
            if to < *held {
                self.released.notify(usize::MAX);
            }
            *held = to;
        } else {
            metrics.over_frame_budget();
        }
        ok
    }

    /// A wake-up for the next release of memory.
    pub(crate) fn listen(&self) -> EventListener {
        self.released.listen()
    }
}
