//! The decoder target: split invariance and exact round trips of the frame codec.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{BufMut, BytesMut};

use crate::codec::{self, Decoder, FrameKind, Marks};
use crate::{DecodeError, DecodeErrorKind, EncodeError, Frame};

/// The length limit of the decoder under test.
#[derive(Arbitrary, Debug)]
enum MaxLen {
    /// `5 + n`: small, so oversized frames are easy to produce.
    Small(u8),
    /// Any value, at least 5.
    Any(u64),
}

/// A length field for a forged header.
#[derive(Arbitrary, Debug)]
enum LenField {
    Small(u8),
    AtMax,
    AboveMax,
    Any(u64),
}

/// One piece of the byte stream.
#[derive(Arbitrary, Debug)]
enum Piece {
    /// A frame with the stream's marks; a wrong tail when `bad_tail`.
    Frame {
        kind: u8,
        method: u16,
        body: Vec<u8>,
        bad_tail: bool,
    },
    /// The right header mark, a chosen length field, then arbitrary bytes.
    Forged { len: LenField, rest: Vec<u8> },
    /// Arbitrary bytes.
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    marks: Marks,
    max_len: MaxLen,
    pieces: Vec<Piece>,
    /// Chunk sizes (modulo 97, zero included) of the split decode; the rest comes at once.
    chunks: Vec<u8>,
}

/// What one decode run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<DecodeError>,
    leftover: Vec<u8>,
}

pub(super) fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let input = Input::arbitrary(u)?;
    let marks = input.marks;
    let max = match input.max_len {
        MaxLen::Small(n) => 5 + u64::from(n),
        MaxLen::Any(n) => n.max(5),
    };
    let mut stream = Vec::new();
    for piece in &input.pieces {
        build(piece, marks, max, &mut stream);
    }

    // Whole-buffer decode.
    let mut dec = Decoder::new(marks, max);
    let mut buf = BytesMut::from(&stream[..]);
    let mut frames = Vec::new();
    let error = decode_available(&mut dec, &mut buf, &mut frames);
    let whole = Outcome {
        frames,
        error,
        leftover: buf.to_vec(),
    };
    check_against_stream(&whole, &dec, &stream, marks, max);

    // Split decode: the same frames, the same error, reported as early as possible.
    let proof_end = whole.error.as_ref().map(|e| proof_end(e, &stream));
    let mut dec2 = Decoder::new(marks, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut error = None;
    let mut fed = 0;
    let sizes = input.chunks.iter().map(|&c| usize::from(c % 97));
    for size in sizes.chain(std::iter::once(usize::MAX)) {
        let end = fed + size.min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        error = decode_available(&mut dec2, &mut buf, &mut frames);
        if error.is_some() {
            break;
        }
        if let Some(proof_end) = proof_end {
            assert!(
                fed < proof_end,
                "error {:?} provable after {proof_end} bytes, not reported with {fed} buffered",
                whole.error
            );
        }
        if fed == stream.len() {
            break;
        }
    }
    // After an error the split decode has seen only part of the stream: its leftover is
    // shorter, and only the frames and the error must agree.
    let leftover = match error {
        Some(_) => whole.leftover.clone(),
        None => buf.to_vec(),
    };
    let split = Outcome {
        frames,
        error,
        leftover,
    };
    assert_eq!(
        whole, split,
        "split decode differs from whole-buffer decode"
    );
    assert_eq!(
        (dec.offset(), dec.frames_decoded()),
        (dec2.offset(), dec2.frames_decoded())
    );
    Ok(())
}

/// Appends one piece to the stream.
fn build(piece: &Piece, marks: Marks, max: u64, out: &mut Vec<u8>) {
    match piece {
        Piece::Frame {
            kind,
            method,
            body,
            bad_tail,
        } => {
            let kind = FrameKind::from_byte(*kind);
            check_encoder(marks, kind, *method, body, max);
            out.extend_from_slice(&marks.header.to_le_bytes());
            out.extend_from_slice(&(body.len() as u64 + 5).to_le_bytes());
            out.push(kind.to_byte());
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(body);
            let tail = if *bad_tail { !marks.tail } else { marks.tail };
            out.extend_from_slice(&tail.to_le_bytes());
        }
        Piece::Forged { len, rest } => {
            let len = match len {
                LenField::Small(n) => u64::from(*n),
                LenField::AtMax => max,
                LenField::AboveMax => max.saturating_add(1),
                LenField::Any(n) => *n,
            };
            out.extend_from_slice(&marks.header.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(rest);
        }
        Piece::Raw(bytes) => out.extend_from_slice(bytes),
    }
}

/// The encoder accepts exactly the bodies that fit, writes nothing otherwise, and its three
/// forms (whole, to bytes, header + body + tail) agree.
fn check_encoder(marks: Marks, kind: FrameKind, method: u16, body: &[u8], max: u64) {
    let mut dst = BytesMut::from(&b"prefix"[..]);
    let res = codec::encode(marks, kind, method, body, max, &mut dst);
    if body.len() as u64 + 5 > max {
        let expected = EncodeError::BodyTooLarge {
            body_len: body.len(),
            max_body_len: max - 5,
        };
        assert_eq!(res, Err(expected.clone()));
        assert_eq!(&dst[..], b"prefix", "a refused frame wrote nothing");
        let header = codec::encode_header(marks, kind, method, body.len(), max);
        assert_eq!(header, Err(expected));
        return;
    }
    assert_eq!(res, Ok(()));
    let header = codec::encode_header(marks, kind, method, body.len(), max).expect("fits");
    let mut parts = BytesMut::from(&b"prefix"[..]);
    parts.put_slice(&header);
    parts.put_slice(body);
    parts.put_slice(&codec::encode_tail(marks));
    assert_eq!(dst, parts);
    let shared = codec::encode_to_bytes(marks, kind, method, body, max).expect("fits");
    assert_eq!(&shared[..], &dst[6..]);
}

/// Decodes every frame available in `buf`; returns the error, if any.
fn decode_available(
    dec: &mut Decoder,
    buf: &mut BytesMut,
    frames: &mut Vec<Frame>,
) -> Option<DecodeError> {
    loop {
        let before = buf.len();
        match dec.decode(buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) leaves the buffer untouched");
                return None;
            }
            Err(e) => {
                assert_eq!(buf.len(), before, "an error leaves the buffer untouched");
                return Some(e);
            }
        }
    }
}

