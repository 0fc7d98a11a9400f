//! The optional metrics endpoint: one thread that answers each HTTP request with
//! [`Metrics::http_response`] and closes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lynn_service::Metrics;

/// Largest request head read; the request line is all that matters.
const MAX_REQUEST: usize = 4096;

/// Serves until `stop` is set (then a connection to the listener wakes it).
pub(crate) fn spawn(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("lynn-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; MAX_REQUEST];
                let mut n = 0;
                // Read until the end of the request line (or the buffer is full).
                while n < buf.len() && !buf[..n].contains(&b'\n') {
                    match conn.read(&mut buf[n..]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                }
                let _ = conn.write_all(&metrics.http_response(&buf[..n]));
            }
        })
}
