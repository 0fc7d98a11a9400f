//! A connection's task from the accepted socket to its close: the setup, then the drive
//! loop, then what is given back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use lynn_proto::{CloseReason, Connection, ConnectionId, PeerAddr};
use tracing::Span;

use super::{Accepted, Drive};
use crate::runtime::{Runtime, Transport};
use crate::server::context::Scope;
use crate::server::handle::Entry;
use crate::server::inbox::Inbox;
use crate::server::serve::Live;
use crate::server::upgrade::Upgrade;
use crate::server::{App, ServerEvent};
use crate::switchboard::Registration;

/// Runs the connection until it closes; its registration (table entry, admission seat)
/// is given back on every exit path. The accepted socket is adopted here, in the task
/// (a runtime with several reactors registers it with the one the task runs on).
///
/// Two phases in one future ([`Run`]): the setup (adoption, the upgrade, the `Connected`
/// event), boxed while it lasts, then the drive loop. An `async` block over both would
/// keep its captured arguments, and every moved-from local, beside the drive loop for the
/// connection's life.
///
/// `U` turns the adopted socket into the stream the connection runs over: as it is
/// ([`Plain`](crate::server::upgrade::Plain)) or after a TLS handshake; the task is monomorphised
/// over it.
pub(crate) fn run<S: Send + Sync + 'static, R: Runtime, U: Upgrade<S, R>>(
    app: Arc<App<S, R>>,
    accepted: Accepted<R>,
    peer: PeerAddr,
    registration: Registration<Entry>,
    inbox: Arc<Inbox>,
    live: Live,
) -> impl Future<Output = ()> + Send + 'static {
    // The setup: adopts and upgrades the socket and announces the connection; `None` when
    // it closed before its drive loop started (its registration given back).
    Run::Setup(Box::pin(async move {
        let stream = match app.rt.adopt(accepted, &app.socket) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "accepted connection not adopted");
                give_back(&inbox, registration, &CloseReason::Transport(e.kind()));
                return None;
            }
        };
        let stream = match U::upgrade(&app, stream, &inbox).await {
            Ok(stream) => stream,
            Err((failed, socket)) => {
                failed.report(app.metrics(), &peer);
                give_back(&inbox, registration, &failed.reason());
                drop(socket);
                return None;
            }
        };
        let id = registration.id();
        let span = connection_span(id, &peer);
        if let Some(events) = &app.events {
            let event = ServerEvent::Connected {
                id,
                peer: peer.clone(),
            };
            let _ = events.send(event).await;
        }
        let conn = match Connection::new(app.connection.clone(), app.rt.now()) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::error!(error = %e, "connection config refused");
                give_back(&inbox, registration, &CloseReason::Local);
                closed(&app, id, CloseReason::Local, live);
                return None;
            }
        };
        let mut scope = Scope::new(id, peer, app.scope.clone());
        U::annotate(&stream, &mut scope);
        let mut drive = Drive::new(app, Arc::new(scope), conn, stream, inbox);
        drive.span = span;
        Some(Driving {
            drive,
            registration,
            live,
        })
    }))
}

/// A connection's task: its setup, then its drive loop. The drive loop is held inline,
/// being what the task is for most of its life: the task is one allocation.
#[allow(clippy::large_enum_variant)]
enum Run<F, S, R: Runtime, T> {
    Setup(Pin<Box<F>>),
    Driving(Driving<S, R, T>),
    Ended,
}

/// The drive loop and what is given back when it ends.
struct Driving<S, R: Runtime, T> {
    drive: Drive<S, R, T>,
    registration: Registration<Entry>,
    /// Counts the task out of the server's when it ends or is dropped.
    live: Live,
}

impl<F, S, R, T> Future for Run<F, S, R, T>
where
    F: Future<Output = Option<Driving<S, R, T>>>,
    S: Send + Sync + 'static,
    R: Runtime,
    T: Transport,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let run = &mut *self;
        if let Run::Setup(setup) = run {
            *run = match ready!(setup.as_mut().poll(cx)) {
                Some(driving) => Run::Driving(driving),
                None => Run::Ended,
            };
        }
        let Run::Driving(driving) = run else {
            return Poll::Ready(());
        };
        let reason = ready!(Pin::new(&mut driving.drive).poll(cx));
        let Run::Driving(driving) = std::mem::replace(run, Run::Ended) else {
            unreachable!("matched above");
        };
        let Driving {
            drive,
            registration,
            live,
        } = driving;
        {
            let _entered = drive.span.as_ref().map(Span::enter);
            // Before the socket closes (with `drive`), so that whoever sees it close also
            // sees the server updated.
            give_back(&drive.inbox, registration, &reason);
        }
        let app = drive.task.app.clone();
        let id = drive.task.scope.id;
        drop(drive);
        closed(&app, id, reason, live);
        Poll::Ready(())
    }
}

/// Sends the `Closed` event, if the server has an event stream: at once, or from a task
/// of its own while the stream is full (which holds `live`, so that a graceful shutdown
/// waits for it).
fn closed<S: Send + Sync + 'static, R: Runtime>(
    app: &App<S, R>,
    id: ConnectionId,
    reason: CloseReason,
    live: Live,
) {
    let Some(events) = &app.events else {
        return;
    };
    if let Err(async_channel::TrySendError::Full(event)) =
        events.try_send(ServerEvent::Closed { id, reason })
    {
        let events = events.clone();
        app.rt.spawn(async move {
            let _ = events.send(event).await;
            drop(live);
        });
    }
}

/// The connection's span, `connection{id, peer}` (`id` the number of its
/// [`ConnectionId`]) at debug level, when that level is enabled for this crate as the
/// connection opens (entered on every poll of its task then); `None` otherwise, so that a
/// connection costs no span work per poll unless debugging.
fn connection_span(id: ConnectionId, peer: &PeerAddr) -> Option<Span> {
    let span = tracing::debug_span!("connection", id = id.0, %peer);
    (!span.is_disabled()).then_some(span)
}

/// Gives the connection's registration (table entry, admission seat) back with its close
/// reason, and refuses further commands.
fn give_back(inbox: &Inbox, mut registration: Registration<Entry>, reason: &CloseReason) {
    inbox.hang_up();
    tracing::debug!(
        id = registration.id().0,
        reason = reason.label(),
        detail = %reason,
        "connection closed"
    );
    registration.set_reason(reason.clone());
}
