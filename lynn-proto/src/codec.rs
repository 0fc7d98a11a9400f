//! Wire protocol v1, byte-compatible with lynn_tcp.
//!
//! All integers are little-endian. A frame is 15 bytes of framing plus the body:
//!
//! | offset   | size | field                                                   |
//! |----------|------|---------------------------------------------------------|
//! | 0        | 2    | header mark (default 9177, bytes `d9 23`)               |
//! | 2        | 8    | length `L`: bytes after this field, tail included       |
//! | 10       | 1    | kind: 1 = message, 2 = heartbeat, 3 = request, 4 = reply |
//! | 11       | 2    | method id                                               |
//! | 13       | L-5  | body                                                    |
//! | 10+L-2   | 2    | tail mark (default 7719, bytes `27 1e`)                 |
//!
//! Kinds 3 and 4 are lynn's opt-in correlation extension: their body starts with a 4-byte
//! [`CorrelationId`] (little-endian), so `L` is at least 9. A request (3) is answered by a
//! reply (4) carrying the same id; a peer that never sends kind 3 never receives kind 4, so
//! lynn_tcp peers see v1 unchanged. [`Decoder`] hands the id out as the first 4 bytes of the
//! body; [`Connection`](crate::Connection) splits it off.
//!
//! ```
//! use bytes::BytesMut;
//! use lynn_proto::codec::{Decoder, FrameKind, encode};
//! use lynn_proto::Marks;
//!
//! let mut wire = BytesMut::new();
//! encode(Marks::default(), FrameKind::Message, 1, b"hello", u64::MAX, &mut wire).unwrap();
//! assert_eq!(&wire[..], b"\xd9\x23\x0a\0\0\0\0\0\0\0\x01\x01\x00hello\x27\x1e");
//!
//! let mut decoder = Decoder::new(Marks::default(), 1024);
//! let frame = decoder.decode(&mut wire).unwrap().unwrap();
//! assert_eq!((frame.kind, frame.method, &frame.body[..]), (FrameKind::Message, 1, &b"hello"[..]));
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};

/// Bytes of framing before the body: header mark, length, kind, method.
pub const HEADER_LEN: usize = 13;
/// Bytes of framing after the body: the tail mark.
pub const TAIL_LEN: usize = 2;
/// Total framing overhead of one frame.
pub const OVERHEAD: usize = HEADER_LEN + TAIL_LEN;
/// Smallest valid value of the length field: kind, method and tail with an empty body.
pub const MIN_LENGTH_FIELD: u64 = 5;
/// Bytes of [`CorrelationId`] at the start of a request's or reply's body.
pub const CORRELATION_LEN: usize = 4;
/// Default limit on the length field (10 MiB), as in lynn_tcp.
pub const DEFAULT_MAX_FRAME_LEN: u64 = 10 * 1024 * 1024;

/// The header and tail marks that delimit frames on one endpoint.
///
/// Marks are per endpoint (never process-global): a server and a client in one process may
/// use different marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct Marks {
    /// First two bytes of every frame.
    pub header: u16,
    /// Last two bytes of every frame.
    pub tail: u16,
}

impl Default for Marks {
    /// lynn_tcp's marks: header 9177 (`0x23d9`), tail 7719 (`0x1e27`).
    fn default() -> Self {
        Marks {
            header: 9177,
            tail: 7719,
        }
    }
}

/// What a frame carries, from its kind byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FrameKind {
    /// Kind 1: an application message routed by its method id.
    Message,
    /// Kind 2: a keep-alive; method 0, empty body.
    Heartbeat,
    /// Kind 3: a message that wants a reply tagged with the [`CorrelationId`] that starts
    /// its body (the correlation extension).
    Request,
    /// Kind 4: the reply to a [`FrameKind::Request`], its body starting with the request's
    /// [`CorrelationId`].
    Reply,
    /// Any other kind byte. Decoded (so the stream stays in sync) and then counted and
    /// ignored by [`Connection`](crate::Connection), as lynn_tcp does.
    Unknown(u8),
}

