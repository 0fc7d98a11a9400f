//! The outgoing byte queue of one connection.
//!
//! Small frames are copied into one contiguous staging buffer so that many of them leave in
//! one write; bodies at or above [`SHARE_THRESHOLD`] and pre-encoded frames of that size are
//! queued as shared [`Bytes`] chunks, so they are never copied. The queue is a list of chunks
//! that a runtime hands to one vectored write.

use bytes::{Buf, Bytes};

use crate::codec::{self, CorrelationId, FrameKind, Marks};
use crate::error::EncodeError;
use crate::lazy_deque::LazyDeque;

/// Bodies (and pre-encoded frames) of at least this many bytes are queued by reference
/// instead of being copied into the staging buffer.
pub(crate) const SHARE_THRESHOLD: usize = 1024;

/// Least room the staging buffer grows by.
const MIN_STAGING: usize = 1024;

/// A plain `Vec` with cursors rather than a `BytesMut`: once everything is written the
/// buffer is reused from its start by setting two cursors to zero, where `BytesMut` would
/// advance past the written bytes and later reclaim them (`reserve`'s copy-back, ~240
/// instructions per turn in the echo benchmark).
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// Chunks that come before `staging`, oldest first.
    chunks: LazyDeque<Bytes>,
    /// Bytes after every chunk in `chunks`: `staging[written..end]` is still to be written,
    /// `staging[end..]` is room. Every byte is initialised (zeroed as the buffer grows), so
    /// that a frame is copied in with one room check instead of one per `Vec` append (three
    /// per frame, ~10 instructions per reply).
    staging: Vec<u8>,
    written: usize,
    end: usize,
    len: usize,
}

impl SendQueue {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues one frame. Writes nothing when the frame exceeds `max_frame_len`.
    ///
    /// Inlined so that a caller passing `u64::MAX` (replies, checked beforehand) loses the
    /// limit check and the error path; the copying is shared out of line.
    #[inline(always)]
    pub(crate) fn push_frame(
        &mut self,
        marks: Marks,
        kind: FrameKind,
        method: u16,
        body: Bytes,
        max_frame_len: u64,
    ) -> Result<usize, EncodeError> {
        let header = codec::encode_header(marks, kind, method, body.len(), max_frame_len)?;
        Ok(self.push_parts(&header, body, codec::encode_tail(marks)))
    }

    /// Queues one frame whose body is led by `tag` (a request or reply of the correlation
    /// extension). Writes nothing when the frame exceeds `max_frame_len`.
    pub(crate) fn push_tagged(
        &mut self,
        marks: Marks,
        kind: FrameKind,
        method: u16,
        tag: CorrelationId,
        body: Bytes,
        max_frame_len: u64,
    ) -> Result<usize, EncodeError> {
        let len = codec::CORRELATION_LEN + body.len();
        let header = codec::encode_header(marks, kind, method, len, max_frame_len)?;
        self.stage(&header);
        self.stage(&tag.to_bytes());
        if body.len() >= SHARE_THRESHOLD {
            self.seal_staging();
            self.chunks.make().push_back(body);
        } else {
            self.stage(&body);
        }
        self.stage(&codec::encode_tail(marks));
        let total = codec::OVERHEAD + len;
        self.len += total;
        Ok(total)
    }

    /// Queues an encoded header, its body and the tail; returns the bytes queued.
    fn push_parts(
        &mut self,
        header: &[u8; codec::HEADER_LEN],
        body: Bytes,
        tail: [u8; codec::TAIL_LEN],
    ) -> usize {
        if body.len() >= SHARE_THRESHOLD {
            let total = codec::OVERHEAD + body.len();
            self.stage(header);
            self.seal_staging();
            self.chunks.make().push_back(body);
            self.stage(&tail);
            self.len += total;
            total
        } else {
            self.push_copied(header, &body, tail)
        }
    }

