//! Codec throughput: frames and bytes per second, decode and encode, for bodies of 0, 16,
//! 128, 1 KiB and 64 KiB, fed whole and in 1,500-byte chunks; plus allocations per decoded
//! frame, counted by a global allocator.
//!
//! `cargo bench -p lynn-proto --bench codec`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput};
use lynn_proto::Marks;
use lynn_proto::codec::{Decoder, FrameKind, encode, encode_header, encode_tail};

struct Counting;
thread_local! {
    /// Allocations made by this thread (other threads, such as the test harness's, do not
    /// count). A const-initialised thread local never allocates itself.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SIZES: [usize; 5] = [0, 16, 128, 1024, 64 * 1024];
const MAX: u64 = 1 << 20;

/// About 4 MiB of frames (at least 16) with bodies of `size`.
fn stream(size: usize) -> (Vec<u8>, usize) {
    let count = (4 << 20) / (size + 15);
    let count = count.max(16);
    let body = vec![0x5a; size];
    let mut wire = BytesMut::with_capacity(count * (size + 15));
    for i in 0..count {
        encode(
            Marks::default(),
            FrameKind::Message,
            i as u16,
            &body,
            MAX,
            &mut wire,
        )
        .unwrap();
    }
    (wire.to_vec(), count)
}

fn decode_all(dec: &mut Decoder, buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(frame) = dec.decode(buf).unwrap() {
        black_box(&frame.body);
        n += 1;
    }
    n
}

fn decode_chunked(src: &[u8]) -> usize {
    let mut dec = Decoder::new(Marks::default(), MAX);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut n = 0;
    for chunk in src.chunks(1500) {
        buf.extend_from_slice(chunk);
        n += decode_all(&mut dec, &mut buf);
    }
    n
}

fn bench(c: &mut Criterion) {
    for size in SIZES {
        let (wire, count) = stream(size);
        let mut g = c.benchmark_group(format!("body_{size}"));
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function("decode_whole", |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| {
                    let n = decode_all(&mut Decoder::new(Marks::default(), MAX), &mut buf);
                    assert_eq!(n, count, "every frame decoded");
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("decode_1500_byte_chunks", |b| {
            b.iter(|| assert_eq!(decode_chunked(&wire), count, "every frame decoded"))
        });
        let body = vec![0x5a; size];
        g.bench_function("encode", |b| {
            let mut out = BytesMut::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                for i in 0..count {
                    encode(
                        Marks::default(),
                        FrameKind::Message,
                        i as u16,
                        &body,
                        MAX,
                        &mut out,
                    )
                    .unwrap();
                }
                black_box(out.len())
            })
        });
        g.bench_function("encode_header_and_tail", |b| {
            b.iter(|| {
                let mut sum = 0u32;
                for i in 0..count {
                    // Inputs through `black_box`: the encoders are inlined, and with
                    // constant inputs the loop folds away.
                    let marks = black_box(Marks::default());
                    let h =
                        encode_header(marks, FrameKind::Message, i as u16, black_box(size), MAX);
                    sum = sum.wrapping_add(black_box(h.unwrap())[2].into());
                    sum = sum.wrapping_add(black_box(encode_tail(marks))[0].into());
                }
                black_box(sum)
            })
        });
        g.finish();
        let mut g = c.benchmark_group(format!("body_{size}_bytes"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("decode_whole", |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| decode_all(&mut Decoder::new(Marks::default(), MAX), &mut buf),
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

/// Prints allocations per decoded frame for each body size (whole-buffer decode).
fn report_allocations() {
    for size in SIZES {
        let (wire, count) = stream(size);
        let mut buf = BytesMut::from(&wire[..]);
        let mut dec = Decoder::new(Marks::default(), MAX);
        let before = allocations();
        let n = decode_all(&mut dec, &mut buf);
        let allocs = allocations() - before;
        assert_eq!(n, count);
        println!(
            "allocations: body {size:>6} B: {allocs} for {n} frames = {:.6} per frame",
            allocs as f64 / n as f64
        );
    }
}

fn main() {
    report_allocations();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
