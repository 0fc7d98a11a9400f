//! # lynn-service
//!
//! The runtime-neutral layer lynn's adapters (lynn-tokio, lynn-smol, lynn-blocking) share,
//! between the protocol core and the runtimes, as quinn sits on quinn-proto: the server and
//! the client, written once over a small [`Runtime`] trait (listen and accept, adopt a
//! socket into its task, connect, a resettable timer, spawn, the clock) that each adapter
//! implements. [`lynn_proto`] stays the protocol and nothing else, free of locks and
//! futures; what is shared between tasks and threads, and the handler side, lives here. It
//! uses no runtime; users of lynn never name this crate (each adapter names the server and
//! client with its runtime and re-exports what its API shows).
//!
//! What it holds:
//!
//! - **The server** ([`server`]): the accept loop, one task per connection driving its
//!   `Connection` (handlers run inside it), graceful shutdown, the metrics endpoint.
//! - **Server state shared between connections**: the connection table with fanout encoded
//!   once and groups ([`switchboard`], over a [`Registry`]), admission shared between
//!   tasks whose [`Seat`]s release on drop ([`SharedAdmission`]), and what an event stream
//!   yields ([`ServerEvent`]).
//! - **The handler side**: what a handler returns ([`Reply`], [`Fanout`], [`Target`],
//!   [`IntoReply`], [`HandlerError`]), what it is given ([`Context`], [`SyncContext`],
//!   [`RequestScope`]), a message through the router to a handler and back to the
//!   connection ([`dispatch`]), the server builder's rules ([`route_table`]), synchronous
//!   routes answered in place ([`sync`], [`answer_inline`]), and async handlers boxed
//!   behind one trait ([`HandlerFn`], below). A connection task's channel message is
//!   [`Outbound`].
//! - **Counters**: [`Metrics`] (lynn_tcp's 17 metrics and lynn's own, in a prometheus-client
//!   registry), fed by each connection's [`StatsReport`].
//! - **The client**, written once over a [`Runtime`] (connect a [`Transport`], a
//!   resettable [`Timer`], spawn, the clock): [`Client`], with what its background task
//!   publishes to its handles ([`client_status`]), its queue of pushes for `recv`
//!   ([`Pushes`]), and the entropy of its reconnect jitter ([`reconnect_entropy`]).
//!
//! ## Handlers without an allocation
//!
//! The async adapters run user `async fn`s without a runtime here: futures are polled once
//! with a no-op waker, and whoever takes a pending one (the connection task) polls it again
//! with its own.
//!
//! A connection task asks a route's handler to [`run_inline`](HandlerFn::run_inline): the
//! handler's future is written into a box the connection kept from its previous request of
//! the same future type ([`FutureSlots`]), polled once there, and dropped in place when
//! ready. Only a future that is still pending leaves with its box (the slot allocates a new
//! one next time).
//!
//! ```
//! use lynn_service::{FutureSlots, HandlerFn, Reply};
//!
//! // Any context type works; the adapters use `lynn_service::Context<S, ServerHandle>`.
//! let echo = lynn_service::boxed(|body: &'static str| async move { Reply::to_sender(1, body) });
//! let mut slots = FutureSlots::default();
//! for _ in 0..3 {
//!     // Ready at once: answered without an allocation after the first request.
//!     let reply = echo.run_inline("hi", &mut slots).ok().unwrap().unwrap();
//!     assert!(reply.into_parts().0.is_some());
//! }
//! ```

#![forbid(unsafe_code)]

mod client;
pub mod client_status;
#[cfg(feature = "config")]
pub mod config;
pub mod dispatch;
pub mod pushes;
#[cfg(feature = "async-io")]
pub mod reactor;
pub mod route_table;
pub mod runtime;
pub mod server;
pub mod switchboard;
#[cfg(feature = "tls")]
pub mod tls;

mod entropy;
mod handler_types;
mod lazy_timer;
mod metrics;
mod registry;
mod reply;
mod request_context;
mod seat;
mod server_event;
mod socket;
mod stats_report;
mod sync;

