//! The codec against its contract (DESIGN.md §2): round trip, split invariance, the sample
//! frames byte for byte, and when each kind of invalid frame is detected.

mod support;

use bytes::{BufMut, BytesMut};
use lynn_proto::codec::{
    Decoder, HEADER_LEN, OVERHEAD, TAIL_LEN, encode, encode_header, encode_tail, encode_to_bytes,
    max_body_len,
};
use lynn_proto::{DecodeError, DecodeErrorKind, EncodeError, Frame, FrameKind, Marks};
use proptest::prelude::*;

const HELLO: [u8; 20] = [
    0xd9, 0x23, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x68, 0x65, 0x6c,
    0x6c, 0x6f, 0x27, 0x1e,
];
const HEARTBEAT: [u8; 15] = [
    0xd9, 0x23, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x27, 0x1e,
];

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(192)
    }
}

fn kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        3 => Just(FrameKind::Message),
        1 => Just(FrameKind::Heartbeat),
        1 => any::<u8>().prop_map(FrameKind::from_byte),
    ]
}

/// A request or reply frame's body starts with its 4-byte correlation id: a shorter one is
/// padded here, so that the frames generated are valid (short ones have tests of their own).
fn fit(kind: FrameKind, mut body: Vec<u8>) -> Vec<u8> {
    if matches!(kind, FrameKind::Request | FrameKind::Reply) && body.len() < 4 {
        body.resize(4, 0);
    }
    body
}

fn marks() -> impl Strategy<Value = Marks> {
    prop_oneof![
        2 => Just(Marks::default()),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(header, tail)| Marks { header, tail }),
    ]
}

/// Mostly small bodies, occasionally a large one.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..48),
        2 => proptest::collection::vec(any::<u8>(), 48..600),
        1 => proptest::collection::vec(any::<u8>(), 4000..70_000),
    ]
}

