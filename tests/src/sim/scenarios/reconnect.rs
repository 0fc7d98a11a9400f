//! The shared client reconnects after the shared server restarts at the same address
//! (`crate::scenarios::reconnect`).

use std::time::Duration;

use futures_lite::future::zip;
use lynn_proto::ClientConfigBuilder;
use lynn_proto::reconnect::ReconnectConfig;

use super::{Client, client_config, connect, recv_within, server_config, settle, start};
use crate::app::{DELAY, ECHO, delay_body};
use crate::sim::{SimServer, sleep};

/// Retries every 50 ms to 200 ms, forever, without jitter (its seed comes from the wall
/// clock, which would make runs differ).
fn config(addr: &str) -> ClientConfigBuilder {
    let policy = ReconnectConfig {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_attempts: None,
        jitter_percent: 0,
        ..ReconnectConfig::default()
    };
    client_config(addr)
        .reconnect(Some(policy))
        .request_timeout(Some(Duration::from_secs(5)))
}

/// A server at `addr` (the address of one that stopped).
async fn restart(addr: &str) -> SimServer {
    super::start(server_config().addr(addr)).await
}

/// Stops `server` and waits until `client` has noticed.
async fn stop(server: SimServer, client: &Client) {
    server.stop().await;
    settle("the client to notice", || !client.is_connected()).await;
}

/// The server stops; the client notices; it keeps failing to reconnect for two seconds;
/// a new server binds the same address; the client reconnects by itself and its requests
/// work again.
pub async fn reconnect_after_restart() {
    let server = start(server_config()).await;
    let addr = server.addr().to_string();
    let client = connect(config(&addr)).await;
    assert_eq!(client.request(ECHO, "one").await.unwrap(), "one");
    stop(server, &client).await;
    sleep(Duration::from_secs(2)).await;
    assert!(!client.is_connected(), "nobody to connect to");
    let server = restart(&addr).await;
    settle("reconnected", || client.is_connected()).await;
    assert_eq!(client.request(ECHO, "two").await.unwrap(), "two");
    assert_eq!(server.handle().connection_count(), 1);
    client.close().await;
    server.stop().await;
}

/// With an offline queue, a `send` and a `request` made while the server is down are
/// kept, and delivered once the client has reconnected to the restarted server: the
/// request gets its reply, and the send's reply arrives as a message.
pub async fn offline_queue_delivers_after_reconnect() {
    let server = start(server_config()).await;
    let addr = server.addr().to_string();
    let client = connect(config(&addr).offline_queue(8)).await;
    assert_eq!(client.request(ECHO, "one").await.unwrap(), "one");
    stop(server, &client).await;
    let queued = delay_body(Duration::ZERO, b"queued send");
    client
        .send(DELAY, queued)
        .await
        .expect("kept while offline");
    let restarted = async {
        sleep(Duration::from_secs(1)).await;
        restart(&addr).await
    };
    let (reply, server) = zip(client.request(ECHO, "queued request"), restarted).await;
    assert_eq!(
        reply.expect("answered after reconnecting"),
        "queued request"
    );
    let msg = recv_within(&client, Duration::from_secs(5)).await;
    let msg = msg.expect("the queued send's reply");
    assert_eq!((msg.method, &msg.body[..]), (DELAY, &b"queued send"[..]));
    client.close().await;
    server.stop().await;
}
