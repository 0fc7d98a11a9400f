//! Broadcast to all and to a group reach each recipient exactly once; the event stream
//! reports connections and carries requests with a responder.

mod common;

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use common::{Running, build, config};
use lynn_blocking::{Client, CloseReason, Context, Reply, Server, ServerEvent};

#[test]
fn broadcast_all_and_group_exactly_once() {
    let server = Server::builder(build(config()))
        .route(10, |ctx: Context| {
            ctx.server().join("g", ctx.id()).unwrap();
            ctx.reply("joined")
        })
        .route(99, |ctx: Context| ctx.reply("mark"))
        .bind()
        .unwrap();
    let server = Running::start(server);
    let clients: Vec<Client> = (0..3)
        .map(|_| Client::connect(server.addr.clone()).unwrap())
        .collect();
    for c in &clients[..2] {
        assert_eq!(&c.request(10, "").unwrap()[..], b"joined");
    }
    common::wait_until("three connected", || server.handle.connection_count() == 3);
    assert_eq!(server.handle.broadcast(5, "all"), 3);
    assert_eq!(server.handle.broadcast_group("g", 6, "grp"), 2);
    for (i, c) in clients.iter().enumerate() {
        let m = c.recv_timeout(common::DEADLINE).unwrap();
        assert_eq!((m.method, &m.body[..]), (5, &b"all"[..]));
        if i < 2 {
            let m = c.recv_timeout(common::DEADLINE).unwrap();
            assert_eq!((m.method, &m.body[..]), (6, &b"grp"[..]));
        }
        // Anything duplicated would have arrived before this reply.
        assert_eq!(&c.request(99, "").unwrap()[..], b"mark");
        assert_eq!(
            c.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
    }
    server.stop();
}

#[test]
fn handler_fanout_reaches_others() {
    let server = Server::builder(build(config()))
        .route(1, |ctx: Context| {
            Reply::to_sender(1, "sent").and(lynn_blocking::Target::AllExcept(ctx.id()), 2, "hey")
        })
        .bind()
        .unwrap();
    let server = Running::start(server);
    let a = Client::connect(server.addr.clone()).unwrap();
    let b = Client::connect(server.addr.clone()).unwrap();
    common::wait_until("two connected", || server.handle.connection_count() == 2);
    assert_eq!(&a.request(1, "").unwrap()[..], b"sent");
    let m = b.recv_timeout(common::DEADLINE).unwrap();
    assert_eq!((m.method, &m.body[..]), (2, &b"hey"[..]));
    assert_eq!(
        a.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    server.stop();
}

#[test]
fn event_stream_connects_answers_and_closes() {
    let (builder, events) = Server::builder(build(config())).event_stream(8);
    let server = Running::start(builder.bind().unwrap());
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let consumer = std::thread::spawn(move || {
        for event in events {
            match event {
                ServerEvent::Connected { id, .. } => {
                    seen_tx.send(format!("open {}", id.0)).unwrap()
                }
                ServerEvent::Message { ctx, responder } => {
                    responder.reply(ctx.reply(ctx.body().clone()));
                }
                ServerEvent::Closed { id, reason } => {
                    assert_eq!(reason, CloseReason::PeerClosed);
                    seen_tx.send(format!("closed {}", id.0)).unwrap();
                }
                _ => {}
            }
        }
    });
    let client = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&client.request(4, "via events").unwrap()[..], b"via events");
    let open = seen_rx.recv_timeout(common::DEADLINE).unwrap();
    drop(client);
    let closed = seen_rx.recv_timeout(common::DEADLINE).unwrap();
    assert_eq!(open.replace("open", "closed"), closed);
    server.stop();
    consumer.join().unwrap();
}
