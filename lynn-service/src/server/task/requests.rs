//! How a connection task runs its requests: messages that came as events go to their
//! handlers (answered at once when they can be, else polled in `handlers`), and finished
//! handlers complete their requests.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use lynn_proto::{Instant, Request, RequestId};

use super::Task;
use crate::dispatch::{self, FinishProblem, HandlerOutcome};
use crate::runtime::Runtime;
use crate::server::Context;
use crate::server::handler::{HandlerFuture, Pending, Route};
use crate::{Fanout, HandlerError, Reply};

/// How a handler future ended: its result, or the panic it raised.
pub(super) type Outcome = Result<Result<Reply, HandlerError>, Box<dyn Any + Send>>;

/// A running handler, tagged with the request it answers.
pub(super) struct Running {
    id: RequestId,
    fut: CatchUnwind<AssertUnwindSafe<Pending>>,
}

impl Future for Running {
    type Output = (RequestId, Outcome);

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let id = self.id;
        Pin::new(&mut self.fut).poll(cx).map(|out| (id, out))
    }
}

/// The method and arrival of each request whose handler is running (in `handlers`), for
/// its log lines and its processing duration. Kept apart from [`Running`]'s output, which
/// every turn that finishes a handler moves around: one word in the task until a request
/// is deferred.
#[derive(Default)]
// Boxed: one word in every connection's task, where a `Vec` would take three.
#[allow(clippy::box_collection)]
pub(super) struct Deferred(Option<Box<Vec<(RequestId, u16, Instant)>>>);

impl Deferred {
    fn push(&mut self, id: RequestId, method: u16, since: Instant) {
        self.0.get_or_insert_default().push((id, method, since));
    }

    /// The method and arrival of request `id`, forgotten.
    fn take(&mut self, id: RequestId) -> Option<(u16, Instant)> {
        let list = self.0.as_mut()?;
        let i = list.iter().position(|(r, ..)| *r == id)?;
        let (_, method, since) = list.swap_remove(i);
        Some((method, since))
    }

    /// Forgets every request (their handlers were dropped).
    pub(super) fn clear(&mut self) {
        self.0 = None;
    }
}

/// How a handler's future (caught for panics) ended.
fn outcome_of(outcome: Outcome) -> HandlerOutcome {
    match outcome {
        Ok(result) => HandlerOutcome::from(result),
        Err(_) => HandlerOutcome::Panicked,
    }
}

impl<S: Send + Sync + 'static, R: Runtime> Task<S, R> {
    pub(super) fn dispatch(&mut self, req: Request) {
        let now = self.now;
        let app = &*self.app;
        let Some((handler, req)) =
            dispatch::dispatch_uncounted(&app.router, &mut self.conn, req, app.metrics(), now)
        else {
            return;
        };
        let handler = match handler {
            Route::Async(h) => h,
            Route::Sync(h) => {
                // Earlier requests were in flight when it came: answered in turn.
                let outcome = crate::answer_request(h, &self.scope, &req);
                return self.complete(req.id, req.method, outcome);
            }
        };
        let ctx = Context::new(self.scope.clone(), req.method, req.body);
        // Most handlers (an echo) are ready at once: answer them here, without a place
        // (an allocation) in `handlers`, and in a future box kept from the previous request
        // (no allocation either). One that is pending joins `handlers`, which polls it
        // again with the task's waker.
        let slots = &mut self.slots;
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| match &app.limit {
            None => handler.run_inline(ctx, slots),
            Some(limit) => {
                let fut = handler.call(ctx);
                let limit = limit.clone();
                let fut: HandlerFuture = Box::pin(async move {
                    let _permit = limit.acquire_arc().await;
                    fut.await
                });
                Err(Pending::Boxed(fut))
            }
        }));
        let (id, method) = (req.id, req.method);
        let pending = match started {
            Ok(Ok(result)) => return self.complete(id, method, HandlerOutcome::from(result)),
            Ok(Err(pending)) => pending,
            Err(_) => return self.complete(id, method, HandlerOutcome::Panicked),
        };
        let mut fut = AssertUnwindSafe(pending).catch_unwind();
        match (&mut fut).now_or_never() {
            Some(outcome) => self.complete(id, method, outcome_of(outcome)),
            None => {
                // Only a handler that keeps running counts as in flight, and has its
                // processing time measured.
                app.metrics().in_flight_add(1);
                self.report.deferred();
                self.deferred.push(id, method, now);
                self.handlers.push(Running { id, fut });
            }
        }
    }

    /// A handler from `handlers` (counted in flight) finished. Out of line: most requests
    /// never wait, and the turn's code stays smaller without this.
    #[inline(never)]
    pub(super) fn finish(&mut self, (id, outcome): (RequestId, Outcome)) {
        let (conn, metrics, now) = (&mut self.conn, self.app.metrics(), self.now);
        let (method, since) = self.deferred.take(id).unwrap_or((0, now));
        metrics.observe_processing(now.saturating_duration_since(since));
        let done = dispatch::finish(conn, id, outcome_of(outcome), metrics, now);
        self.after_finish(done, method);
    }

    /// A handler that was never counted in flight finished (at once).
    #[inline]
    pub(super) fn complete(&mut self, id: RequestId, method: u16, outcome: HandlerOutcome) {
        let (conn, metrics, now) = (&mut self.conn, self.app.metrics(), self.now);
        let done = dispatch::finish_uncounted(conn, id, outcome, metrics, now);
        self.after_finish(done, method);
    }

    /// Logs a finished request's problem and routes its fanout (usually it has neither).
    /// Always inlined and taken apart: as a call, or dropped whole, it costs measurably
    /// per request answered at once.
    #[inline(always)]
    fn after_finish(&mut self, done: dispatch::Finished, method: u16) {
        let dispatch::Finished { fanout, problem } = done;
        if let Some(problem) = problem {
            self.report_problem(problem, method);
        }
        if !fanout.is_empty() {
            self.route(fanout);
        }
    }

    #[cold]
    fn report_problem(&self, problem: FinishProblem, method: u16) {
        crate::sync::report(&self.scope, method, &problem);
    }

    fn route(&self, fanout: Vec<Fanout>) {
        for f in fanout {
            self.app.handle.fanout(f.target, f.method, f.body);
        }
    }
}
