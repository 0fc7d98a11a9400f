//! Serving one request on a server connection, minus the IO: what a runtime does with a
//! message event ([`dispatch`]) and with a finished handler ([`finish`]).
//!
//! Every server runtime does the same: resolve the method through the [`Router`], handle
//! an unknown method per policy, count the handler in flight, and when it finishes, turn its
//! outcome into the reply to the sender (completed in request order) and the fanout for
//! others. The runtime only starts handlers, catches panics and routes the fanout.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use lynn_proto::codec::{self, FrameKind, Marks};
//! use lynn_service::dispatch::{self, HandlerOutcome};
//! use lynn_proto::router::Router;
//! use lynn_proto::{Connection, ConnectionConfig, Event, Instant};
//! use lynn_service::Metrics;
//! use lynn_service::Reply;
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
//! let frame = codec::encode_to_bytes(Marks::default(), FrameKind::Message, 1, b"hi", u64::MAX);
//! conn.handle_bytes(&frame.unwrap(), now);
//! let router = Router::builder().route(1, "echo").build().unwrap();
//! let metrics = Metrics::default();
//!
//! let Some(Event::Message(req)) = conn.poll_event() else { panic!() };
//! let (handler, req) = dispatch::dispatch(&router, &mut conn, req, &metrics, now).unwrap();
//! assert_eq!(*handler, "echo");
//! let reply = Reply::to_sender(req.method, req.body.clone());
//! let done = dispatch::finish(&mut conn, req.id, HandlerOutcome::Replied(reply), &metrics, now);
//! assert!(done.fanout.is_empty() && done.problem.is_none());
//! assert!(conn.wants_write());
//! ```

use thiserror::Error;

use crate::HandlerError;
use crate::Metrics;
use crate::reply::{Fanout, Reply};
use lynn_proto::router::{Resolved, Router};
use lynn_proto::{CloseReason, CompleteError};
use lynn_proto::{Connection, Instant, Request, RequestId};

/// Resolves `req` through `router`. Returns the handler to start (the request is now in
/// flight: call [`finish`] exactly once for it), or `None` when the core dealt with it: an
/// unknown method is completed without a reply ([`UnknownMethod::Ignore`]) or closes the
/// connection ([`UnknownMethod::Close`]), and is counted either way.
///
/// [`UnknownMethod::Ignore`]: lynn_proto::router::UnknownMethod::Ignore
/// [`UnknownMethod::Close`]: lynn_proto::router::UnknownMethod::Close
#[inline]
pub fn dispatch<'r, H>(
    router: &'r Router<H>,
    conn: &mut Connection,
    req: Request,
    metrics: &Metrics,
    now: Instant,
) -> Option<(&'r H, Request)> {
    let started = dispatch_uncounted(router, conn, req, metrics, now);
    if started.is_some() {
        metrics.in_flight_add(1);
    }
    started
}

/// [`dispatch`] without counting the handler in flight, for a runtime that first polls the
/// handler once inline: a handler that finished at once goes to [`finish_uncounted`] (it
/// was never in flight as far as the metrics can tell); one that did not is counted with
/// `metrics.in_flight_add(1)` and later goes to [`finish`]. Saves two updates of a shared
/// counter per request that is answered at once.
#[inline]
pub fn dispatch_uncounted<'r, H>(
    router: &'r Router<H>,
    conn: &mut Connection,
    req: Request,
    metrics: &Metrics,
    now: Instant,
) -> Option<(&'r H, Request)> {
    match router.resolve(req.method) {
        Resolved::Route(h) | Resolved::Fallback(h) => Some((h, req)),
        Resolved::Ignore => {
            metrics.unknown_method();
            // Only fails for an id that is not in flight, which a fresh request always is.
            let _ = conn.complete(req.id, None, now);
            None
        }
        Resolved::Close => {
            metrics.unknown_method();
            // Requests before this one are still answered; then the connection closes.
            let _ = conn.complete(req.id, None, now);
            conn.close_with(CloseReason::UnknownMethod { method: req.method }, now);
            None
        }
    }
}

/// How a handler ended.
#[derive(Debug)]
pub enum HandlerOutcome {
    /// It returned a reply (possibly [`Reply::none`]).
    Replied(Reply),
    /// It returned an error.
    Failed(HandlerError),
    /// It panicked (caught by the runtime).
    Panicked,
}

impl From<Result<Reply, HandlerError>> for HandlerOutcome {
    fn from(result: Result<Reply, HandlerError>) -> Self {
        match result {
            Ok(reply) => HandlerOutcome::Replied(reply),
            Err(e) => HandlerOutcome::Failed(e),
        }
    }
}

/// Something about a finished request worth logging (at warn).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FinishProblem {
    /// The handler failed; the request completed without a reply.
    #[error(transparent)]
    Handler(HandlerError),
    /// The handler panicked; the request completed without a reply.
    #[error("handler panicked")]
    Panicked,
    /// The connection refused the completion (for example a reply too large for the peer).
    #[error("reply refused: {0}")]
    Refused(CompleteError),
}

/// What [`finish`] leaves to the runtime.
#[derive(Debug)]
#[must_use = "route the fanout and log the problem"]
pub struct Finished {
    /// Messages for recipients other than the sender: route them through the server's
    /// connection table.
    pub fanout: Vec<Fanout>,
    /// What went wrong, if anything.
    pub problem: Option<FinishProblem>,
}

