//! [`RawSimServer`]: [`crate::raw_server`]'s hand-written server in the simulation, so the
//! shared client is also checked against a peer that shares no code with lynn: it answers
//! as a lynn_tcp server would ([`Answer::LynnTcp`]: message frames in order, [`DELAY`]
//! sleeping in virtual time) or answers batches of request frames last first
//! ([`Answer::Reversed`]).

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use lynn_proto::Endpoint;
use lynn_service::{Listener, Runtime};

use super::raw::RawSim;
use super::{SimRuntime, sleep};
use crate::app::{DELAY, ECHO, PUSH, SILENT, TO_ALL};
use crate::raw::{DEFAULT_MARKS, RawFrame, frame};

pub use crate::raw_server::Answer;

/// How long a connection waits for its next frame (longer than any scenario).
const QUIET: Duration = Duration::from_secs(365 * 24 * 3600);

/// Set once the server is dropped; wakes the accept loop.
#[derive(Default)]
struct Stop {
    stopped: bool,
    waker: Option<Waker>,
}

/// A raw server listening in the simulation; dropping it stops accepting (connections
/// end when their peers leave).
pub struct RawSimServer {
    addr: String,
    stop: Arc<Mutex<Stop>>,
}

impl std::fmt::Debug for RawSimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawSimServer({})", self.addr)
    }
}

impl RawSimServer {
    /// Listens at the next simulated port of `10.0.0.1`.
    pub async fn start(answer: Answer) -> io::Result<RawSimServer> {
        let listener = SimRuntime
            .bind(Endpoint::Tcp(super::scenarios::SERVER_ADDR.into()), 16)
            .await?;
        let addr = listener.local_addr()?.to_string();
        let stop = Arc::new(Mutex::new(Stop::default()));
        let stopped = Arc::clone(&stop);
        SimRuntime.spawn(async move {
            loop {
                let accepted = poll_fn(|cx| {
                    let mut stop = stopped.lock().unwrap();
                    if stop.stopped {
                        return Poll::Ready(None);
                    }
                    stop.waker = Some(cx.waker().clone());
                    listener.poll_accept(cx).map(Result::ok)
                })
                .await;
                let Some((stream, _)) = accepted else { return };
                SimRuntime.spawn(serve(RawSim::from_stream(stream), answer));
            }
        });
        Ok(RawSimServer { addr, stop })
    }

    /// The address to connect to.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for RawSimServer {
    fn drop(&mut self) {
        let mut stop = self.stop.lock().unwrap();
        stop.stopped = true;
        if let Some(w) = stop.waker.take() {
            w.wake();
        }
    }
}

/// Serves one connection until the peer leaves.
async fn serve(mut peer: RawSim, answer: Answer) {
    peer.set_read_timeout(QUIET);
    let mut batch = Vec::new();
    while let Ok(f) = peer.read_frame().await {
        let res = match (answer, f.kind) {
            (Answer::LynnTcp, 1) => answer_message(&mut peer, f).await,
            (Answer::Reversed(n), 3) => {
                batch.push(f);
                if batch.len() < n {
                    continue;
                }
                // The id leads the body; the reply echoes both.
                let replies: Vec<u8> = batch
                    .drain(..)
                    .rev()
                    .flat_map(|f| frame(DEFAULT_MARKS, 4, f.method, &f.body))
                    .collect();
                peer.write(&replies).await
            }
            // Heartbeats and, for lynn_tcp, unknown kinds are ignored.
            _ => Ok(()),
        };
        if res.is_err() {
            return;
        }
    }
}

async fn answer_message(peer: &mut RawSim, f: RawFrame) -> io::Result<()> {
    let reply = |body: &[u8]| frame(DEFAULT_MARKS, 1, f.method, body);
    match f.method {
        ECHO => peer.write(&reply(&f.body)).await,
        DELAY => {
            let ms = u32::from_le_bytes(f.body[..4].try_into().expect("4-byte delay"));
            sleep(Duration::from_millis(ms.into())).await;
            peer.write(&reply(&f.body[4..])).await
        }
        TO_ALL => {
            peer.write(&frame(DEFAULT_MARKS, 1, PUSH, &f.body)).await?;
            peer.write(&reply(&1u64.to_le_bytes())).await
        }
        SILENT => Ok(()),
        _ => Ok(()),
    }
}
