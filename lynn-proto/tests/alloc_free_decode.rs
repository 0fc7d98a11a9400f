//! Decoding allocates nothing per frame: bodies are slices of the receive buffer.
//!
//! This test binary installs a counting global allocator, so it holds only this test (a
//! second test running in parallel would be counted too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bytes::BytesMut;
use lynn_proto::codec::{DEFAULT_MAX_FRAME_LEN, Decoder, FrameKind, encode};
use lynn_proto::{Connection, ConnectionConfig, Event, Instant, Marks};

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

const FRAMES: usize = 10_000;

fn stream() -> BytesMut {
    let body = [0xabu8; 128];
    let mut wire = BytesMut::with_capacity(FRAMES * (128 + 15));
    for i in 0..FRAMES {
        encode(
            Marks::default(),
            FrameKind::Message,
            i as u16,
            &body,
            u64::MAX,
            &mut wire,
        )
        .unwrap();
    }
    wire
}

#[test]
fn decoding_many_frames_allocates_nothing_per_frame() {
    // Decoder alone: at most one allocation for the whole buffer (BytesMut's first split
    // turns its storage into shared storage), none per frame.
    let mut wire = stream();
    let mut decoder = Decoder::new(Marks::default(), DEFAULT_MAX_FRAME_LEN);
    let before = allocations();
    let mut bodies = 0;
    while let Some(frame) = decoder.decode(&mut wire).unwrap() {
        bodies += frame.body.len();
    }
    let decoder_allocs = allocations() - before;
    eprintln!("decoder: {decoder_allocs} allocations for {FRAMES} frames");
    assert_eq!(bodies, FRAMES * 128);
    assert!(
        decoder_allocs <= 1,
        "{decoder_allocs} allocations for {FRAMES} frames"
    );

    // Whole Connection path: bytes read into its receive buffer in 64 KiB reads, events
    // drained, requests completed without replies. The event queue and in-flight ring reach
    // their steady size early; after that nothing allocates per frame.
    let now = Instant::now();
    let mut config = ConnectionConfig::server();
    config.read_chunk = 64 * 1024;
    config.idle_timeout = Some(Duration::from_secs(60));
    let mut conn = Connection::new(config, now).unwrap();
    let wire = stream();
    let mut delivered = 0;
    let mut run = |conn: &mut Connection, chunk: &[u8]| {
        conn.receive_buffer().extend_from_slice(chunk);
        conn.handle_received(now);
        while let Some(event) = conn.poll_event() {
            if let Event::Message(req) = event {
                delivered += 1;
                conn.complete(req.id, None, now).unwrap();
            }
        }
    };
    let (warm, rest) = wire.split_at(wire.len() / 10);
    for chunk in warm.chunks(64 * 1024) {
        run(&mut conn, chunk);
    }
    let before = allocations();
    let chunks = rest.chunks(64 * 1024).count();
    for chunk in rest.chunks(64 * 1024) {
        run(&mut conn, chunk);
    }
    let allocs = allocations() - before;
    let frames = FRAMES - FRAMES / 10;
    eprintln!("connection: {allocs} allocations for {frames} frames in {chunks} reads");
    assert_eq!(delivered, FRAMES);
    // At most one receive-buffer allocation per 64 KiB read (~450 frames), never per frame.
    assert!(
        allocs <= chunks,
        "{allocs} allocations for {frames} frames in {chunks} reads"
    );
}
