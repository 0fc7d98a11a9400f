//! Graceful shutdown answers what was accepted; clients reconnect to a restarted server.

mod common;

use std::time::Duration;

use common::*;
use lynn_proto::ClientConfig;
use lynn_tokio::{Client, Context, Server};

#[tokio::test]
async fn graceful_shutdown_delivers_every_accepted_reply() {
    bounded(async {
        let config = config().max_in_flight(8).build().unwrap();
        let server = Server::builder(config)
            .route(1, |ctx: Context| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                ctx.reply(ctx.body().clone())
            })
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let mut bytes = Vec::new();
        for n in 0u8..5 {
            bytes.extend(frame(1, &[n]));
        }
        let mut sock = raw(srv.addr, &bytes).await;
        wait_until("five handlers running", || {
            server_metric(&srv.handle, "lynn_system_queue_size") == 5
        })
        .await;
        let addr = srv.addr;
        srv.stop().await; // returns only once the connection is closed
        assert_eq!(
            read_to_eof(&mut sock).await,
            bytes,
            "every reply, in order, then EOF"
        );
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer accepting"
        );
    })
    .await;
}

#[tokio::test]
async fn client_reconnects_after_server_restart_on_the_same_port() {
    bounded(async {
        let first = spawn(
            Server::builder(config().build().unwrap())
                .route(1, echo)
                .bind()
                .await
                .unwrap(),
        );
        let addr = first.addr;
        let config = ClientConfig::builder()
            .addr(addr.to_string())
            .reconnect_interval(Duration::from_millis(20))
            .reconnect_attempts(None)
            .build()
            .unwrap();
        let client = Client::connect_with(config).await.unwrap();
        assert_eq!(&client.request(1, "one").await.unwrap()[..], b"one");

        first.stop().await;
        wait_until("client saw the loss", || !client.is_connected()).await;

        let config = lynn_proto::ServerConfig::builder()
            .addr(addr.to_string())
            .build()
            .unwrap();
        let second = spawn(Server::builder(config).route(1, echo).bind().await.unwrap());
        wait_until("client reconnected", || client.is_connected()).await;
        assert_eq!(&client.request(1, "two").await.unwrap()[..], b"two");
        second.stop().await;
    })
    .await;
}