/// Stream position at which the bytes proving `e` are all present.
fn proof_end(e: &DecodeError, stream: &[u8]) -> usize {
    let at = usize::try_from(e.offset).expect("offset within the stream");
    match e.kind {
        DecodeErrorKind::BadHeaderMark { .. } => at + 2,
        DecodeErrorKind::LengthTooSmall { .. } | DecodeErrorKind::LengthTooLarge { .. } => at + 10,
        DecodeErrorKind::BadTailMark { .. } | DecodeErrorKind::MissingCorrelationId { .. } => {
            at + 10 + read_len(stream, at) as usize
        }
    }
}

fn read_len(stream: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(stream[at + 2..at + 10].try_into().expect("8 bytes"))
}

fn read_u16(stream: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([stream[at], stream[at + 1]])
}

/// Every frame re-encodes to exactly its bytes; the error (or the leftover) is exactly what
/// the stream holds after the last frame.
fn check_against_stream(out: &Outcome, dec: &Decoder, stream: &[u8], marks: Marks, max: u64) {
    let mut pos = 0;
    for frame in &out.frames {
        let mut bytes = BytesMut::new();
        codec::encode(
            marks,
            frame.kind,
            frame.method,
            &frame.body,
            max,
            &mut bytes,
        )
        .expect("a decoded frame fits the limit it was decoded under");
        assert_eq!(
            &bytes[..],
            &stream[pos..pos + bytes.len()],
            "frame does not re-encode to its input bytes"
        );
        pos += bytes.len();
    }
    assert_eq!(dec.offset(), pos as u64);
    assert_eq!(dec.frames_decoded(), out.frames.len() as u64);
    let rest = &stream[pos..];
    match &out.error {
        Some(e) => {
            assert_eq!(
                e.offset, pos as u64,
                "error offset is the sum of frame lengths"
            );
            assert_eq!(
                e.frame,
                out.frames.len() as u64,
                "error names its frame index"
            );
            assert_eq!(out.leftover, rest, "error leaves the buffer untouched");
            let header = read_u16(stream, pos);
            match e.kind {
                DecodeErrorKind::BadHeaderMark { expected, found } => {
                    assert_eq!((expected, found), (marks.header, header));
                    assert_ne!(found, expected);
                }
                DecodeErrorKind::LengthTooSmall { len } => {
                    assert_eq!((header, len), (marks.header, read_len(stream, pos)));
                    assert!(len < 5);
                }
                DecodeErrorKind::LengthTooLarge { len, max: m } => {
                    assert_eq!((header, len, m), (marks.header, read_len(stream, pos), max));
                    assert!(len > max);
                }
                DecodeErrorKind::BadTailMark { expected, found } => {
                    let len = read_len(stream, pos);
                    assert_eq!(header, marks.header);
                    assert!((5..=max).contains(&len));
                    let end = pos + 10 + len as usize;
                    assert!(end <= stream.len());
                    assert_eq!((expected, found), (marks.tail, read_u16(stream, end - 2)));
                    assert_ne!(found, expected);
                }
                DecodeErrorKind::MissingCorrelationId { len } => {
                    assert_eq!((header, len), (marks.header, read_len(stream, pos)));
                    assert!((5..9).contains(&len), "a request or reply needs its id");
                    let end = pos + 10 + len as usize;
                    assert!(end <= stream.len());
                    assert_eq!(read_u16(stream, end - 2), marks.tail, "tail checked first");
                    assert!(matches!(stream[pos + 10], 3 | 4));
                }
            }
        }
        None => {
            assert_eq!(out.leftover, rest, "undecoded bytes stay buffered");
            // The leftover is an unfinished prefix of a frame that may still be valid.
            if rest.len() >= 2 {
                assert_eq!(read_u16(rest, 0), marks.header);
            }
            let needed = dec.bytes_needed(rest);
            if rest.is_empty() {
                assert_eq!(needed, 0);
            } else if rest.len() < 10 {
                assert_eq!(needed, 10 - rest.len());
            } else {
                let len = read_len(rest, 0);
                assert!((5..=max).contains(&len));
                let missing = len.saturating_add(10).checked_sub(rest.len() as u64);
                assert!(missing.is_some_and(|m| m > 0), "a whole frame was left");
                assert_eq!(needed as u64, missing.unwrap_or(0).min(usize::MAX as u64));
            }
        }
    }
}
