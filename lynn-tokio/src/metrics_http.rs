//! The optional metrics endpoint: a minimal HTTP/1.1 responder for `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use lynn_service::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Largest request head read before answering.
const MAX_REQUEST: usize = 4096;
/// How long a scraper may take to send its request and read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves [`Metrics::http_response`] on `listener`, one scrape at a time (bounded: no task
/// per scrape), until the future is dropped.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (mut sock, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "metrics accept failed");
                // Back off briefly (e.g. out of file descriptors) instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let answer = async {
            let mut buf = vec![0u8; MAX_REQUEST];
            let mut len = 0;
            while len < buf.len() {
                let n = sock.read(&mut buf[len..]).await?;
                if n == 0 {
                    break;
                }
                len += n;
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            sock.write_all(&metrics.http_response(&buf[..len])).await?;
            sock.shutdown().await
        };
        match tokio::time::timeout(IO_TIMEOUT, answer).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "metrics scrape failed"),
            Err(_) => tracing::debug!("metrics scrape timed out"),
        }
    }
}