/// Completes request `id` with the handler's `outcome`: counts it out of flight, counts a
/// failure or panic, and gives the sender's reply to `conn` (which sends it in request
/// order). Returns the fanout to route.
#[inline]
pub fn finish(
    conn: &mut Connection,
    id: RequestId,
    outcome: HandlerOutcome,
    metrics: &Metrics,
    now: Instant,
) -> Finished {
    metrics.in_flight_add(-1);
    finish_uncounted(conn, id, outcome, metrics, now)
}

/// [`finish`] for a handler started with [`dispatch_uncounted`] and never counted in
/// flight: the same, without taking it out of the in-flight count.
#[inline]
pub fn finish_uncounted(
    conn: &mut Connection,
    id: RequestId,
    outcome: HandlerOutcome,
    metrics: &Metrics,
    now: Instant,
) -> Finished {
    let reply = match outcome {
        HandlerOutcome::Replied(reply) => reply,
        HandlerOutcome::Failed(e) => {
            metrics.handler_error();
            return failed(conn, id, FinishProblem::Handler(e), now);
        }
        HandlerOutcome::Panicked => {
            metrics.handler_panic();
            return failed(conn, id, FinishProblem::Panicked, now);
        }
    };
    let (to_sender, fanout) = reply.into_parts();
    let problem = conn
        .complete(id, to_sender, now)
        .err()
        .map(FinishProblem::Refused);
    Finished { fanout, problem }
}

/// Completes request `id` without a reply after its handler failed.
#[cold]
fn failed(conn: &mut Connection, id: RequestId, problem: FinishProblem, now: Instant) -> Finished {
    // The handler's problem is the one reported, even for an id that was not in flight.
    let _ = conn.complete(id, None, now);
    Finished {
        fanout: Vec::new(),
        problem: Some(problem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use lynn_proto::codec::{self, FrameKind, Marks};
    use lynn_proto::router::UnknownMethod;
    use lynn_proto::{ConnectionConfig, Event};

    fn request(conn: &mut Connection, method: u16, now: Instant) -> Request {
        let frame =
            codec::encode_to_bytes(Marks::default(), FrameKind::Message, method, b"x", 1 << 20);
        conn.handle_bytes(&frame.unwrap(), now);
        match conn.poll_event() {
            Some(Event::Message(req)) => req,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn unknown_method_is_ignored_or_closes() {
        let now = Instant::now();
        let metrics = Metrics::default();
        let ignore: Router<()> = Router::builder().build().unwrap();
        let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
        let req = request(&mut conn, 9, now);
        assert!(dispatch(&ignore, &mut conn, req, &metrics, now).is_none());
        assert_eq!(conn.in_flight(), 0, "completed without a reply");
        assert!(!conn.is_closed());

        let close: Router<()> = Router::builder()
            .unknown_method(UnknownMethod::Close)
            .build()
            .unwrap();
        let req = request(&mut conn, 9, now);
        assert!(dispatch(&close, &mut conn, req, &metrics, now).is_none());
        assert!(conn.is_lingering(), "closing: the write side ends first");
        conn.handle_eof(now);
        assert!(matches!(
            conn.poll_event(),
            Some(Event::Closed(CloseReason::UnknownMethod { method: 9 }))
        ));
        assert!(metrics.render().contains("lynn_unknown_method"), "counted");
    }

    #[test]
    fn finish_replies_in_order_and_returns_fanout() {
        let now = Instant::now();
        let metrics = Metrics::default();
        let router = Router::builder().route(1, 'a').build().unwrap();
        let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
        let r1 = request(&mut conn, 1, now);
        let r2 = request(&mut conn, 1, now);
        let (_, r1) = dispatch(&router, &mut conn, r1, &metrics, now).unwrap();
        let (_, r2) = dispatch(&router, &mut conn, r2, &metrics, now).unwrap();
        let second = Reply::to_sender(1, "2").and(Target::All, 7, "all");
        let done = finish(
            &mut conn,
            r2.id,
            HandlerOutcome::Replied(second),
            &metrics,
            now,
        );
        assert_eq!(done.fanout.len(), 1);
        assert!(!conn.wants_write(), "the second reply waits for the first");
        let done = finish(&mut conn, r1.id, HandlerOutcome::Panicked, &metrics, now);
        assert!(matches!(done.problem, Some(FinishProblem::Panicked)));
        assert!(
            conn.wants_write(),
            "the second reply leaves once the first completed"
        );
        assert_eq!(metrics.handler_failures(), (0, 1));
    }

    #[test]
    fn failed_handler_is_counted_and_reported() {
        let now = Instant::now();
        let metrics = Metrics::default();
        let router = Router::builder().route(1, ()).build().unwrap();
        let mut conn = Connection::new(ConnectionConfig::server(), now).unwrap();
        let req = request(&mut conn, 1, now);
        let (_, req) = dispatch(&router, &mut conn, req, &metrics, now).unwrap();
        let outcome = HandlerOutcome::from(Err(HandlerError("boom".into())));
        let done = finish(&mut conn, req.id, outcome, &metrics, now);
        assert!(matches!(done.problem, Some(FinishProblem::Handler(_))));
        assert_eq!(metrics.handler_failures(), (1, 0));
        let again = finish(
            &mut conn,
            req.id,
            HandlerOutcome::Replied(Reply::none()),
            &metrics,
            now,
        );
        assert!(
            matches!(again.problem, Some(FinishProblem::Refused(_))),
            "completed twice"
        );
    }
}