impl FrameKind {
    /// The kind byte on the wire.
    #[inline]
    pub fn to_byte(self) -> u8 {
        match self {
            FrameKind::Message => 1,
            FrameKind::Heartbeat => 2,
            FrameKind::Request => 3,
            FrameKind::Reply => 4,
            FrameKind::Unknown(b) => b,
        }
    }

    /// The kind for a byte read from the wire.
    #[inline]
    pub fn from_byte(b: u8) -> Self {
        match b {
            1 => FrameKind::Message,
            2 => FrameKind::Heartbeat,
            3 => FrameKind::Request,
            4 => FrameKind::Reply,
            other => FrameKind::Unknown(other),
        }
    }
}

/// The id that ties a [`FrameKind::Reply`] to its [`FrameKind::Request`]: the first 4 body
/// bytes of both, little-endian. Chosen by the requester; the replier echoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorrelationId(pub u32);

impl CorrelationId {
    /// The id as it leads the body on the wire.
    #[inline]
    pub fn to_bytes(self) -> [u8; CORRELATION_LEN] {
        self.0.to_le_bytes()
    }

    /// Splits the id off the front of a request's or reply's body (the decoder guarantees
    /// the 4 bytes are there for kinds 3 and 4).
    pub fn split_from(body: &mut Bytes) -> Option<CorrelationId> {
        let id = body.first_chunk::<CORRELATION_LEN>()?;
        let id = CorrelationId(u32::from_le_bytes(*id));
        body.advance(CORRELATION_LEN);
        Some(id)
    }
}

/// One decoded frame. The body is a slice of the receive buffer, not a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's kind.
    pub kind: FrameKind,
    /// The route key.
    pub method: u16,
    /// The opaque payload.
    pub body: Bytes,
}

/// A complete frame found by [`Decoder::decode_head`], still in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHead {
    /// The kind byte as sent; [`kind`](Self::kind) names it. (A byte, not a
    /// [`FrameKind`]: comparing it is one instruction on the path that answers in place.)
    pub kind_byte: u8,
    /// The route key.
    pub method: u16,
    /// The whole frame's length in bytes, header and tail included.
    pub len: usize,
}

impl FrameHead {
    /// The frame's kind.
    #[inline]
    pub fn kind(&self) -> FrameKind {
        FrameKind::from_byte(self.kind_byte)
    }

    /// Whether the frame is a [`FrameKind::Message`].
    #[inline]
    pub fn is_message(&self) -> bool {
        self.kind_byte == 1
    }

    /// Where the body lies within the frame's bytes.
    pub fn body(&self) -> std::ops::Range<usize> {
        HEADER_LEN..self.len - TAIL_LEN
    }
}

/// The length field for a body of `body_len` bytes.
#[inline]
fn length_field(body_len: usize) -> u64 {
    body_len as u64 + MIN_LENGTH_FIELD
}

/// Largest body that fits a frame whose length field may be at most `max_frame_len`.
pub fn max_body_len(max_frame_len: u64) -> u64 {
    max_frame_len.saturating_sub(MIN_LENGTH_FIELD)
}

/// Encodes the 13 bytes that precede a body of `body_len` bytes.
///
/// Together with the body and [`encode_tail`] this lets a caller send a large body with one
/// vectored write instead of copying it. Fails when the frame would exceed `max_frame_len`,
/// the limit of the peer that will receive it.
#[inline]
pub fn encode_header(
    marks: Marks,
    kind: FrameKind,
    method: u16,
    body_len: usize,
    max_frame_len: u64,
) -> Result<[u8; HEADER_LEN], EncodeError> {
    let len = length_field(body_len);
    if len > max_frame_len {
        return Err(EncodeError::BodyTooLarge {
            body_len,
            max_body_len: max_body_len(max_frame_len),
        });
    }
    let mut h = [0u8; HEADER_LEN];
    h[0..2].copy_from_slice(&marks.header.to_le_bytes());
    h[2..10].copy_from_slice(&len.to_le_bytes());
    h[10] = kind.to_byte();
    h[11..13].copy_from_slice(&method.to_le_bytes());
    Ok(h)
}