pub use client::Client;
pub use entropy::reconnect_entropy;
pub use handler_types::{HandlerError, IntoReply, Outbound};
pub use lazy_timer::LazyTimer;
pub use metrics::{Metrics, MetricsEndpoint};
/// The metrics library [`Metrics`] registers in (its [`Metrics::registry`]), for an
/// application that encodes or combines that registry itself.
pub use prometheus_client;
pub use pushes::Pushes;
pub use registry::Registry;
pub use reply::{Fanout, Reply, Target};
pub use request_context::{Context, RequestScope, ServerScope, SyncContext, SyncOutcome};
pub use runtime::{Listener, Runtime, Timer, Transport};
pub use seat::{Seat, SharedAdmission};
pub use server_event::ServerEvent;
pub use socket::{
    SocketHandle, apply_socket_options, default_backlog, descriptor_budget, listen_tcp,
};
#[cfg(unix)]
pub use socket::{listen_unix, unix_peer};
pub use stats_report::StatsReport;
pub use sync::{Route, SyncFn, answer_inline, answer_request, sync};

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_util::future::OptionFuture;

/// What a handler returns.
pub type HandlerResult = Result<Reply, HandlerError>;

/// The future a boxed handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// A handler future that left its [`FutureSlots`] box while pending. Its output is `None`
/// only if polled after completion, which a connection task never does.
pub type SlotFuture = Pin<Box<dyn Future<Output = Option<HandlerResult>> + Send>>;

/// A handler's future after one inline poll, if it was not ready.
pub enum Pending {
    /// A future boxed on its own.
    Boxed(HandlerFuture),
    /// A future that was polled in a reused box.
    Slot(SlotFuture),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pending::Boxed(_) => "Pending::Boxed",
            Pending::Slot(_) => "Pending::Slot",
        })
    }
}

impl Future for Pending {
    type Output = HandlerResult;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<HandlerResult> {
        match self.get_mut() {
            Pending::Boxed(fut) => fut.as_mut().poll(cx),
            Pending::Slot(fut) => fut
                .as_mut()
                .poll(cx)
                .map(|out| out.unwrap_or_else(|| Ok(Reply::none()))),
        }
    }
}

/// A route's handler, shared by every connection; `C` is the request context the adapter
/// hands it.
pub trait HandlerFn<C>: Send + Sync {
    /// The handler's future for `ctx`, boxed.
    fn call(&self, ctx: C) -> HandlerFuture;

    /// Starts the handler for `ctx` and polls it once (with a no-op waker: a pending future
    /// is polled again by whoever takes it). `Ok` holds the outcome of a handler that was
    /// ready at once, `Err` the future of one that is pending.
    fn run_inline(&self, ctx: C, _slots: &mut FutureSlots) -> Result<HandlerResult, Pending> {
        let mut fut = self.call(ctx);
        match fut
            .as_mut()
            .poll(&mut TaskContext::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => Ok(out),
            Poll::Pending => Err(Pending::Boxed(fut)),
        }
    }
}

/// Most boxes one connection keeps for reuse (one per handler future type).
const MAX_SLOTS: usize = 8;

/// Boxes of finished handler futures that one connection keeps for its next requests,
/// each a `Pin<Box<OptionFuture<F>>>` for one future type `F` (emptied when its future
/// finishes). Empty, and allocation-free, until the first request.
#[derive(Default)]
pub struct FutureSlots {
    slots: Vec<Box<dyn Any + Send>>,
}

