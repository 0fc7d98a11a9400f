//! The client's background task: sessions one after another, with the core's reconnect
//! policy and the offline queue in between.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use async_io::Timer;
use bytes::Bytes;
use futures_lite::future;
use lynn_proto::reconnect::{Reconnect, ReconnectConfig, Step};
use lynn_proto::{
    ClientConfig, ClientError, CloseReason, Instant, Message, Metrics, PendingRequests,
};

use crate::command::Command;
use crate::dial::{dial, seed};
use crate::session::{Rx, Session, SessionEnd};
use crate::stream::Stream;

/// Why the client ended for good.
#[derive(Clone, Debug)]
enum End {
    Closed(Option<CloseReason>),
    GaveUp(u32),
}

/// State the task shares with the handles.
#[derive(Debug, Default)]
pub(crate) struct ClientShared {
    connected: AtomicBool,
    end: Mutex<Option<End>>,
    pub(crate) metrics: Metrics,
}

impl ClientShared {
    /// Whether a connection is up now.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Release);
    }

    /// The error for a call made after the task ended.
    pub(crate) fn ended(&self) -> ClientError {
        match &*self.end.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(End::GaveUp(attempts)) => ClientError::GaveUp {
                attempts: *attempts,
            },
            Some(End::Closed(reason)) => ClientError::Closed(reason.clone()),
            None => ClientError::Closed(None),
        }
    }
}

/// What happened while waiting offline.
enum Offline {
    /// The back-off wait is over.
    Elapsed,
    /// The user closed the client (or every handle is gone).
    Closed(Option<async_channel::Sender<()>>),
}

/// Everything the task owns.
pub(crate) struct ClientTask {
    pub(crate) config: ClientConfig,
    pub(crate) cmds: Rx<Command>,
    pub(crate) incoming: async_channel::Sender<Message>,
    pub(crate) shared: std::sync::Arc<ClientShared>,
}

impl ClientTask {
    /// Runs the client from its first connection until it ends for good.
    pub(crate) async fn run(mut self, first: Stream) {
        let mut policy = self.config.reconnect.clone().and_then(|c| {
            let c = ReconnectConfig {
                seed: seed(c.seed),
                ..c
            };
            Reconnect::new(c).ok()
        });
        if let Some(p) = &mut policy {
            let now = Instant::now();
            let _ = p.poll(now);
            p.handle_connected(now);
        }
        let mut pending = PendingRequests::new(
            self.config.max_pending_requests,
            self.config.request_timeout,
        );
        let mut offline = VecDeque::new();
        let mut last: Option<CloseReason> = None;
        let mut stream = Some(first);
        let (end, done) = loop {
            if let Some(s) = stream.take() {
                self.shared.set_connected(true);
                let end = match Session::new(
                    &self.config,
                    s,
                    &mut self.cmds,
                    &self.incoming,
                    &mut pending,
                    &self.shared.metrics,
                    &mut offline,
                ) {
                    Ok(session) => session.run().await,
                    Err(e) => {
                        tracing::error!(error = %e, "client connection settings rejected");
                        SessionEnd::Closed(None)
                    }
                };
                self.shared.set_connected(false);
                for waiter in pending.drain() {
                    let _ = waiter.try_send(Err(ClientError::Disconnected));
                }
                match end {
                    SessionEnd::Closed(done) => break (End::Closed(None), done),
                    SessionEnd::Lost(reason) => {
                        tracing::debug!(%reason, "client connection lost");
                        last = Some(reason);
                        match &mut policy {
                            Some(p) => p.handle_disconnected(Instant::now()),
                            None => break (End::Closed(last), None),
                        }
                    }
                }
            }
            let Some(p) = &mut policy else {
                break (End::Closed(last), None);
            };
            match p.poll(Instant::now()) {
                Step::Connect => match dial(&self.config).await {
                    Ok(s) => {
                        p.handle_connected(Instant::now());
                        stream = Some(s);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reconnect attempt failed");
                        p.handle_connect_failed(Instant::now());
                    }
                },
                Step::Wait(at) => {
                    if let Offline::Closed(done) = self.wait_offline(at, &mut offline).await {
                        break (End::Closed(last), done);
                    }
                }
                Step::GaveUp { attempts } => break (End::GaveUp(attempts), None),
                Step::Stopped | Step::Connecting | Step::Connected => {
                    break (End::Closed(last), None);
                }
            }
        };
        *self
            .shared
            .end
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(end);
        self.cmds.close();
        while let Ok(cmd) = self.cmds.try_recv() {
            cmd.fail(self.shared.ended());
        }
        drop(done);
    }

    /// Serves calls while disconnected until `at`: sends go to the offline queue (up to
    /// `offline_queue`), requests fail with `Disconnected`.
    async fn wait_offline(&mut self, at: Instant, offline: &mut VecDeque<(u16, Bytes)>) -> Offline {
        loop {
            let timer = async {
                Timer::at(at).await;
                None
            };
            let cmds = &self.cmds;
            let next = future::or(timer, async { Some(cmds.recv().await) }).await;
            match next {
                None => return Offline::Elapsed,
                Some(Err(_)) => return Offline::Closed(None),
                Some(Ok(Command::Close { done })) => return Offline::Closed(Some(done)),
                Some(Ok(Command::Send { method, body, ack })) => {
                    let result = if offline.len() < self.config.offline_queue {
                        offline.push_back((method, body));
                        Ok(())
                    } else {
                        Err(ClientError::Disconnected)
                    };
                    let _ = ack.try_send(result);
                }
                Some(Ok(cmd)) => cmd.fail(ClientError::Disconnected),
            }
        }
    }
}