/// The 2 bytes that follow a body.
#[inline]
pub fn encode_tail(marks: Marks) -> [u8; TAIL_LEN] {
    marks.tail.to_le_bytes()
}

/// Appends one whole frame to `dst`.
///
/// Fails, writing nothing, when the frame would exceed `max_frame_len` (the receiving peer's
/// limit): lynn refuses to produce a frame the peer is bound to reject.
pub fn encode(
    marks: Marks,
    kind: FrameKind,
    method: u16,
    body: &[u8],
    max_frame_len: u64,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let header = encode_header(marks, kind, method, body.len(), max_frame_len)?;
    dst.reserve(OVERHEAD + body.len());
    dst.put_slice(&header);
    dst.put_slice(body);
    dst.put_slice(&encode_tail(marks));
    Ok(())
}

/// Encodes one whole frame into fresh shared bytes, for example once for a broadcast whose
/// bytes every recipient then shares.
pub fn encode_to_bytes(
    marks: Marks,
    kind: FrameKind,
    method: u16,
    body: &[u8],
    max_frame_len: u64,
) -> Result<Bytes, EncodeError> {
    let mut dst = BytesMut::with_capacity(OVERHEAD + body.len());
    encode(marks, kind, method, body, max_frame_len, &mut dst)?;
    Ok(dst.freeze())
}

/// Incremental frame decoder.
///
/// Feed it the receive buffer as bytes arrive; each call splits at most one complete frame
/// off the front of the buffer. Bodies are handed out as [`Bytes`] that share the buffer's
/// memory, so decoding copies nothing and allocates nothing per frame.
///
/// The result does not depend on how the stream was split into reads: errors are reported
/// as soon as the bytes that prove them are present (a wrong header mark after 2 bytes, a bad
/// length after 10, a wrong tail when the frame completes), with the stream offset of the
/// frame that carried them. The declared length is checked against the limit before any
/// memory is reserved for the body.
#[derive(Clone, Debug)]
pub struct Decoder {
    marks: Marks,
    max_frame_len: u64,
    /// Stream offset of the first byte of the buffer passed to the next call.
    offset: u64,
    /// Frames decoded so far.
    frames: u64,
}

impl Decoder {
    /// A decoder for the given marks that refuses length fields above `max_frame_len`.
    pub fn new(marks: Marks, max_frame_len: u64) -> Self {
        Decoder {
            marks,
            max_frame_len,
            offset: 0,
            frames: 0,
        }
    }

    /// Number of frames decoded so far.
    pub fn frames_decoded(&self) -> u64 {
        self.frames
    }

    /// Stream offset (bytes consumed so far) of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The marks this decoder expects.
    pub fn marks(&self) -> Marks {
        self.marks
    }

    /// The largest length field this decoder accepts.
    pub fn max_frame_len(&self) -> u64 {
        self.max_frame_len
    }

