//! A lynn server in the simulation: [`serve`] answers [`app`](crate::app)'s methods
//! ([`ECHO`], [`SILENT`], [`DELAY`], [`TO_ALL`] to the caller alone) with a
//! `lynn_proto::Connection` per accepted stream, on the simulated clock.

use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lynn_proto::{Connection, ConnectionConfig, Event, Instant, RequestId};
use lynn_service::{Runtime, Timer, Transport};

use super::{SimRuntime, SimStream, SimTimer, net, with};
use crate::app::{DELAY, ECHO, PUSH, SILENT, TO_ALL};

/// Serves at `addr` until the returned guard is dropped.
pub fn serve(addr: &str) -> Listening {
    let backlog = with(|w| w.net.listen(addr));
    SimRuntime.spawn(async move {
        loop {
            let stream = poll_fn(|cx| net::poll_accept(&backlog, cx)).await;
            SimRuntime.spawn(connection(stream));
        }
    });
    Listening(addr.to_string())
}

/// Stops listening when dropped (connections already accepted go on).
pub struct Listening(String);

impl Drop for Listening {
    fn drop(&mut self) {
        super::unlisten(&self.0);
    }
}

/// A request the [`DELAY`] route answers later.
struct Delayed {
    at: Instant,
    id: RequestId,
    method: u16,
    body: Bytes,
}

async fn connection(mut stream: SimStream) {
    let rt = SimRuntime;
    let Ok(mut conn) = Connection::new(ConnectionConfig::server(), rt.now()) else {
        return;
    };
    let mut delayed: Vec<Delayed> = Vec::new();
    let mut timer = rt.timer();
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(req) => {
                    let now = rt.now();
                    let reply = match req.method {
                        ECHO => Some(req.body),
                        SILENT => None,
                        TO_ALL => {
                            let _ = conn.send(PUSH, req.body, now);
                            Some(Bytes::copy_from_slice(&1u64.to_le_bytes()))
                        }
                        DELAY => {
                            let ms = u32::from_le_bytes(req.body[..4].try_into().unwrap());
                            delayed.push(Delayed {
                                at: now + Duration::from_millis(ms.into()),
                                id: req.id,
                                method: req.method,
                                body: req.body.slice(4..),
                            });
                            continue;
                        }
                        _ => None,
                    };
                    let _ = conn.complete(req.id, reply.map(|b| (req.method, b)), now);
                }
                Event::Closed(_) => return,
                Event::Heartbeat | Event::Writable => {}
            }
        }
        poll_fn(|cx| turn(cx, &mut stream, &mut conn, &mut delayed, &mut timer)).await;
    }
}

/// Writes, reads and fires due timers; ready once something changed.
fn turn(
    cx: &mut Context<'_>,
    stream: &mut SimStream,
    conn: &mut Connection,
    delayed: &mut Vec<Delayed>,
    timer: &mut SimTimer,
) -> Poll<()> {
    let now = SimRuntime.now();
    let mut changed = false;
    while conn.wants_write() {
        let mut chunks = [&[][..]; 8];
        let n = conn.transmit_chunks(&mut chunks);
        let slices: Vec<_> = chunks[..n]
            .iter()
            .map(|c| std::io::IoSlice::new(c))
            .collect();
        match stream.poll_write_vectored(cx, &slices) {
            Poll::Ready(Ok(n)) => conn.handle_written(n, now),
            Poll::Ready(Err(e)) => conn.handle_transport_error(e.kind(), now),
            Poll::Pending => break,
        }
        changed = true;
    }
    if conn.wants_read() {
        let mut buf = BytesMut::new();
        if let Poll::Ready(res) = stream.poll_read(cx, &mut buf) {
            match res {
                Ok(0) => conn.handle_eof(now),
                Ok(_) => conn.handle_bytes(&buf, now),
                Err(e) => conn.handle_transport_error(e.kind(), now),
            }
            changed = true;
        }
    }
    delayed.sort_by_key(|d| d.at);
    while delayed.first().is_some_and(|d| d.at <= now) {
        let d = delayed.remove(0);
        let _ = conn.complete(d.id, Some((d.method, d.body)), now);
        changed = true;
    }
    let next = [conn.poll_timeout(), delayed.first().map(|d| d.at)]
        .into_iter()
        .flatten()
        .min();
    if let Some(at) = next {
        timer.reset(at);
        if at <= now || timer.poll_elapsed(cx).is_ready() {
            conn.handle_timeout(SimRuntime.now());
            changed = true;
        }
    }
    if changed {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}
