//! Admission: connection limits (slots come back after a disconnect) and rate limits.

mod common;

use common::*;
use lynn_tokio::{Client, Server};

async fn limited(config: lynn_proto::ServerConfig, label: &str) {
    let server = Server::builder(config).route(1, echo).bind().await.unwrap();
    let srv = spawn(server);
    let a = Client::connect(srv.addr.to_string()).await.unwrap();
    let b = Client::connect(srv.addr.to_string()).await.unwrap();
    wait_until("two connections", || srv.handle.connection_count() == 2).await;

    // A third is accepted by TCP, then closed at once without a byte.
    let mut third = raw(srv.addr, &HELLO).await;
    assert_eq!(read_to_eof(&mut third).await, b"");
    wait_until("rejection counted", || {
        srv.handle.metrics().rejected_with(label) == 1
    })
    .await;

    // A client leaves; once the server has seen it go, the next one gets its slot.
    drop(a);
    wait_until("slot released", || srv.handle.connection_count() == 1).await;
    let c = Client::connect(srv.addr.to_string()).await.unwrap();
    assert_eq!(&c.request(1, "in").await.unwrap()[..], b"in");
    assert_eq!(&b.request(1, "still").await.unwrap()[..], b"still");
    assert_eq!(srv.handle.metrics().rejected_with(label), 1);
    srv.stop().await;
}

#[tokio::test]
async fn max_connections_with_slot_released_after_disconnect() {
    bounded(limited(
        config().max_connections(2).build().unwrap(),
        "max_connections",
    ))
    .await;
}

#[tokio::test]
async fn max_connections_per_ip_with_slot_released_after_disconnect() {
    bounded(limited(
        config().max_connections_per_ip(2).build().unwrap(),
        "max_per_ip",
    ))
    .await;
}

#[tokio::test]
async fn connection_rate_limit() {
    bounded(async {
        // One new connection per second, burst of one: a second connection right after
        // the first is refused.
        let config = config().connection_rate(1).build().unwrap();
        let server = Server::builder(config).route(1, echo).bind().await.unwrap();
        let srv = spawn(server);
        let first = Client::connect(srv.addr.to_string()).await.unwrap();
        let mut second = raw(srv.addr, &HELLO).await;
        assert_eq!(read_to_eof(&mut second).await, b"");
        assert_eq!(srv.handle.metrics().rejected_with("rate_limited"), 1);
        assert_eq!(&first.request(1, "ok").await.unwrap()[..], b"ok");
        srv.stop().await;
    })
    .await;
}
