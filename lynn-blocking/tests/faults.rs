//! Faults stay local: bad frames close only their connection, a panicking handler only
//! loses its own reply.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Raw, Running, build, config, frame, wait_until};
use lynn_blocking::{Client, Context, Server};

static DELIVERED: AtomicUsize = AtomicUsize::new(0);

fn server() -> Running {
    Running::start(
        Server::builder(build(config()))
            .route(1, |ctx: Context| ctx.reply(ctx.body().clone()))
            .route(5, |_: Context| {
                DELIVERED.fetch_add(1, Ordering::SeqCst);
            })
            .route(3, |_: Context| -> () { panic!("handler bug") })
            .bind()
            .unwrap(),
    )
}

#[test]
fn bad_frame_closes_only_the_offending_connection() {
    let server = server();
    let good = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&good.request(1, "before").unwrap()[..], b"before");

    let mut bad = Raw::connect(&server.addr);
    // A valid frame, then a wrong header mark, in one write.
    let mut bytes = frame(5, b"first");
    bytes.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
    bad.write(&bytes);
    bad.expect_closed();
    // The frame before the bad one was still delivered to its handler.
    wait_until("first frame delivered", || {
        DELIVERED.load(Ordering::SeqCst) == 1
    });

    let m = server.handle.metrics();
    wait_until("protocol close counted", || {
        m.closed_with("protocol_error") == 1
    });
    assert_eq!(&good.request(1, "after").unwrap()[..], b"after");
    assert!(good.is_connected());
    server.stop();
}

#[test]
fn oversized_length_closes_before_allocating() {
    let server = server();
    let mut bad = Raw::connect(&server.addr);
    let mut header = vec![0xd9, 0x23];
    header.extend_from_slice(&u64::MAX.to_le_bytes());
    bad.write(&header);
    bad.expect_closed();
    server.stop();
}

#[test]
fn handler_panic_affects_only_its_request() {
    let server = server();
    let mut raw = Raw::connect(&server.addr);
    let mut bytes = frame(1, b"a");
    bytes.extend(frame(3, b"boom"));
    bytes.extend(frame(1, b"b"));
    raw.write(&bytes);
    assert_eq!(&raw.read_frame().unwrap().body[..], b"a");
    assert_eq!(&raw.read_frame().unwrap().body[..], b"b");
    let m = server.handle.metrics();
    assert_eq!(m.handler_failures(), (0, 1));
    // Same connection still served.
    raw.write(&frame(1, b"c"));
    assert_eq!(&raw.read_frame().unwrap().body[..], b"c");
    server.stop();
}