/// Decodes everything in `buf`: frames until more bytes are needed or an error.
fn decode_available(
    d: &mut Decoder,
    buf: &mut BytesMut,
    frames: &mut Vec<Frame>,
) -> Option<DecodeError> {
    loop {
        match d.decode(buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<DecodeError>,
    left: usize,
    offset: u64,
    decoded: u64,
}

/// Feeds `stream` in chunks of the given sizes (cycled), decoding after every chunk and
/// stopping at the first error.
fn feed(marks: Marks, max: u64, stream: &[u8], sizes: &[usize]) -> Outcome {
    let mut d = Decoder::new(marks, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut error = None;
    let mut pos = 0;
    let mut sizes = sizes.iter().cycle();
    while pos < stream.len() {
        let n = (*sizes.next().unwrap()).min(stream.len() - pos);
        buf.extend_from_slice(&stream[pos..pos + n]);
        pos += n;
        error = decode_available(&mut d, &mut buf, &mut frames);
        if error.is_some() {
            break;
        }
    }
    if let Some(e) = &error {
        // The error is sticky: the buffer is left as it was and decoding again says the same.
        let before = buf.clone();
        assert_eq!(d.decode(&mut buf).as_ref(), Err(e));
        assert_eq!(buf, before);
    }
    // How much was buffered at an error depends on the chunking; only the leftover of a
    // clean stream is part of the contract.
    let left = if error.is_none() { buf.len() } else { 0 };
    Outcome {
        frames,
        error,
        left,
        offset: d.offset(),
        decoded: d.frames_decoded(),
    }
}

#[derive(Clone, Debug)]
enum Damage {
    None,
    /// Append arbitrary bytes after the valid frames.
    Garbage(Vec<u8>),
    /// XOR one byte (position taken modulo the stream length) with a non-zero mask.
    Flip(usize, u8),
    /// Cut this many bytes (modulo the stream length) off the end.
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => Just(Damage::None),
        1 => proptest::collection::vec(any::<u8>(), 1..30).prop_map(Damage::Garbage),
        3 => (any::<usize>(), 1u8..=255).prop_map(|(p, m)| Damage::Flip(p, m)),
        1 => any::<usize>().prop_map(Damage::Truncate),
    ]
}

fn chunking() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![1]),
        3 => proptest::collection::vec(1usize..40, 1..12),
        1 => proptest::collection::vec(1usize..400, 1..6),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Every kind, method, marks and body size round-trips; a body exactly at the limit is
    /// accepted by encoder and decoder; one byte over is refused by the encoder (and, if
    /// produced anyway, by the decoder).
    #[test]
    fn round_trip(
        marks in marks(),
        kind in kind(),
        method in any::<u16>(),
        body in body(),
        // -1: one byte over the limit; 0: exactly at it; more: room to spare.
        slack in prop_oneof![1 => Just(-1i64), 2 => Just(0i64), 2 => 1i64..100],
        prefix in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let body = fit(kind, body);
        prop_assume!(!(slack < 0 && body.is_empty()));
        let max = (body.len() as i64 + 5 + slack) as u64;
        let mut dst = BytesMut::from(&prefix[..]);

        if slack < 0 {
            let expected = EncodeError::BodyTooLarge {
                body_len: body.len(),
                max_body_len: body.len() as u64 - 1,
            };
            prop_assert_eq!(max_body_len(max), body.len() as u64 - 1);
            prop_assert_eq!(encode(marks, kind, method, &body, max, &mut dst), Err(expected.clone()));
            prop_assert_eq!(&dst[..], &prefix[..], "nothing written on refusal");
            prop_assert_eq!(encode_header(marks, kind, method, body.len(), max), Err(expected.clone()));
            prop_assert_eq!(encode_to_bytes(marks, kind, method, &body, max), Err(expected));
            // A frame produced anyway (for a laxer peer) is refused by this limit's decoder
            // as soon as its length field is in, before the body.
            let wire = encode_to_bytes(marks, kind, method, &body, max + 1).unwrap();
            let mut partial = BytesMut::from(&wire[..10]);
            let err = Decoder::new(marks, max).decode(&mut partial).unwrap_err();
            prop_assert_eq!(err.kind, DecodeErrorKind::LengthTooLarge { len: max + 1, max });
            return Ok(());
        }

        prop_assert!(body.len() as u64 <= max_body_len(max));
        encode(marks, kind, method, &body, max, &mut dst).unwrap();
        prop_assert_eq!(dst.len(), prefix.len() + OVERHEAD + body.len());
        prop_assert_eq!(&dst[..prefix.len()], &prefix[..], "encode appends");
        let wire = dst.split_off(prefix.len());

        // Header and tail written separately give the same bytes.
        let header = encode_header(marks, kind, method, body.len(), max).unwrap();
        let pieces = [&header[..], &body[..], &encode_tail(marks)[..]].concat();
        prop_assert_eq!(&pieces[..], &wire[..]);
        prop_assert_eq!(&encode_to_bytes(marks, kind, method, &body, max).unwrap()[..], &wire[..]);
        // The layout, independently of the encoder.
        prop_assert_eq!(&wire[..2], &marks.header.to_le_bytes()[..]);
        prop_assert_eq!(&wire[2..10], &(body.len() as u64 + 5).to_le_bytes()[..]);
        prop_assert_eq!(wire[10], kind.to_byte());
        prop_assert_eq!(&wire[11..13], &method.to_le_bytes()[..]);
        prop_assert_eq!(&wire[wire.len() - TAIL_LEN..], &marks.tail.to_le_bytes()[..]);

        let mut buf = wire.clone();
        let mut d = Decoder::new(marks, max);
        let f = d.decode(&mut buf).unwrap().expect("a whole frame");
        prop_assert_eq!(f.kind, kind);
        prop_assert_eq!(FrameKind::from_byte(kind.to_byte()), kind);
        prop_assert_eq!(f.method, method);
        prop_assert_eq!(&f.body[..], &body[..]);
        prop_assert!(buf.is_empty());
        prop_assert_eq!((d.offset(), d.frames_decoded()), (wire.len() as u64, 1));
        prop_assert_eq!(d.decode(&mut buf), Ok(None));
    }

    /// Any chunking of a stream of frames (damaged or not) gives the same frames, the same
    /// error (kind, frame index, offset) and the same leftover as decoding it whole.
    #[test]
    fn split_invariance(
        marks in marks(),
        frames in proptest::collection::vec(
            (kind(), any::<u16>(), prop_oneof![
                6 => proptest::collection::vec(any::<u8>(), 0..40),
                1 => proptest::collection::vec(any::<u8>(), 40..400),
            ]),
            0..8,
        ),
        damage in damage(),
        sizes in chunking(),
    ) {
        let frames: Vec<_> = frames.into_iter().map(|(k, m, b)| (k, m, fit(k, b))).collect();
        // Some valid frames exceed this limit, so LengthTooLarge also occurs naturally.
        let max = 5 + 300;
        let mut stream = Vec::new();
        for (kind, method, body) in &frames {
            stream.extend(support::frame_with(marks, *kind, *method, body));
        }
        let intact = matches!(damage, Damage::None);
        match damage {
            Damage::None => {}
            Damage::Garbage(g) => stream.extend(g),
            Damage::Flip(p, m) if !stream.is_empty() => {
                let p = p % stream.len();
                stream[p] ^= m;
            }
            Damage::Truncate(n) if !stream.is_empty() => {
                stream.truncate(stream.len() - n % stream.len());
            }
            Damage::Flip(..) | Damage::Truncate(_) => {}
        }

        let whole = feed(marks, max, &stream, &[usize::MAX]);
        let chunked = feed(marks, max, &stream, &sizes);
        prop_assert_eq!(&chunked, &whole);
        let bytewise = feed(marks, max, &stream, &[1]);
        prop_assert_eq!(&bytewise, &whole);

        // Decoded frames are always a prefix of what was sent unless the damage hit them;
        // consumed bytes and the error's position agree.
        prop_assert_eq!(whole.decoded, whole.frames.len() as u64);
        let consumed: u64 = whole.frames.iter().map(|f| (OVERHEAD + f.body.len()) as u64).sum();
        prop_assert_eq!(whole.offset, consumed);
        if let Some(e) = &whole.error {
            prop_assert_eq!((e.frame, e.offset), (whole.decoded, whole.offset));
        } else {
            prop_assert_eq!(whole.offset as usize + whole.left, stream.len());
        }
        if intact {
            let mut expected_err = None;
            let mut ok = 0;
            for (_, _, body) in &frames {
                if body.len() as u64 + 5 > max {
                    expected_err = Some(DecodeErrorKind::LengthTooLarge { len: body.len() as u64 + 5, max });
                    break;
                }
                ok += 1;
            }
            prop_assert_eq!(whole.frames.len(), ok);
            for (f, (kind, method, body)) in whole.frames.iter().zip(&frames) {
                prop_assert_eq!((f.kind, f.method, &f.body[..]), (*kind, *method, &body[..]));
            }
            prop_assert_eq!(whole.error.map(|e| e.kind), expected_err);
        }
    }
}