    /// Queues an encoded header, a body copied from `body`, and the tail; returns the bytes
    /// queued.
    #[inline]
    pub(crate) fn push_copied(
        &mut self,
        header: &[u8; codec::HEADER_LEN],
        body: &[u8],
        tail: [u8; codec::TAIL_LEN],
    ) -> usize {
        let total = codec::OVERHEAD + body.len();
        // One room check for the whole frame.
        if self.staging.len() - self.end < total {
            self.make_room(total);
        }
        let frame = &mut self.staging[self.end..][..total];
        let (head, rest) = frame.split_at_mut(codec::HEADER_LEN);
        let (middle, end) = rest.split_at_mut(body.len());
        head.copy_from_slice(header);
        middle.copy_from_slice(body);
        end.copy_from_slice(&tail);
        self.end += total;
        self.len += total;
        total
    }

    /// Room for `n` more staged bytes: drops the written prefix first, then grows by at
    /// least `MIN_STAGING` (with room for exactly one frame, every reply would grow it).
    #[cold]
    fn make_room(&mut self, n: usize) {
        if self.written > 0 {
            self.staging.copy_within(self.written..self.end, 0);
            self.end -= self.written;
            self.written = 0;
        }
        let room = n.max(MIN_STAGING);
        if self.staging.len() - self.end < room {
            self.staging.reserve(self.end + room - self.staging.len());
            self.staging.resize(self.staging.capacity(), 0);
        }
    }

    /// Removes the last `n` bytes, which [`push_copied`](Self::push_copied) just queued
    /// (they are at the end of the staging buffer, unwritten).
    pub(crate) fn drop_last_copied(&mut self, n: usize) {
        let n = n.min(self.end - self.written);
        self.end -= n;
        self.len -= n;
    }

    /// Queues bytes that already hold whole frames (for example a shared broadcast).
    pub(crate) fn push_encoded(&mut self, frames: Bytes) {
        self.len += frames.len();
        if frames.len() >= SHARE_THRESHOLD {
            self.seal_staging();
            self.chunks.make().push_back(frames);
        } else {
            self.stage(&frames);
        }
    }

    /// Appends bytes to the staging buffer.
    fn stage(&mut self, bytes: &[u8]) {
        if self.staging.len() - self.end < bytes.len() {
            self.make_room(bytes.len());
        }
        self.staging[self.end..][..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Moves the unwritten staged bytes into `chunks` (a shared chunk follows them).
    fn seal_staging(&mut self) {
        if self.end > self.written {
            let staged = Bytes::from(std::mem::take(&mut self.staging));
            self.chunks
                .make()
                .push_back(staged.slice(self.written..self.end));
        }
        self.written = 0;
        self.end = 0;
    }

    /// Fills `dst` with the queued chunks in order; returns how many slots it filled.
    #[inline]
    pub(crate) fn chunks<'a>(&'a self, dst: &mut [&'a [u8]]) -> usize {
        let staged = Some(&self.staging[self.written..self.end]).filter(|s| !s.is_empty());
        let Some(shared) = self.chunks.as_deque() else {
            // The common case: everything queued is in the staging buffer.
            return match (staged, dst.first_mut()) {
                (Some(staged), Some(slot)) => {
                    *slot = staged;
                    1
                }
                _ => 0,
            };
        };
        let all = shared.iter().map(|c| &c[..]).chain(staged);
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(all) {
            *slot = chunk;
            n += 1;
        }
        n
    }

    /// Drops the first `n` bytes (they were written). `n` is clamped to the queue length.
    pub(crate) fn advance(&mut self, n: usize) {
        if n >= self.len {
            self.clear_written();
            return;
        }
        let mut n = n;
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() <= n => {
                    n -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    n = 0;
                }
                None => {
                    self.written += n;
                    n = 0;
                }
            }
        }
    }

    /// Everything was written: the staging buffer starts over from its beginning.
    fn clear_written(&mut self) {
        self.chunks.clear();
        self.len = 0;
        self.written = 0;
        self.end = 0;
        if self.staging.capacity() > 64 * 1024 {
            // Do not keep a burst's worth of memory around on an idle connection.
            self.staging = Vec::new();
        }
    }

