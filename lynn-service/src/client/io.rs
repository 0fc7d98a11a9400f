//! The two IO steps of a drive loop over a [`Transport`]: read straight into the
//! connection's receive buffer, write all ready output with vectored writes.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use lynn_proto::{Connection, Instant};

use crate::runtime::{Runtime, Transport};

/// Most chunks handed to one vectored write (small frames share one chunk; only bodies of
/// 1 KiB or more get their own).
const MAX_CHUNKS: usize = 16;

/// Once the stream is readable, reads once into the connection's receive buffer and feeds
/// it the result: bytes, end of stream, or a transport error. Returns whether anything
/// happened (false: registered for a wake-up).
///
/// The buffer is taken only after readiness: taking it first would allocate it again on
/// every turn of a quiet connection, whose release timer would free it again at once, a
/// change that starts another turn (a busy loop the simulated runtime found).
pub(crate) fn poll_read_into<T: Transport, R: Runtime>(
    stream: &mut T,
    conn: &mut Connection,
    cx: &mut Context<'_>,
    rt: &R,
) -> bool {
    let res = loop {
        match stream.poll_read_ready(cx) {
            Poll::Pending => return false,
            Poll::Ready(Err(e)) => break Err(e),
            Poll::Ready(Ok(())) => match stream.try_read(conn.receive_buffer()) {
                // Stale readiness, now cleared: wait for the next.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => break res,
            },
        }
    };
    let now = rt.now();
    match res {
        Ok(0) => conn.handle_eof(now),
        Ok(_) => conn.handle_received(now),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => conn.handle_transport_error(e.kind(), now),
    }
    true
}

/// Writes queued output until it is all written or the stream would block (then
/// registered for a wake-up), then what the stream buffers itself (a TLS session's
/// records). Returns whether anything was written or failed.
pub(crate) fn poll_flush<T: Transport>(
    stream: &mut T,
    conn: &mut Connection,
    cx: &mut Context<'_>,
    now: Instant,
) -> bool {
    let mut changed = false;
    while conn.wants_write() {
        let mut chunks: [&[u8]; MAX_CHUNKS] = [&[]; MAX_CHUNKS];
        let n = conn.transmit_chunks(&mut chunks);
        let mut slices = [IoSlice::new(&[]); MAX_CHUNKS];
        for (slot, chunk) in slices.iter_mut().zip(&chunks[..n]) {
            *slot = IoSlice::new(chunk);
        }
        let res = match stream.poll_write_vectored(cx, &slices[..n]) {
            Poll::Ready(res) => res,
            Poll::Pending => return changed,
        };
        changed = true;
        match res {
            Ok(0) => conn.handle_transport_error(io::ErrorKind::WriteZero, now),
            Ok(n) => conn.handle_written(n, now),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => conn.handle_transport_error(e.kind(), now),
        }
    }
    if conn.poll_shutdown_write() {
        stream.shutdown_write();
    }
    if let Poll::Ready(Err(e)) = stream.poll_flush(cx) {
        conn.handle_transport_error(e.kind(), now);
        changed = true;
    }
    changed
}