    /// Bytes still missing before the frame at the front of `buf` is complete (at least 1
    /// while incomplete), or 0 when a whole frame or nothing at all is buffered. Assumes the
    /// prefix was already validated by [`decode`](Self::decode).
    pub fn bytes_needed(&self, buf: &[u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        if buf.len() < 10 {
            return 10 - buf.len();
        }
        let total = read_u64(&buf[2..10]).saturating_add(10);
        total
            .saturating_sub(buf.len() as u64)
            .min(usize::MAX as u64) as usize
    }

    /// Splits the next complete frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, leaving `buf` untouched. After an error
    /// the stream is unusable; the buffer is left as it was.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let Some(head) = self.decode_head(buf)? else {
            return Ok(None);
        };
        let mut frame = buf.split_to(head.len);
        frame.advance(HEADER_LEN);
        frame.truncate(head.len - OVERHEAD);
        Ok(Some(Frame {
            kind: head.kind(),
            method: head.method,
            body: frame.freeze(),
        }))
    }

    /// Checks the next complete frame at the front of `buf` without taking it: the frame is
    /// `buf[..head.len]`, its body `buf[HEADER_LEN..head.len - TAIL_LEN]`
    /// ([`FrameHead::body`]). The decoder counts it as decoded, so the caller must drop
    /// those bytes before the next call. For answering a message from the receive buffer
    /// without splitting it off (no reference count taken).
    ///
    /// Returns `Ok(None)` when more bytes are needed. After an error the stream is unusable.
    #[inline]
    pub fn decode_head(&mut self, buf: &[u8]) -> Result<Option<FrameHead>, DecodeError> {
        let head = self.peek_head(buf)?;
        if let Some(head) = &head {
            self.count_decoded(head.len, 1);
        }
        Ok(head)
    }

    /// [`decode_head`](Self::decode_head) without counting the frame as decoded: the same
    /// frame (or error) is found again by the next call. A caller that takes frames found
    /// this way reports them with [`count_decoded`](Self::count_decoded), once for a run
    /// of them.
    #[inline(always)]
    pub(crate) fn peek_head(&self, buf: &[u8]) -> Result<Option<FrameHead>, DecodeError> {
        // Fast path: the whole header is buffered and read as one fixed-size array (one
        // bounds check for every field). A shorter buffer never holds a whole frame.
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return self.decode_short(buf);
        };
        let [h0, h1, l0, l1, l2, l3, l4, l5, l6, l7, kind, m0, m1] = *head;
        let len = u64::from_le_bytes([l0, l1, l2, l3, l4, l5, l6, l7]);
        let total = self.check_prefix(u16::from_le_bytes([h0, h1]), len)?;
        // The frame's last two bytes, if it is all there (`total` is at least 15).
        let Some(&[t0, t1]) = buf.get(total - TAIL_LEN..total) else {
            // Nothing is reserved here: a peer that announces a large frame and then stalls
            // must not make us hold memory it never sent. The connection grows its receive
            // buffer in bounded steps as bytes actually arrive.
            return Ok(None);
        };
        let tail = u16::from_le_bytes([t0, t1]);
        if tail != self.marks.tail {
            return Err(self.error(DecodeErrorKind::BadTailMark {
                expected: self.marks.tail,
                found: tail,
            }));
        }
        // Kinds 3 and 4 (correlation extension) carry a 4-byte id before the body.
        if kind.wrapping_sub(3) < 2 && total < OVERHEAD + CORRELATION_LEN {
            return Err(self.error(DecodeErrorKind::MissingCorrelationId { len }));
        }
        Ok(Some(FrameHead {
            kind_byte: kind,
            method: u16::from_le_bytes([m0, m1]),
            len: total,
        }))
    }

    /// Counts `frames` frames of `bytes` bytes in all, found with
    /// [`peek_head`](Self::peek_head), as decoded.
    #[inline]
    pub(crate) fn count_decoded(&mut self, bytes: usize, frames: u64) {
        self.offset += bytes as u64;
        self.frames += frames;
    }

    /// [`decode`](Self::decode) for a buffer shorter than a header: checks what it holds.
    fn decode_short(&self, buf: &[u8]) -> Result<Option<FrameHead>, DecodeError> {
        if buf.len() >= 10 {
            let len = read_u64(&buf[2..10]);
            self.check_prefix(u16::from_le_bytes([buf[0], buf[1]]), len)?;
        } else if buf.len() >= 2 {
            self.check_mark(u16::from_le_bytes([buf[0], buf[1]]))?;
        }
        Ok(None)
    }

    /// Checks the header mark and the length field; returns the frame's total length.
    #[inline]
    fn check_prefix(&self, header: u16, len: u64) -> Result<usize, DecodeError> {
        // One branch per check to an error built apart (below): ~8 instructions fewer per
        // frame than an error built at each check.
        if header != self.marks.header || !(MIN_LENGTH_FIELD..=self.max_frame_len).contains(&len) {
            return Err(self.prefix_error(header, len));
        }
        // `len <= max_frame_len`, which the caller bounds well below usize::MAX on any
        // platform that can hold such a buffer; saturate rather than trust that.
        Ok(usize::try_from(len).map_or(usize::MAX, |l| l.saturating_add(10)))
    }

    /// The error of a header mark or length field that [`check_prefix`] refused.
    ///
    /// [`check_prefix`]: Self::check_prefix
    #[cold]
    #[inline(never)]
    fn prefix_error(&self, header: u16, len: u64) -> DecodeError {
        if let Err(e) = self.check_mark(header) {
            return e;
        }
        if len < MIN_LENGTH_FIELD {
            return self.error(DecodeErrorKind::LengthTooSmall { len });
        }
        self.error(DecodeErrorKind::LengthTooLarge {
            len,
            max: self.max_frame_len,
        })
    }

    #[inline]
    fn check_mark(&self, header: u16) -> Result<(), DecodeError> {
        if header != self.marks.header {
            return Err(self.error(DecodeErrorKind::BadHeaderMark {
                expected: self.marks.header,
                found: header,
            }));
        }
        Ok(())
    }

    #[cold]
    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: self.offset,
            frame: self.frames,
            kind,
        }
    }
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &[u8] = b"\xd9\x23\x0a\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00hello\x27\x1e";
    const HEARTBEAT: &[u8] = b"\xd9\x23\x05\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x27\x1e";

    fn dec() -> Decoder {
        Decoder::new(Marks::default(), DEFAULT_MAX_FRAME_LEN)
    }

    #[test]
    fn sample_frames_encode_to_spec_bytes() {
        let mut b = BytesMut::new();
        encode(
            Marks::default(),
            FrameKind::Message,
            1,
            b"hello",
            DEFAULT_MAX_FRAME_LEN,
            &mut b,
        )
        .unwrap();
        assert_eq!(&b[..], HELLO);
        let hb = encode_to_bytes(Marks::default(), FrameKind::Heartbeat, 0, b"", 100).unwrap();
        assert_eq!(&hb[..], HEARTBEAT);
    }

    #[test]
    fn sample_frames_decode() {
        let mut b = BytesMut::from(&[HELLO, HEARTBEAT].concat()[..]);
        let mut d = dec();
        let f = d.decode(&mut b).unwrap().unwrap();
        assert_eq!(
            (f.kind, f.method, &f.body[..]),
            (FrameKind::Message, 1, &b"hello"[..])
        );
        let f = d.decode(&mut b).unwrap().unwrap();
        assert_eq!(
            (f.kind, f.method, f.body.len()),
            (FrameKind::Heartbeat, 0, 0)
        );
        assert!(b.is_empty());
        assert_eq!(d.decode(&mut b), Ok(None));
        assert_eq!((d.frames_decoded(), d.offset()), (2, 35));
    }

    #[test]
    fn header_checked_at_two_bytes() {
        let mut b = BytesMut::from(&b"\xd9"[..]);
        assert_eq!(dec().decode(&mut b), Ok(None));
        let mut b = BytesMut::from(&b"\x00\x23"[..]);
        let e = dec().decode(&mut b).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::BadHeaderMark {
                expected: 9177,
                found: 0x2300
            }
        );
        assert_eq!(b.len(), 2, "buffer untouched on error");
    }

    #[test]
    fn length_checked_at_ten_bytes_before_allocation() {
        let mut b = BytesMut::from(&b"\xd9\x23\x04\x00\x00\x00\x00\x00\x00"[..]);
        assert_eq!(dec().decode(&mut b), Ok(None));
        b.put_u8(0);
        assert_eq!(
            dec().decode(&mut b).unwrap_err().kind,
            DecodeErrorKind::LengthTooSmall { len: 4 }
        );

        let mut b = BytesMut::from(&b"\xd9\x23"[..]);
        b.put_u64_le(u64::MAX);
        let cap = b.capacity();
        let e = dec().decode(&mut b).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::LengthTooLarge {
                len: u64::MAX,
                max: DEFAULT_MAX_FRAME_LEN
            }
        );
        assert_eq!(b.capacity(), cap, "nothing reserved for a refused length");
    }

    #[test]
    fn tail_checked_when_frame_completes() {
        let mut bad = HELLO.to_vec();
        *bad.last_mut().unwrap() = 0;
        let mut b = BytesMut::from(&bad[..bad.len() - 1]);
        let mut d = dec();
        assert_eq!(d.decode(&mut b), Ok(None));
        b.put_u8(0);
        let e = d.decode(&mut b).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::BadTailMark {
                expected: 7719,
                found: 0x0027
            }
        );
    }

    #[test]
    fn error_names_frame_and_offset() {
        let mut b = BytesMut::from(&[HELLO, HEARTBEAT, b"xx"].concat()[..]);
        let mut d = dec();
        d.decode(&mut b).unwrap();
        d.decode(&mut b).unwrap();
        let e = d.decode(&mut b).unwrap_err();
        assert_eq!((e.frame, e.offset), (2, 35));
        assert!(e.to_string().contains("offset 35"), "{e}");
    }

    #[test]
    fn unknown_kind_decodes() {
        let mut raw = HEARTBEAT.to_vec();
        raw[10] = 9;
        let f = dec()
            .decode(&mut BytesMut::from(&raw[..]))
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FrameKind::Unknown(9));
    }

    #[test]
    fn custom_marks_and_limits() {
        let marks = Marks { header: 1, tail: 2 };
        let mut b = BytesMut::new();
        encode(marks, FrameKind::Message, 7, b"abc", 8, &mut b).unwrap();
        assert_eq!(&b[..2], &[1, 0]);
        assert_eq!(&b[b.len() - 2..], &[2, 0]);
        let err = encode(marks, FrameKind::Message, 7, b"abcd", 8, &mut b).unwrap_err();
        assert_eq!(
            err,
            EncodeError::BodyTooLarge {
                body_len: 4,
                max_body_len: 3
            }
        );
        let f = Decoder::new(marks, 8).decode(&mut b).unwrap().unwrap();
        assert_eq!(&f.body[..], b"abc");
        // The default marks do not accept custom-marked frames.
        let mut b2 = BytesMut::new();
        encode(marks, FrameKind::Message, 7, b"abc", 8, &mut b2).unwrap();
        assert!(dec().decode(&mut b2).is_err());
    }

    #[test]
    fn bodies_share_the_receive_buffer() {
        let mut b = BytesMut::with_capacity(4096);
        for _ in 0..10 {
            b.put_slice(HELLO);
        }
        let base = b.as_ptr() as usize;
        let f = dec().decode(&mut b).unwrap().unwrap();
        assert_eq!(f.body.as_ptr() as usize, base + HEADER_LEN);
    }

    #[test]
    fn decode_head_finds_the_frame_decode_splits_off() {
        let mut b = BytesMut::new();
        b.put_slice(HELLO);
        b.put_slice(&HELLO[..5]);
        let mut by_head = dec();
        let head = by_head.decode_head(&b).unwrap().unwrap();
        assert_eq!(head.len, HELLO.len());
        let mut by_split = dec();
        let frame = by_split.decode(&mut b.clone()).unwrap().unwrap();
        assert_eq!((head.kind(), head.method), (frame.kind, frame.method));
        assert!(head.is_message());
        assert_eq!(&HELLO[head.body()], &frame.body[..]);
        assert_eq!(by_head.offset(), by_split.offset());
        b.advance(head.len);
        assert_eq!(by_head.decode_head(&b), Ok(None), "a partial frame");
        assert_eq!(by_head.frames_decoded(), 1);
    }
}