    /// Takes `spare` as the staging buffer if this one holds no memory (it is unused then).
    #[inline]
    pub(crate) fn take_staging(&mut self, spare: &mut Vec<u8>) {
        if self.staging.capacity() == 0 {
            std::mem::swap(&mut self.staging, spare);
        }
    }

    /// Gives the staging buffer to `spare` if nothing is queued and `spare` holds none.
    #[inline]
    pub(crate) fn give_staging(&mut self, spare: &mut Vec<u8>) {
        if self.len == 0 && spare.capacity() == 0 {
            std::mem::swap(&mut self.staging, spare);
            self.written = 0;
            self.end = 0;
        }
    }

    /// Bytes reserved by the staging buffer and the chunk list.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.staging.capacity() + self.chunks.capacity() * size_of::<Bytes>()
    }

    /// Drops everything queued and frees the memory.
    pub(crate) fn clear(&mut self) {
        *self = SendQueue::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn all(q: &SendQueue) -> Vec<u8> {
        let mut slots = [&[][..]; 16];
        let n = q.chunks(&mut slots);
        slots[..n].concat()
    }

    #[test]
    fn small_frames_coalesce_large_bodies_are_shared() {
        let mut q = SendQueue::default();
        let m = Marks::default();
        q.push_frame(m, FrameKind::Message, 1, Bytes::from_static(b"a"), u64::MAX)
            .unwrap();
        q.push_frame(m, FrameKind::Message, 2, Bytes::from_static(b"b"), u64::MAX)
            .unwrap();
        let big = Bytes::from(vec![7u8; SHARE_THRESHOLD]);
        q.push_frame(m, FrameKind::Message, 3, big.clone(), u64::MAX)
            .unwrap();
        let mut slots = [&[][..]; 8];
        assert_eq!(
            q.chunks(&mut slots),
            3,
            "staged small frames, shared body, tail"
        );
        assert_eq!(slots[1].as_ptr(), big.as_ptr(), "body not copied");

        let mut expect = BytesMut::new();
        for (method, body) in [(1, &b"a"[..]), (2, b"b"), (3, &big[..])] {
            codec::encode(m, FrameKind::Message, method, body, u64::MAX, &mut expect).unwrap();
        }
        assert_eq!(all(&q), expect.to_vec());
        assert_eq!(q.len(), expect.len());

        // Partial writes across chunk boundaries keep the byte order.
        for step in [5, 20, 1000, 3] {
            q.advance(step);
            expect.advance(step);
            assert_eq!(all(&q), expect.to_vec());
        }
        q.advance(usize::MAX);
        assert!(q.is_empty() && all(&q).is_empty());
    }

    #[test]
    fn a_peer_that_never_catches_up_does_not_grow_the_staging_buffer() {
        // Each round queues a frame and writes all but 10 bytes: the queue never empties,
        // so the written prefix must be dropped when room runs out.
        let mut q = SendQueue::default();
        let mut expect = BytesMut::new();
        for i in 0..10_000u16 {
            let body = [i as u8; 100];
            q.push_copied(
                &codec::encode_header(Marks::default(), FrameKind::Message, i, 100, u64::MAX)
                    .unwrap(),
                &body,
                codec::encode_tail(Marks::default()),
            );
            codec::encode(
                Marks::default(),
                FrameKind::Message,
                i,
                &body,
                u64::MAX,
                &mut expect,
            )
            .unwrap();
            let n = q.len() - 10;
            q.advance(n);
            expect.advance(n);
            assert_eq!(all(&q), expect.to_vec());
        }
        assert!(
            q.staging.capacity() <= 4 * MIN_STAGING,
            "{}",
            q.staging.capacity()
        );
        q.advance(10);
        assert!(q.is_empty() && q.end == 0 && q.written == 0);
    }
}