impl std::fmt::Debug for FutureSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutureSlots")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl FutureSlots {
    /// Puts `fut` into the box kept for its type (allocating one the first time), polls it
    /// once, and either returns its output (the box stays for the next request) or hands
    /// out the box with the pending future.
    pub fn run<F>(&mut self, fut: F) -> Result<HandlerResult, Pending>
    where
        F: Future<Output = HandlerResult> + Send + 'static,
    {
        let found = self
            .slots
            .iter()
            .position(|slot| slot.is::<Pin<Box<OptionFuture<F>>>>());
        let index = match found {
            Some(i) => i,
            None => {
                if self.slots.len() >= MAX_SLOTS {
                    self.slots.pop();
                }
                self.slots
                    .push(Box::new(Box::pin(OptionFuture::<F>::from(None))));
                self.slots.len() - 1
            }
        };
        let Some(boxed) = self.slots[index].downcast_mut::<Pin<Box<OptionFuture<F>>>>() else {
            // Not reached (the slot was found or stored with this type); the caller polls
            // the future again.
            return Err(Pending::Boxed(Box::pin(fut)));
        };
        boxed.set(Some(fut).into());
        match boxed
            .as_mut()
            .poll(&mut TaskContext::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => {
                // Drop the finished future (and the request it holds) now; keep the box.
                boxed.set(None.into());
                Ok(out.unwrap_or_else(|| Ok(Reply::none())))
            }
            Poll::Pending => {
                // The pending future keeps its box; the slot gets a new, empty one.
                let pending = std::mem::replace(boxed, Box::pin(None.into()));
                Err(Pending::Slot(pending))
            }
        }
    }
}

/// A handler from a function that boxes its own futures (no inline reuse); a
/// [`HandlerFn<C>`] when `F: Fn(C) -> HandlerFuture`.
pub fn from_fn<F>(f: F) -> FromFn<F> {
    FromFn(f)
}

/// See [`from_fn`].
#[derive(Debug)]
pub struct FromFn<F>(F);

impl<C, F> HandlerFn<C> for FromFn<F>
where
    F: Fn(C) -> HandlerFuture + Send + Sync,
{
    fn call(&self, ctx: C) -> HandlerFuture {
        (self.0)(ctx)
    }
}

/// A handler from `f`, an `async fn(C) -> impl IntoReply` or an equivalent closure; ready
/// futures run in reused boxes (see [`FutureSlots`]).
pub fn boxed<F>(f: F) -> Boxed<F> {
    Boxed(f)
}

/// See [`boxed`].
#[derive(Debug)]
pub struct Boxed<F>(F);

impl<C, F, Fut, R> HandlerFn<C> for Boxed<F>
where
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    fn call(&self, ctx: C) -> HandlerFuture {
        let fut = (self.0)(ctx);
        Box::pin(async move { fut.await.into_reply() })
    }

    fn run_inline(&self, ctx: C, slots: &mut FutureSlots) -> Result<HandlerResult, Pending> {
        let fut = (self.0)(ctx);
        slots.run(async move { fut.await.into_reply() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    /// A future that is pending on its first poll and ready on its second.
    struct Once(bool);

    impl Future for Once {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn a_pending_handler_leaves_with_its_box_and_still_completes() {
        let h = boxed(|n: u16| async move {
            if n == 2 {
                Once(false).await;
            }
            Reply::to_sender(n, "x")
        });
        let mut slots = FutureSlots::default();
        assert!(h.run_inline(1, &mut slots).is_ok());
        let pending = match h.run_inline(2, &mut slots) {
            Err(p @ Pending::Slot(_)) => p,
            other => panic!("expected a pending slot future, got {other:?}"),
        };
        // The slot got a fresh box: the next ready request is still answered inline.
        let reply = h.run_inline(3, &mut slots).ok().unwrap().unwrap();
        assert_eq!(reply.into_parts().0.map(|(m, _)| m), Some(3));
        let done = pending
            .now_or_never()
            .expect("ready on its second poll")
            .unwrap();
        assert_eq!(done.into_parts().0.map(|(m, _)| m), Some(2));
        assert_eq!(slots.slots.len(), 1);
    }

    #[test]
    fn at_most_eight_future_types_are_kept() {
        let mut slots = FutureSlots::default();
        macro_rules! run_distinct {
            ($($n:literal)*) => {$(
                assert!(slots.run(async { Ok(Reply::to_sender($n, "")) }).is_ok());
            )*};
        }
        run_distinct!(1 2 3 4 5 6 7 8 9 10);
        assert_eq!(slots.slots.len(), MAX_SLOTS);
    }
}
