//! Pushes to all connections and to a group, seen by clients.

use std::time::Duration;

use bytes::Bytes;

use crate::app::{self, App, JOIN, PUSH, TO_ALL, TO_GROUP};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{DEADLINE, client_config, server_config, wait_until};

fn next_push(client: &impl ClientUnderTest, who: usize) -> Bytes {
    let msg = client
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|| panic!("client {who} gets a push"));
    assert_eq!(msg.method, PUSH);
    msg.body
}

/// Three clients, two of them in group `g`. A group push reaches the two members, a push to
/// all reaches all three, each exactly once: a final server-side broadcast is the next push
/// every client sees.
pub fn broadcast_all_and_group<C: Runtime, S: Runtime>() {
    let server = S::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let config = client_config(server.addr()).build().unwrap();
    let clients: Vec<C::Client> = (0..3)
        .map(|_| C::connect(config.clone()).expect("client connects"))
        .collect();
    wait_until("three connections", || server.connection_count() == 3);
    for c in &clients[..2] {
        assert_eq!(&c.request(JOIN, "g".into()).unwrap()[..], b"joined");
    }
    let sender = &clients[2];
    let n = sender
        .request(TO_GROUP, app::group_body("g", b"to g"))
        .unwrap();
    assert_eq!(app::count(&n), 2, "group recipients");
    let n = sender.request(TO_ALL, "to all".into()).unwrap();
    assert_eq!(app::count(&n), 3, "broadcast recipients");
    assert_eq!(
        server.broadcast(PUSH, "end".into()),
        3,
        "server-side broadcast"
    );
    for (i, c) in clients.iter().enumerate() {
        if i < 2 {
            assert_eq!(&next_push(c, i)[..], b"to g", "client {i}");
        }
        assert_eq!(&next_push(c, i)[..], b"to all", "client {i}");
        assert_eq!(
            &next_push(c, i)[..],
            b"end",
            "client {i}: no duplicate before it"
        );
        assert!(
            c.recv_timeout(Duration::from_millis(50)).is_none(),
            "client {i}"
        );
    }
    for c in &clients {
        c.close();
    }
    server.stop();
}
