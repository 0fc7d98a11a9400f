//! Fanout to many clients and to groups, from handlers (async and synchronous) and from
//! the server handle (`crate::scenarios::broadcast`, `sync_routes::sync_broadcast`).

use std::time::Duration;

use super::{Client, client_config, connect, recv_within, server_config, settle, start};
use crate::app::{JOIN, PUSH, SYNC_TO_ALL, TO_ALL, TO_GROUP, count, group_body};

/// Clients connected at once.
pub const CLIENTS: usize = 40;

/// Who is in which group: even clients in `even`, every third in `third`.
fn groups_of(i: usize) -> impl Iterator<Item = &'static str> {
    [
        (i % 2 == 0).then_some("even"),
        (i % 3 == 0).then_some("third"),
    ]
    .into_iter()
    .flatten()
}

/// Forty clients, in two overlapping groups. Pushes to each group, to all from an async
/// and from a synchronous handler, and from the server handle each reach exactly their
/// recipients (the counts say so, and each client sees exactly its pushes, in order, and
/// nothing more). A client that closes leaves its groups.
pub async fn fanout_to_many_clients_and_groups() {
    let server = start(server_config()).await;
    let mut clients: Vec<Client> = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(connect(client_config(server.addr())).await);
    }
    settle("every client connected", || {
        server.handle().connection_count() == CLIENTS
    })
    .await;
    for (i, c) in clients.iter().enumerate() {
        for group in groups_of(i) {
            assert_eq!(
                c.request(JOIN, group).await.unwrap(),
                "joined",
                "client {i}"
            );
        }
    }
    let sender = clients[CLIENTS - 1].clone();
    let sent = [
        (TO_GROUP, group_body("even", b"to even"), CLIENTS / 2),
        (
            TO_GROUP,
            group_body("third", b"to third"),
            CLIENTS.div_ceil(3),
        ),
        (TO_GROUP, group_body("nobody", b"to nobody"), 0),
        (TO_ALL, "to all".into(), CLIENTS),
        (SYNC_TO_ALL, "sync to all".into(), CLIENTS),
    ];
    for (method, body, recipients) in sent {
        let n = sender.request(method, body.clone()).await.unwrap();
        assert_eq!(count(&n) as usize, recipients, "method {method}, {body:?}");
    }
    assert_eq!(server.handle().broadcast(PUSH, "end"), CLIENTS);
    for (i, c) in clients.iter().enumerate() {
        let mut expected: Vec<String> = groups_of(i).map(|g| format!("to {g}")).collect();
        expected.extend(["to all", "sync to all", "end"].map(String::from));
        for want in expected {
            let push = recv_within(c, Duration::from_secs(5)).await;
            let push = push.unwrap_or_else(|| panic!("client {i}: no push {want:?}"));
            assert_eq!(
                (push.method, &push.body[..]),
                (PUSH, want.as_bytes()),
                "client {i}"
            );
        }
        let extra = recv_within(c, Duration::from_millis(100)).await;
        assert!(extra.is_none(), "client {i}: a push too many: {extra:?}");
    }
    clients.remove(0).close().await;
    settle("the closed client is gone", || {
        server.handle().connection_count() == CLIENTS - 1
    })
    .await;
    let n = sender
        .request(TO_GROUP, group_body("even", b"again"))
        .await
        .unwrap();
    assert_eq!(count(&n) as usize, CLIENTS / 2 - 1, "client 0 left `even`");
    for c in &clients {
        c.close().await;
    }
    server.stop().await;
}
