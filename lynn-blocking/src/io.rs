//! The two IO steps every connection thread shares: the reader helper thread and one
//! vectored write of a [`Connection`]'s queued output.
//!
//! The reader thread owns a clone of the socket and reads only when handed a buffer (a
//! "read token") by the connection thread, which hands one out only while
//! [`Connection::wants_read`] is true. So at most one buffer of `read_chunk` bytes is ever
//! in transit, and a connection that must not read leaves the bytes in the kernel, where TCP
//! pushes back on the peer.

use std::io::{self, IoSlice, Read, Write};
use std::sync::mpsc::Receiver;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lynn_proto::{Connection, Instant};

use crate::stream::Stream;

/// How long one blocking write may take before the connection thread looks at its other
/// inputs again. Only a peer that does not read makes writes wait that long.
pub(crate) const WRITE_SLICE: Duration = Duration::from_millis(100);

/// What the reader thread saw.
#[derive(Debug)]
pub(crate) enum ReadEvent {
    /// `n` bytes at the start of the buffer; give the buffer back as the next token.
    Data(Vec<u8>, usize),
    /// The peer closed its side.
    Eof,
    /// The socket failed.
    Failed(io::ErrorKind),
}

/// Spawns the reader helper. It hands each read to `deliver`, and exits when the token
/// sender is dropped, when the socket reaches EOF or fails, or when `deliver` reports its
/// receiver gone.
pub(crate) fn spawn_reader(
    name: String,
    mut stream: Stream,
    tokens: Receiver<Vec<u8>>,
    deliver: impl Fn(ReadEvent) -> bool + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(name).spawn(move || {
        while let Ok(mut buf) = tokens.recv() {
            let event = loop {
                match stream.read(&mut buf) {
                    Ok(0) => break ReadEvent::Eof,
                    Ok(n) => break ReadEvent::Data(buf, n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break ReadEvent::Failed(e.kind()),
                }
            };
            let last = !matches!(event, ReadEvent::Data(..));
            if !deliver(event) || last {
                return;
            }
        }
    })
}

/// One vectored write of queued output, reported to `conn`; returns the bytes written. A
/// write that timed out after [`WRITE_SLICE`] without progress is not an error (0 bytes):
/// the core's write timeout decides. After progress, drain events again: the connection
/// may have closed or become writable.
pub(crate) fn write_once(conn: &mut Connection, stream: &mut Stream) -> io::Result<usize> {
    let written = {
        let mut chunks = [&[][..]; 16];
        let n = conn.transmit_chunks(&mut chunks);
        let mut slices = [IoSlice::new(&[]); 16];
        for (slot, chunk) in slices.iter_mut().zip(&chunks[..n]) {
            *slot = IoSlice::new(chunk);
        }
        match stream.write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(k) => k,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => return Err(e),
        }
    };
    if written > 0 {
        conn.handle_written(written, Instant::now());
    }
    Ok(written)
}
