//! The optional metrics endpoint: a minimal HTTP/1.1 responder for `GET /metrics`.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::select;

use crate::Metrics;
use crate::runtime::{Listener, Runtime, Timer, Transport};

/// Largest request head read before answering.
const MAX_REQUEST: usize = 4096;
/// How long a scraper may take to send its request and read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the loop pauses after a failed accept instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves [`Metrics::http_response`] on `listener`, one scrape at a time (bounded: no task
/// per scrape), until the future is dropped.
pub(crate) async fn serve<R: Runtime>(rt: R, listener: R::Listener, metrics: Arc<Metrics>) {
    let mut timer = rt.timer();
    loop {
        let accepted = match poll_fn(|cx| listener.poll_accept(cx)).await {
            Ok((accepted, _)) => rt.adopt(accepted, &Default::default()),
            Err(e) => Err(e),
        };
        let mut stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "metrics accept failed");
                timer.reset(rt.now() + ACCEPT_BACKOFF);
                poll_fn(|cx| timer.poll_elapsed(cx)).await;
                continue;
            }
        };
        timer.reset(rt.now() + IO_TIMEOUT);
        let expired = poll_fn(|cx| {
            let elapsed = timer.poll_elapsed(cx);
            elapsed.map(|()| Err(io::ErrorKind::TimedOut.into()))
        });
        let answer = answer(&mut stream, &metrics);
        let (outcome, _) = select(pin!(answer), pin!(expired)).await.factor_first();
        if let Err(e) = outcome {
            tracing::debug!(error = %e, "metrics scrape failed");
        }
    }
}

/// Reads a request head (up to `MAX_REQUEST` bytes or the blank line) and writes the answer.
async fn answer<T: Transport>(stream: &mut T, metrics: &Metrics) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(MAX_REQUEST);
    while buf.len() < MAX_REQUEST {
        let n = poll_fn(|cx| stream.poll_read(cx, &mut buf)).await?;
        if n == 0 || buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let response = metrics.http_response(&buf[..buf.len().min(MAX_REQUEST)]);
    let mut written = 0;
    while written < response.len() {
        let slice = [IoSlice::new(&response[written..])];
        match poll_fn(|cx| stream.poll_write_vectored(cx, &slice)).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => written += n,
        }
    }
    stream.shutdown_write();
    Ok(())
}
