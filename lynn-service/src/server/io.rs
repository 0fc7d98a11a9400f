//! The read and write steps of a connection task: read straight into the connection's
//! receive buffer, write all ready output with one vectored write.

use std::io::{self, IoSlice};

use lynn_proto::{Connection, Instant};

use crate::runtime::{Runtime, Transport};

/// Most chunks handed to one vectored write. Small: both arrays are initialised on every
/// vectored write, and small frames share one chunk (only bodies of 1 KiB or more get their
/// own).
const MAX_CHUNKS: usize = 16;

/// Reads once (after readiness) straight into the connection's receive buffer and feeds the
/// result to the connection: bytes (through `received`: `Connection::handle_received`, or
/// `handle_received_inline` to answer messages in place), end of stream, or a transport
/// error. Returns the time read from the clock after the read.
///
/// `granted` is what the connection may hold for a large frame
/// ([`FrameBudget`](lynn_proto::FrameBudget)): a buffer grown past it for a large frame is
/// not read into; `Err` then says how much it holds, for the caller to budget first.
#[inline]
pub(crate) fn read_into<T: Transport, R: Runtime>(
    stream: &mut T,
    conn: &mut Connection,
    rt: &R,
    granted: usize,
    received: impl FnOnce(&mut Connection, Instant),
) -> Result<Instant, usize> {
    let fresh = conn.stats().bytes_received == 0;
    let (large, buf) = conn.reserve_receive();
    if large > granted {
        return Err(large);
    }
    let res = stream.try_read(buf);
    if fresh && buf.is_empty() && matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        // Readiness fires once with nothing to read on a new connection: give the reserved
        // chunk back, so a connection that never sent anything holds no receive buffer.
        // (Only before the first byte: releasing it on every empty read would cost two
        // allocations per request.)
        *buf = bytes::BytesMut::new();
    }
    let now = rt.now();
    match res {
        Ok(0) => conn.handle_eof(now),
        Ok(_) => received(conn, now),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => conn.handle_transport_error(e.kind(), now),
    }
    Ok(now)
}

/// Writes queued output until it is all written or the stream would block, then ends the
/// write side if the connection lingers, and flushes what the stream buffers itself (a TLS
/// session's records; nothing for a socket). Returns `true` when output remains and the
/// caller must wait for writability. `now` is the time of the
/// caller's loop turn (write progress is timed for the write timeout; a clock read per
/// write would cost more than the precision is worth).
pub(crate) fn flush<T: Transport>(stream: &mut T, conn: &mut Connection, now: Instant) -> bool {
    while conn.wants_write() {
        // Most output is one chunk (small replies share one): two slots tell, and cost less
        // to initialise than `MAX_CHUNKS`.
        let mut probe: [&[u8]; 2] = [&[]; 2];
        let res = if conn.transmit_chunks(&mut probe) == 1 {
            stream.try_write_vectored(&[IoSlice::new(probe[0])])
        } else {
            write_chunks(stream, conn)
        };
        match res {
            Ok(0) => conn.handle_transport_error(io::ErrorKind::WriteZero, now),
            Ok(n) => conn.handle_written(n, now),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => conn.handle_transport_error(e.kind(), now),
        }
    }
    if conn.poll_shutdown_write() {
        stream.shutdown_write();
    }
    match stream.try_flush() {
        Ok(()) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        Err(e) => {
            conn.handle_transport_error(e.kind(), now);
            false
        }
    }
}

/// Writes up to `MAX_CHUNKS` chunks of queued output with one vectored write.
fn write_chunks<T: Transport>(stream: &mut T, conn: &Connection) -> io::Result<usize> {
    let mut chunks: [&[u8]; MAX_CHUNKS] = [&[]; MAX_CHUNKS];
    let n = conn.transmit_chunks(&mut chunks);
    let mut slices = [IoSlice::new(&[]); MAX_CHUNKS];
    for (slot, chunk) in slices.iter_mut().zip(&chunks[..n]) {
        *slot = IoSlice::new(chunk);
    }
    stream.try_write_vectored(&slices[..n])
}
