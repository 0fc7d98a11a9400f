//! Admission limits release their slots; a client that never reads is pushed back on
//! without starving others.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Raw, Running, build, config, wait_until};
use lynn_blocking::{Client, Context, Server};

fn echo(cfg: lynn_proto::ServerConfigBuilder) -> Running {
    Running::start(
        Server::builder(build(cfg))
            .fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
            .bind()
            .unwrap(),
    )
}

#[test]
fn max_connections_rejects_and_releases() {
    let server = echo(config().max_connections(2));
    let a = Raw::connect(&server.addr);
    let b = Client::connect(server.addr.clone()).unwrap();
    wait_until("two connections", || server.handle.connection_count() == 2);
    let mut c = Raw::connect(&server.addr);
    c.expect_closed();
    let m = server.handle.metrics();
    assert_eq!(m.rejected_with("max_connections"), 1);
    drop(a);
    wait_until("slot released", || server.handle.connection_count() == 1);
    let d = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&d.request(1, "in").unwrap()[..], b"in");
    assert_eq!(&b.request(1, "still").unwrap()[..], b"still");
    server.stop();
}

#[test]
fn per_ip_limit_rejects_and_releases() {
    let server = echo(config().max_connections_per_ip(1));
    let a = Client::connect(server.addr.clone()).unwrap();
    wait_until("one connection", || server.handle.connection_count() == 1);
    let mut b = Raw::connect(&server.addr);
    b.expect_closed();
    assert_eq!(server.handle.metrics().rejected_with("max_per_ip"), 1);
    a.close();
    wait_until("slot released", || server.handle.connection_count() == 0);
    let c = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&c.request(1, "ok").unwrap()[..], b"ok");
    server.stop();
}

#[test]
fn reader_that_never_reads_is_pushed_back() {
    const BODY: usize = 64 * 1024;
    const FRAMES: usize = 1024; // 64 MiB: far more than any socket buffers hold
    let server = echo(config().send_queue_limit(256 * 1024));
    let mut hog = Raw::connect(&server.addr);
    hog.stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let frame = common::frame(1, &vec![7u8; BODY]);
    let mut sent = 0;
    let stalled = loop {
        if sent == FRAMES {
            break false;
        }
        match hog.stream.write_all(&frame) {
            Ok(()) => sent += 1,
            Err(_) => break true, // no progress for 500 ms: the server stopped reading
        }
    };
    assert!(
        stalled,
        "the server read all {FRAMES} frames without the replies being read"
    );
    let m = server.handle.metrics();
    assert!(
        (m.messages_received() as usize) < FRAMES / 2,
        "server read {} frames",
        m.messages_received()
    );
    // Another client is served meanwhile.
    let other = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&other.request(1, "me too").unwrap()[..], b"me too");
    drop(hog);
    server.stop();
}
