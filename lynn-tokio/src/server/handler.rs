//! Handlers: user `async fn`s boxed behind one type so the router can hold them.
//!
//! A handler that is ready on its first poll (an echo) should cost no allocation. The
//! connection task therefore asks a handler to [`run_inline`](HandlerFn::run_inline): the
//! handler's future is written into a box the connection keeps from its previous request of
//! the same route ([`FutureSlots`]), polled once there, and only a future that is still
//! pending leaves that box (and the slot allocates a new one next time).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_util::future::OptionFuture;
use lynn_proto::{HandlerError, IntoReply, Reply};

use super::Context;

/// What a handler returns.
pub(crate) type HandlerResult = Result<Reply, HandlerError>;

/// The future a boxed handler returns.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// A handler future that left its [`FutureSlots`] box while pending. Its output is `None`
/// only if polled after completion, which the connection task never does.
pub(crate) type SlotFuture = Pin<Box<dyn Future<Output = Option<HandlerResult>> + Send>>;

/// A handler's future after one inline poll, if it was not ready.
pub(crate) enum Pending {
    /// A future boxed on its own.
    Boxed(HandlerFuture),
    /// A future that was polled in a reused box.
    Slot(SlotFuture),
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

/// A route's handler, shared by every connection.
pub(crate) trait HandlerFn<S>: Send + Sync {
    /// The handler's future for `ctx`, boxed.
    fn call(&self, ctx: Context<S>) -> HandlerFuture;

    /// Starts the handler for `ctx` and polls it once (with a no-op waker: a pending future
    /// is polled again by whoever takes it). `Ok` holds the outcome of a handler that was
    /// ready at once, `Err` the future of one that is pending.
    fn run_inline(
        &self,
        ctx: Context<S>,
        _slots: &mut FutureSlots,
    ) -> Result<HandlerResult, Pending> {
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

/// A route's handler, shared by every connection.
pub(crate) type Handler<S> = Arc<dyn HandlerFn<S>>;

/// Most boxes one connection keeps for reuse (one per handler future type).
const MAX_SLOTS: usize = 8;

/// Boxes of finished handler futures that one connection keeps for its next requests,
/// each a `Pin<Box<OptionFuture<F>>>` for one future type `F` (emptied when its future
/// finishes). Empty, and allocation-free, until the first request.
#[derive(Default)]
pub(crate) struct FutureSlots {
    slots: Vec<Box<dyn Any + Send>>,
}

impl FutureSlots {
    /// Puts `fut` into the box kept for its type (allocating one the first time), polls it
    /// once, and either returns its output (the box stays for the next request) or hands
    /// out the box with the pending future.
    fn run<F>(&mut self, fut: F) -> Result<HandlerResult, Pending>
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
            // Not reached (the slot was found or stored with this type); the caller's
            // handler set polls the future.
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

/// A handler that returns boxed futures (no inline reuse).
struct FromFn<F>(F);

impl<S, F> HandlerFn<S> for FromFn<F>
where
    F: Fn(Context<S>) -> HandlerFuture + Send + Sync,
{
    fn call(&self, ctx: Context<S>) -> HandlerFuture {
        (self.0)(ctx)
    }
}

/// A handler from a function that boxes its own futures.
pub(crate) fn from_fn<S, F>(f: F) -> Handler<S>
where
    S: 'static,
    F: Fn(Context<S>) -> HandlerFuture + Send + Sync + 'static,
{
    Arc::new(FromFn(f))
}

/// A handler made from a user closure.
struct Boxed<F>(F);

impl<S, F, Fut, R> HandlerFn<S> for Boxed<F>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    fn call(&self, ctx: Context<S>) -> HandlerFuture {
        let fut = (self.0)(ctx);
        Box::pin(async move { fut.await.into_reply() })
    }

    fn run_inline(
        &self,
        ctx: Context<S>,
        slots: &mut FutureSlots,
    ) -> Result<HandlerResult, Pending> {
        let fut = (self.0)(ctx);
        slots.run(async move { fut.await.into_reply() })
    }
}

/// Boxes `f` (an `async fn(Context<S>) -> impl IntoReply` or an equivalent closure).
pub(crate) fn boxed<S, F, Fut, R>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    Arc::new(Boxed(f))
}