#[test]
fn sample_frames_encode_to_the_spec_bytes() {
    let m = Marks::default();
    let mut b = BytesMut::new();
    encode(m, FrameKind::Message, 1, b"hello", 1024, &mut b).unwrap();
    assert_eq!(&b[..], &HELLO[..]);
    let mut b = BytesMut::new();
    encode(m, FrameKind::Heartbeat, 0, b"", 1024, &mut b).unwrap();
    assert_eq!(&b[..], &HEARTBEAT[..]);

    let pieces = |kind, method, body: &[u8]| {
        let h = encode_header(m, kind, method, body.len(), 1024).unwrap();
        [&h[..], body, &encode_tail(m)[..]].concat()
    };
    assert_eq!(pieces(FrameKind::Message, 1, b"hello"), HELLO);
    assert_eq!(pieces(FrameKind::Heartbeat, 0, b""), HEARTBEAT);
    assert_eq!(
        encode_header(m, FrameKind::Message, 1, 5, 1024).unwrap(),
        HELLO[..HEADER_LEN]
    );
    assert_eq!(encode_tail(m), [0x27, 0x1e]);

    let hb = encode_to_bytes(m, FrameKind::Heartbeat, 0, b"", 5).unwrap();
    assert_eq!(
        &hb[..],
        &HEARTBEAT[..],
        "an empty frame fits the smallest limit"
    );
}

#[test]
fn sample_frames_decode() {
    let mut d = Decoder::new(Marks::default(), 10);
    let mut buf = BytesMut::from(&[&HELLO[..], &HEARTBEAT[..]].concat()[..]);
    let f = d.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        (f.kind, f.method, &f.body[..]),
        (FrameKind::Message, 1, &b"hello"[..])
    );
    let f = d.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        (f.kind, f.method, &f.body[..]),
        (FrameKind::Heartbeat, 0, &b""[..])
    );
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!((d.offset(), d.frames_decoded()), (35, 2));
}

