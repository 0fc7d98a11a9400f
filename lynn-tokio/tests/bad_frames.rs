//! Invalid frames close only the offending connection.

mod common;

use common::*;
use lynn_tokio::{Client, Server};

async fn bad_frame_closes_only_its_connection(bad: Vec<u8>, good_before: u64) {
    let config = config().max_frame_len(1024).build().unwrap();
    let server = Server::builder(config).route(1, echo).bind().await.unwrap();
    let srv = spawn(server);
    let good = Client::connect(srv.addr.to_string()).await.unwrap();
    assert_eq!(&good.request(1, "before").await.unwrap()[..], b"before");

    let mut sock = raw(srv.addr, &bad).await;
    // The connection closes (EOF). The core closes a failing connection once the frames
    // before the bad one are delivered, without waiting for their replies, so nothing
    // else is asserted about the bytes.
    let _ = read_to_eof(&mut sock).await;
    wait_until("protocol close counted", || {
        srv.handle.metrics().closed_with("protocol_error") == 1
    })
    .await;
    assert_eq!(server_metric(&srv.handle, "lynn_messages_invalid_total"), 1);
    // The good client's request, plus the valid frames before the bad one.
    assert_eq!(srv.handle.metrics().messages_received(), 1 + good_before);

    // The other client, connected all along, still works.
    assert_eq!(&good.request(1, "after").await.unwrap()[..], b"after");
    assert_eq!(srv.handle.connection_count(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn wrong_header_mark() {
    let mut bad = HELLO.to_vec();
    bad[0] = 0x00;
    bounded(bad_frame_closes_only_its_connection(bad, 0)).await;
}

#[tokio::test]
async fn wrong_tail_mark_after_a_good_frame() {
    let mut bad = HELLO.to_vec();
    bad.extend_from_slice(&HELLO);
    let last = bad.len() - 1;
    bad[last] = 0xff;
    bounded(bad_frame_closes_only_its_connection(bad, 1)).await;
}

#[tokio::test]
async fn length_over_the_limit() {
    let mut bad = vec![0xd9, 0x23];
    bad.extend_from_slice(&1_000_000u64.to_le_bytes());
    bad.extend_from_slice(&[1, 1, 0]);
    bounded(bad_frame_closes_only_its_connection(bad, 0)).await;
}
