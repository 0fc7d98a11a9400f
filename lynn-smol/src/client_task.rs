//! The client's background task: sessions one after another, with the core's reconnect
//! policy in between; calls made while offline go to the core's `ClientCalls`.

use std::sync::Arc;

use async_io::Timer;
use futures_lite::future;
use lynn_proto::reconnect::{Reconnect, Step};
use lynn_proto::{ClientConfig, CloseReason, Instant};
use lynn_service::Pushes;
use lynn_service::client_status::{ClientEnd, ClientStatus};

use crate::command::{Command, answer};
use crate::dial::dial;
use crate::session::{Calls, Rx, Session, SessionEnd};
use crate::stream::Stream;

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
    pub(crate) pushes: Arc<Pushes>,
    pub(crate) status: Arc<ClientStatus>,
}

impl Drop for ClientTask {
    fn drop(&mut self) {
        // However the task ends (even cancelled): `recv` ends once the pushes are taken.
        self.pushes.close();
    }
}

impl ClientTask {
    /// Runs the client from its first connection until it ends for good.
    pub(crate) async fn run(mut self, first: Stream) {
        let mut policy = self.config.reconnect.clone().and_then(|c| {
            Reconnect::new(c.with_distinct_seed(lynn_service::reconnect_entropy())).ok()
        });
        if let Some(p) = &mut policy {
            let now = Instant::now();
            let _ = p.poll(now);
            p.handle_connected(now);
        }
        let mut calls = Calls::new(&self.config);
        let mut last: Option<CloseReason> = None;
        let mut stream = Some(first);
        let (end, done) = loop {
            if let Some(s) = stream.take() {
                self.status.set_connected(true);
                let session = Session::new(
                    &self.config,
                    s,
                    &mut self.cmds,
                    &self.pushes,
                    &mut calls,
                    self.status.metrics(),
                );
                let end = match session {
                    Ok(session) => session.run().await,
                    Err(e) => {
                        tracing::error!(error = %e, "client connection settings rejected");
                        SessionEnd::Closed(None)
                    }
                };
                self.status.set_connected(false);
                calls.disconnected(&mut answer);
                match end {
                    SessionEnd::Closed(done) => break (ClientEnd::Closed(None), done),
                    SessionEnd::Lost(reason) => {
                        tracing::debug!(%reason, "client connection lost");
                        last = Some(reason);
                        match &mut policy {
                            Some(p) => p.handle_disconnected(Instant::now()),
                            None => break (ClientEnd::Closed(last), None),
                        }
                    }
                }
            }
            let Some(p) = &mut policy else {
                break (ClientEnd::Closed(last), None);
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
                    if let Offline::Closed(done) = self.wait_offline(at, &mut calls).await {
                        break (ClientEnd::Closed(last), done);
                    }
                }
                Step::GaveUp { attempts } => break (ClientEnd::GaveUp(attempts), None),
                Step::Stopped | Step::Connecting | Step::Connected => {
                    break (ClientEnd::Closed(last), None);
                }
            }
        };
        self.status.end(end);
        let status = Arc::clone(&self.status);
        calls.finish(|| status.error(), &mut answer);
        self.cmds.close();
        while let Ok(cmd) = self.cmds.try_recv() {
            if let Command::Call(call) = cmd {
                answer(call.fail(status.error()));
            }
        }
        drop(done);
    }

    /// Serves calls while disconnected until `at`: they go to the offline queue (up to
    /// `offline_queue`) or fail with `Disconnected`.
    async fn wait_offline(&mut self, at: Instant, calls: &mut Calls) -> Offline {
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
                Some(Ok(Command::Call(call))) => {
                    calls.call(None, call, Instant::now(), &mut answer);
                }
            }
        }
    }
}
