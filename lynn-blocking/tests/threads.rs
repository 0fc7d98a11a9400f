//! Idle connections cost no thread: 500 connections, each answered once and then left idle,
//! grow the process by a small constant number of threads (not one or two per connection,
//! as when every connection had threads of its own), and each costs the server one
//! descriptor. (Alone in its binary: it counts the process's threads and descriptors.)

mod common;

use common::{Raw, Running, build, config, fd_count, frame, thread_count, wait_until};
use lynn_blocking::{Context, Server};

/// Connections opened and left idle.
const CONNS: usize = 500;
/// Threads the process may gain while they are open (a handler thread or two of the
/// `blocking` pool, say); nothing that grows with the connections.
const SMALL: usize = 8;

#[test]
fn idle_connections_are_served_without_a_thread_each() {
    // All from 127.0.0.1: past the default per-IP limit.
    let server = Server::builder(build(config().max_connections_per_ip(2 * CONNS)))
        .fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
        .bind()
        .unwrap();
    let server = Running::start(server);
    // The first connection starts what every later one shares: the executor threads,
    // async-io's thread and a handler thread.
    let mut first = Raw::connect(&server.addr);
    first.write(&frame(1, b"warm up"));
    assert_eq!(&first.read_frame().unwrap().body[..], b"warm up");
    let (threads, fds) = (thread_count(), fd_count());

    let mut peers: Vec<Raw> = (0..CONNS).map(|_| Raw::connect(&server.addr)).collect();
    wait_until("all connected", || {
        server.handle.connection_count() == CONNS + 1
    });
    // Each is served (a blocking handler answers it once), then left idle.
    for (i, peer) in peers.iter_mut().enumerate() {
        let body = (i as u32).to_le_bytes();
        peer.write(&frame(1, &body));
        assert_eq!(peer.read_frame().unwrap().body[..], body, "reply {i}");
    }
    let grown = thread_count().saturating_sub(threads);
    assert!(
        grown <= SMALL,
        "{CONNS} idle connections added {grown} threads"
    );
    // One descriptor per connection on each side: the test's socket and the server's.
    let opened = fd_count().saturating_sub(fds);
    assert!(
        opened <= 2 * CONNS + SMALL,
        "{CONNS} connections opened {opened} descriptors"
    );
    assert_eq!(server.handle.connection_count(), CONNS + 1);

    drop(peers);
    wait_until("idle connections closed", || {
        server.handle.connection_count() == 1
    });
    server.stop();
}
