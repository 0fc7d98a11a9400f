//! The optional Prometheus endpoint: accept, read the request head, answer with
//! [`Metrics::http_response`], close. One request at a time, each bounded in size and time.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use lynn_service::Metrics;

/// Largest request head read.
const MAX_REQUEST: usize = 4096;
/// Time one scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `listener` until the task is dropped.
pub(crate) async fn serve(listener: Async<TcpListener>, metrics: Arc<Metrics>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let answer = answer(stream, &metrics);
                let timeout = async {
                    Timer::after(SCRAPE_TIMEOUT).await;
                };
                future::or(answer, timeout).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(mut stream: Async<std::net::TcpStream>, metrics: &Metrics) {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    while len < buf.len() {
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let response = metrics.http_response(&buf[..len]);
    if let Err(e) = stream.write_all(&response).await {
        tracing::debug!(error = %e, "metrics response not sent");
    }
    let _ = stream.close().await;
}