#[test]
fn wrong_header_mark_is_an_error_at_two_bytes() {
    let marks = Marks {
        header: 0x0102,
        tail: 0x0304,
    };
    // Right mark, first byte only: wait. Wrong first byte alone: cannot know yet.
    for first in [0x02u8, 0xd9] {
        let mut d = Decoder::new(marks, 100);
        let mut buf = BytesMut::from(&[first][..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
    }
    // After one good frame, a wrong mark names frame 1 at its offset.
    let good = support::frame_with(marks, FrameKind::Message, 9, b"abc");
    let mut d = Decoder::new(marks, 100);
    let mut buf = BytesMut::from(&good[..]);
    buf.put_slice(&[0xd9, 0x23]); // the default mark is wrong for this endpoint
    d.decode(&mut buf).unwrap().unwrap();
    let e = d.decode(&mut buf).unwrap_err();
    assert_eq!(
        e,
        DecodeError {
            offset: good.len() as u64,
            frame: 1,
            kind: DecodeErrorKind::BadHeaderMark {
                expected: 0x0102,
                found: 0x23d9
            },
        }
    );
    assert_eq!(buf.len(), 2, "buffer left as it was");
    // The mark is little-endian: bytes 01 02 are 0x0201, not 0x0102.
    let mut swapped = BytesMut::from(&[0x01, 0x02][..]);
    assert!(Decoder::new(marks, 100).decode(&mut swapped).is_err());
}

#[test]
fn bad_length_is_an_error_at_ten_bytes_before_any_allocation() {
    let max = 1000u64;
    let cases = [
        (0u64, DecodeErrorKind::LengthTooSmall { len: 0 }),
        (4, DecodeErrorKind::LengthTooSmall { len: 4 }),
        (
            max + 1,
            DecodeErrorKind::LengthTooLarge { len: max + 1, max },
        ),
        (
            1 << 40,
            DecodeErrorKind::LengthTooLarge { len: 1 << 40, max },
        ),
        (
            u64::MAX,
            DecodeErrorKind::LengthTooLarge { len: u64::MAX, max },
        ),
    ];
    for (len, kind) in cases {
        let mut header = vec![0xd9, 0x23];
        header.extend(len.to_le_bytes());
        let mut d = Decoder::new(Marks::default(), max);
        let mut buf = BytesMut::with_capacity(16);
        for &b in &header[..9] {
            buf.put_u8(b);
            assert_eq!(
                d.decode(&mut buf),
                Ok(None),
                "len {len}: undecided before 10 bytes"
            );
        }
        buf.put_u8(header[9]);
        let cap = buf.capacity();
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!((e.kind, e.frame, e.offset), (kind, 0, 0));
        assert_eq!(buf.capacity(), cap, "len {len}: nothing reserved");
        assert_eq!(buf.len(), 10);
    }
    // Lengths 5 and max are fine; waiting for a large announced body reserves nothing.
    for len in [5, max] {
        let mut buf = BytesMut::with_capacity(16);
        buf.put_slice(&[0xd9, 0x23]);
        buf.put_u64_le(len);
        let cap = buf.capacity();
        assert_eq!(
            Decoder::new(Marks::default(), max).decode(&mut buf),
            Ok(None)
        );
        assert_eq!(buf.capacity(), cap);
    }
}

#[test]
fn wrong_tail_is_an_error_only_when_the_frame_completes() {
    for bad_tail in [[0x27u8, 0x00], [0x00, 0x1e], [0x1e, 0x27]] {
        let mut frame = HELLO.to_vec();
        frame[18..].copy_from_slice(&bad_tail);
        let mut d = Decoder::new(Marks::default(), 100);
        let mut buf = BytesMut::new();
        for &b in &frame[..frame.len() - 1] {
            buf.put_u8(b);
            assert_eq!(d.decode(&mut buf), Ok(None));
        }
        buf.put_u8(frame[frame.len() - 1]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::BadTailMark {
                expected: 7719,
                found: u16::from_le_bytes(bad_tail)
            }
        );
        assert_eq!(buf.len(), frame.len(), "nothing consumed");
    }
    // A body containing the tail mark does not end the frame early.
    let frame = support::msg(3, &[0x27, 0x1e, 0x27, 0x1e]);
    let f = Decoder::new(Marks::default(), 100)
        .decode(&mut BytesMut::from(&frame[..]))
        .unwrap()
        .unwrap();
    assert_eq!(&f.body[..], &[0x27, 0x1e, 0x27, 0x1e]);
}

#[test]
fn decoded_bodies_share_the_buffer() {
    let mut buf = BytesMut::with_capacity(64 * 143);
    for i in 0..64u8 {
        buf.put_slice(&support::msg(1, &[i; 128]));
    }
    let start = buf.as_ptr() as usize;
    let mut d = Decoder::new(Marks::default(), 1024);
    for i in 0..64usize {
        let f = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            f.body.as_ptr() as usize,
            start + i * 143 + HEADER_LEN,
            "frame {i} copied"
        );
        assert_eq!(&f.body[..], &[i as u8; 128][..]);
    }
}
