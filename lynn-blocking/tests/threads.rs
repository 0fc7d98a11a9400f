//! The thread count stays bounded: acceptor + pool + two per connection, and returns to
//! its level when the connections close. (Alone in its binary: it counts process threads.)

mod common;

use common::{Raw, Running, build, config, thread_count, wait_until};
use lynn_blocking::{Context, Server};

#[test]
fn threads_bounded_with_50_connections() {
    const CONNS: usize = 50;
    const POOL: usize = 4;
    let before = thread_count();
    let server = Server::builder(build(config().max_concurrent_handlers(Some(POOL))))
        .fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
        .bind()
        .unwrap();
    let server = Running::start(server);
    let idle = thread_count();
    assert!(idle <= before + 1 + POOL, "idle server: {before} -> {idle}");
    let mut peers: Vec<Raw> = (0..CONNS).map(|_| Raw::connect(&server.addr)).collect();
    wait_until("all connected", || {
        server.handle.connection_count() == CONNS
    });
    for (i, p) in peers.iter_mut().enumerate() {
        p.write(&common::frame(1, &[i as u8]));
        assert_eq!(p.read_frame().unwrap().body[..], [i as u8]);
    }
    let busy = thread_count();
    assert!(
        busy <= idle + 2 * CONNS,
        "{CONNS} connections: {idle} -> {busy} threads"
    );
    drop(peers);
    wait_until("threads back", || {
        server.handle.connection_count() == 0 && thread_count() <= idle
    });
    server.stop();
    wait_until("pool gone", || thread_count() <= before);
}
