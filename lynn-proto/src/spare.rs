//! [`SpareBuffers`]: buffers that the connections of one thread take turns using.

use bytes::BytesMut;

/// A receive buffer and a staging buffer (for small outgoing frames) that connections
/// borrow for a turn and give back when it ends with both buffers empty.
///
/// A runtime keeps one per thread (a `thread_local`, say) and calls
/// [`Connection::take_buffers`](crate::Connection::take_buffers) before handing a
/// connection anything (bytes read, a completion, a timeout) and
/// [`Connection::give_buffers`](crate::Connection::give_buffers) once its output is
/// written. A connection between messages then holds no buffers (otherwise ~17 KiB
/// reserved and ~5 KiB resident each, until `release_buffers_after` of quiet), and the
/// turns of a busy thread read into and answer from the same memory, which stays in the
/// CPU's cache. A connection that holds bytes in either buffer (a partial frame, output
/// the socket did not take) keeps its buffers until they are empty; one that finds the
/// spare ones taken allocates its own. Neither affects what the connection does: the
/// buffers hold no state between turns. `SpareBuffers::default()` holds no buffers: the
/// first connection to give its own fills it.
///
/// ```
/// use lynn_proto::{Connection, ConnectionConfig, Instant, SpareBuffers};
///
/// let now = Instant::now();
/// let mut spare = SpareBuffers::default();
/// let mut a = Connection::new(ConnectionConfig::default(), now).unwrap();
/// let mut b = Connection::new(ConnectionConfig::default(), now).unwrap();
///
/// a.take_buffers(&mut spare);
/// a.handle_bytes(b"", now); // reads into `a.receive_buffer()`, which allocates it
/// a.give_buffers(&mut spare);
/// assert_eq!(a.buffer_capacity(), 0);
/// assert!(spare.capacity() > 0);
///
/// b.take_buffers(&mut spare); // `b` reads into the memory `a` used
/// assert!(b.buffer_capacity() > 0);
/// assert_eq!(spare.capacity(), 0);
/// ```
#[derive(Debug, Default)]
pub struct SpareBuffers {
    pub(crate) recv: BytesMut,
    pub(crate) staging: Vec<u8>,
}

impl SpareBuffers {
    /// Bytes reserved by the two buffers.
    pub fn capacity(&self) -> usize {
        self.recv.capacity() + self.staging.capacity()
    }
}
