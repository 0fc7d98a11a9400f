//! Synchronous routes: handlers that answer a message in place, from the receive buffer,
//! while the connection decodes it ([`Connection::handle_received_inline`]). No context
//! `Arc`, no future, no owned body: for handlers that never wait (an echo, a lookup, a game
//! move applied to state behind a lock).
//!
//! [`Connection::handle_received_inline`]: lynn_proto::Connection::handle_received_inline

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Metrics;
use crate::dispatch::{FinishProblem, HandlerOutcome};
use crate::{HandlerError, Reply, RequestScope, SyncContext, SyncOutcome};
use lynn_proto::router::{Resolved, Router};
use lynn_proto::{CompleteError, Inline, InlineMessage, Request};

/// A synchronous route's handler, shared by every connection. Made by [`sync`]. It takes
/// the context by value and boxes the error, so that both travel in registers (a call per
/// message answered in place).
pub type SyncFn<S, H> =
    Box<dyn Fn(SyncContext<'_, '_, S, H>) -> Result<(), Box<HandlerError>> + Send + Sync>;

/// Boxes `f`, a `fn(&mut SyncContext) -> impl SyncOutcome`.
pub fn sync<S, H, F, R>(f: F) -> SyncFn<S, H>
where
    F: Fn(&mut SyncContext<'_, '_, S, H>) -> R + Send + Sync + 'static,
    R: SyncOutcome,
{
    Box::new(move |mut ctx| f(&mut ctx).into_outcome().map_err(Box::new))
}

/// A route: an async handler `A` (the server's boxed [`HandlerFn`](crate::HandlerFn)), or
/// a synchronous handler that answers in place.
pub enum Route<A, S, H> {
    /// An async handler (`route`, `fallback`, the event stream).
    Async(A),
    /// Answers in place (`route_sync`, `fallback_sync`).
    Sync(SyncFn<S, H>),
}

impl<A, S, H> std::fmt::Debug for Route<A, S, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Route::Async(_) => "Route::Async",
            Route::Sync(_) => "Route::Sync",
        })
    }
}

/// The callback for [`Connection::handle_received_inline`]: a message whose route is
/// synchronous is answered here (a panic or error is caught, counted in `metrics` and
/// logged, like a failed async handler); any other message is deferred to the event path.
/// Always inlined into the read loop: it runs once per message.
///
/// [`Connection::handle_received_inline`]: lynn_proto::Connection::handle_received_inline
#[inline(always)]
pub fn answer_inline<A, S, H>(
    router: &Router<Route<A, S, H>>,
    scope: &RequestScope<S, H>,
    metrics: &Metrics,
    msg: &mut InlineMessage<'_>,
) -> Inline {
    let handler = match router.resolve(msg.method()) {
        Resolved::Route(Route::Sync(h)) | Resolved::Fallback(Route::Sync(h)) => h,
        _ => return Inline::Deferred,
    };
    let problem = match call(handler, scope, msg) {
        Ok(()) => match msg.refused() {
            None => return Inline::Answered,
            Some(e) => FinishProblem::Refused(CompleteError::Encode(e.clone())),
        },
        Err(HandlerOutcome::Failed(e)) => {
            metrics.handler_error();
            FinishProblem::Handler(e)
        }
        Err(_) => {
            metrics.handler_panic();
            FinishProblem::Panicked
        }
    };
    report(scope, msg.method(), &problem);
    Inline::Answered
}

/// Runs a synchronous route's handler for `req`, a message that came as an event (it could
/// not be answered in place: requests before it were still in flight). The outcome goes
/// to [`dispatch::finish_uncounted`](crate::dispatch::finish_uncounted) (the handler
/// was never in flight).
pub fn answer_request<S, H>(
    handler: &SyncFn<S, H>,
    scope: &RequestScope<S, H>,
    req: &Request,
) -> HandlerOutcome {
    let mut msg = InlineMessage::detached(req);
    match call(handler, scope, &mut msg) {
        Ok(()) => HandlerOutcome::Replied(match msg.into_reply() {
            Some((method, body)) => Reply::to_sender(method, body),
            None => Reply::none(),
        }),
        Err(outcome) => outcome,
    }
}

/// Calls `handler`, catching a panic; `Err` holds a failure or a panic, whose reply (if
/// one was given before) is withdrawn. Always inlined: a call level less per message.
#[inline(always)]
fn call<S, H>(
    handler: &SyncFn<S, H>,
    scope: &RequestScope<S, H>,
    msg: &mut InlineMessage<'_>,
) -> Result<(), HandlerOutcome> {
    let failed = match catch_unwind(AssertUnwindSafe(|| handler(SyncContext::new(scope, msg)))) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => HandlerOutcome::Failed(*e),
        Err(_) => HandlerOutcome::Panicked,
    };
    msg.withdraw_reply();
    Err(failed)
}

/// Logs why a request of method `method` on `scope`'s connection completed without its
/// reply: a handler's error or a refused reply at warn, a panic at error, each with the
/// connection's id and peer and the method as fields.
#[cold]
#[inline(never)]
pub(crate) fn report<S, H>(scope: &RequestScope<S, H>, method: u16, problem: &FinishProblem) {
    let (id, peer) = (scope.id.0, &scope.peer);
    match problem {
        FinishProblem::Handler(e) => {
            tracing::warn!(id, %peer, method, error = %e, "handler failed; no reply");
        }
        FinishProblem::Panicked => {
            tracing::error!(id, %peer, method, "handler panicked; no reply");
        }
        FinishProblem::Refused(e) => {
            tracing::warn!(id, %peer, method, error = %e, "reply refused");
        }
    }
}
