//! Starting one server connection: its table entry, its two threads, and the cleanup that
//! runs however the connection ends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::mpsc::{channel, sync_channel};
use std::thread;

use lynn_proto::{CloseReason, Connection, ConnectionId, Instant, PeerAddr};
use lynn_service::Seat;
use lynn_service::StatsReport;
use lynn_service::switchboard::Registration;

use crate::conn::{ConnTask, Input};
use crate::context::Scope;
use crate::events::ServerEvent;
use crate::handle::{Entry, ServerHandle};
use crate::io::{WRITE_SLICE, spawn_reader};
use crate::server::{Shared, live_add};
use crate::stream::Stream;

/// Undoes a connection's registration on every exit path (normal close, error, panic):
/// lynn-service's [`Registration`] removes it from the table, counts the close and releases its
/// admission seat; then the close is reported on the event stream and a waiting shutdown
/// is woken.
struct Cleanup<S> {
    id: ConnectionId,
    shared: Arc<Shared<S>>,
    registration: Option<Registration<Entry>>,
    reason: Option<CloseReason>,
}

impl<S> Drop for Cleanup<S> {
    fn drop(&mut self) {
        let reason = self.reason.take().unwrap_or(CloseReason::Local);
        log::debug!("{} closed: {reason}", self.id);
        if let Some(mut registration) = self.registration.take() {
            registration.set_reason(reason.clone());
        }
        if let Some(events) = &self.shared.events {
            let _ = events.send(ServerEvent::Closed {
                id: self.id,
                reason,
            });
        }
        live_add(&self.shared.handle, -1);
    }
}

/// Registers the connection and starts its connection thread (which starts its reader).
pub(crate) fn connection<S: Send + Sync + 'static>(
    shared: &Arc<Shared<S>>,
    stream: Stream,
    peer: PeerAddr,
    seat: Seat,
) -> std::io::Result<()> {
    let config = &shared.config;
    stream.apply(&config.socket);
    stream.set_write_timeout(Some(WRITE_SLICE))?;
    let conn = Connection::new(shared.connection.clone(), Instant::now())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // Unbounded as a channel, bounded by its senders: outbound messages by `outbound_queue`
    // (`Entry::offer`), one close, every in-flight completion, the reader's one event. A
    // `sync_channel` of that capacity allocated all its slots up front (~64 KiB per
    // connection for the defaults).
    let (tx, rx) = channel::<Input>();
    let queued = Arc::new(AtomicUsize::new(0));
    let kill = stream.try_clone()?;
    let reader_stream = stream.try_clone()?;
    let handle: &ServerHandle = &shared.handle;
    let entry = Entry {
        tx: tx.clone(),
        queued: Arc::clone(&queued),
        limit: config.outbound_queue,
        close_sent: AtomicBool::new(false),
        peer: peer.clone(),
        kill,
    };
    let registration = handle.inner.board.register(entry, seat);
    let id = registration.id();
    live_add(handle, 1);
    let cleanup = Cleanup {
        id,
        shared: Arc::clone(shared),
        registration: Some(registration),
        reason: None,
    };
    if handle.is_shutting_down() {
        // The shutdown's close sweep may have run before we registered.
        handle.close(id);
    }
    let (tokens, token_rx) = sync_channel::<Vec<u8>>(1);
    let scope = Arc::new(Scope {
        id,
        peer: peer.clone(),
        state: Arc::clone(&shared.state),
        server: handle.clone(),
    });
    let task = ConnTask {
        id,
        scope,
        conn,
        stream,
        rx,
        tx: tx.clone(),
        tokens,
        spare: Some(vec![0; config.connection.read_chunk]),
        reader_done: false,
        queued,
        outq: VecDeque::new(),
        stalled: false,
        report: StatsReport::default(),
        shared: Arc::clone(shared),
    };
    // The cleanup moves into the thread; if spawning fails it is dropped with the closure
    // and undoes everything.
    thread::Builder::new()
        .name(format!("lynn-{id}"))
        .spawn(move || {
            let mut cleanup = cleanup;
            let reader = spawn_reader(
                format!("lynn-{id}-read"),
                reader_stream,
                token_rx,
                move |e| tx.send(Input::Read(e)).is_ok(),
            );
            if let Some(events) = &task.shared.events {
                let _ = events.send(ServerEvent::Connected {
                    id,
                    peer: task.scope.peer.clone(),
                });
            }
            let kill = task.stream.try_clone();
            cleanup.reason = Some(match &reader {
                Ok(_) => task.run(),
                Err(e) => CloseReason::Transport(e.kind()),
            });
            // Unblocks the reader (EOF on its read; its token channel is gone).
            if let Ok(s) = kill {
                s.shutdown();
            }
            if let Ok(r) = reader {
                let _ = r.join();
            }
        })
        .map(|_| ())
}
