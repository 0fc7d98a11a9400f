//! [`FrameBudget`]: how much memory large frames that are still arriving may hold, per
//! peer address and across a server, and [`FrameLedger`], the accounting against it.
//!
//! A connection's receive buffer grows ahead of a frame larger than `read_chunk`, up to
//! `max_frame_len`; a peer that sends the start of many such frames and stalls pins that
//! memory on every connection. The ledger is pure bookkeeping (no locks, no clock): a
//! server shares one behind a lock and asks it before letting a connection hold more.
//!
//! ```
//! use std::net::IpAddr;
//! use lynn_proto::{FrameBudget, FrameLedger};
//!
//! let mut ledger = FrameLedger::new(FrameBudget { per_ip: 100, total: 150, ..Default::default() });
//! let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
//! assert!(ledger.try_resize(a, 0, 80));
//! assert!(!ledger.try_resize(a, 0, 30), "over the per-IP budget");
//! assert!(ledger.try_resize(b, 0, 70));
//! assert!(!ledger.try_resize(b, 70, 71), "over the total");
//! ledger.try_resize(a, 80, 0); // a frame completed: its memory is released
//! assert_eq!((ledger.held(a), ledger.total_held()), (0, 70));
//! ```

use std::collections::HashMap;
use std::net::IpAddr;

/// Bounds on the memory held by large frames still arriving (receive buffers grown past
/// `read_chunk`), and what happens to a connection that would exceed them. A connection
/// budgets a large frame whole, as its length field announces it, before it reads the
/// frame's body: a frame is either budgeted whole or waits, so connections waiting for
/// budget never hold part of it. `per_ip` must be at least `max_frame_len` (else the
/// largest frames could never be received).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct FrameBudget {
    /// Most bytes all connections from one IP address may hold (default 64 MiB).
    pub per_ip: usize,
    /// Most bytes the whole server may hold (default 256 MiB).
    pub total: usize,
    /// What a connection over the budget does.
    pub over: OverBudget,
}

impl Default for FrameBudget {
    fn default() -> Self {
        FrameBudget {
            per_ip: 64 * 1024 * 1024,
            total: 256 * 1024 * 1024,
            over: OverBudget::Pause,
        }
    }
}

/// What a connection whose large frame would exceed the [`FrameBudget`] does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum OverBudget {
    /// Stop reading it until memory is released (another frame completes or its connection
    /// closes); the read timeout still applies to its stalled frame, and the peer's end of
    /// stream is seen only once it reads again.
    #[default]
    Pause,
    /// Close it ([`CloseReason::FrameBudget`](crate::CloseReason::FrameBudget)).
    Close,
}

/// Bytes held against a [`FrameBudget`], per IP address and in total.
#[derive(Debug, Default)]
pub struct FrameLedger {
    budget: FrameBudget,
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

impl FrameLedger {
    /// An empty ledger for `budget`.
    pub fn new(budget: FrameBudget) -> Self {
        FrameLedger {
            budget,
            ..Default::default()
        }
    }

    /// The budget it keeps.
    pub fn budget(&self) -> &FrameBudget {
        &self.budget
    }

    /// Moves what a connection from `ip` holds from `from` bytes (what it was granted) to
    /// `to`. Shrinking always succeeds; growing succeeds only within both budgets, and
    /// otherwise changes nothing. Returns whether the connection now holds `to`.
    pub fn try_resize(&mut self, ip: IpAddr, from: usize, to: usize) -> bool {
        let held = self.per_ip.get(&ip).copied().unwrap_or(0);
        let from = from.min(held);
        if to > from {
            let more = to - from;
            if held + more > self.budget.per_ip || self.total + more > self.budget.total {
                return false;
            }
        }
        let now = held - from + to;
        self.total = self.total - from + to;
        if now == 0 {
            self.per_ip.remove(&ip);
        } else {
            self.per_ip.insert(ip, now);
        }
        true
    }

    /// Bytes held by connections from `ip`.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Bytes held by every connection.
    pub fn total_held(&self) -> usize {
        self.total
    }
}
