//! Client behaviour: request timeout, offline queue versus refusal, drop and close.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use lynn_proto::{ClientConfig, ClientError};
use lynn_tokio::{Client, Context, Server};

#[tokio::test]
async fn request_times_out_and_a_late_reply_is_not_misdelivered() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .route(1, echo)
            .route(2, |_ctx: Context| async move {}) // never answers
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let config = ClientConfig::builder()
            .addr(srv.addr.to_string())
            .request_timeout(Some(Duration::from_millis(200)))
            // With ids a timeout ends only its own request; the connection stays.
            .correlation_ids(true)
            .build()
            .unwrap();
        let client = Client::connect_with(config).await.unwrap();
        let err = client.request(2, "silence").await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        assert_eq!(&client.request(1, "next").await.unwrap()[..], b"next");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn offline_queue_keeps_messages_and_zero_refuses() {
    bounded(async {
        let first = spawn(
            Server::builder(config().build().unwrap())
                .bind()
                .await
                .unwrap(),
        );
        let addr = first.addr;
        let make = |offline| {
            ClientConfig::builder()
                .addr(addr.to_string())
                .reconnect_interval(Duration::from_millis(20))
                .reconnect_attempts(None)
                .offline_queue(offline)
                .build()
                .unwrap()
        };
        let refusing = Client::connect_with(make(0)).await.unwrap();
        let queueing = Client::connect_with(make(4)).await.unwrap();
        first.stop().await;
        wait_until("both disconnected", || {
            !refusing.is_connected() && !queueing.is_connected()
        })
        .await;

        let err = refusing.send(1, "lost").await.unwrap_err();
        assert!(matches!(err, ClientError::Disconnected), "{err:?}");
        queueing.send(1, "kept").await.unwrap();

        let seen = Arc::new(Mutex::new(Vec::new()));
        let config = lynn_proto::ServerConfig::builder()
            .addr(addr.to_string())
            .build()
            .unwrap();
        let server = Server::builder(config)
            .state(seen.clone())
            .route(1, |ctx: Context<Arc<Mutex<Vec<Vec<u8>>>>>| async move {
                ctx.state().lock().unwrap().push(ctx.body().to_vec());
            })
            .bind()
            .await
            .unwrap();
        let second = spawn(server);
        wait_until("queued message delivered", || {
            !seen.lock().unwrap().is_empty()
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), vec![b"kept".to_vec()]);
        second.stop().await;
    })
    .await;
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_connection() {
    bounded(async {
        let srv = spawn(
            Server::builder(config().build().unwrap())
                .route(1, echo)
                .bind()
                .await
                .unwrap(),
        );
        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        let clone = client.clone();
        wait_until("connected", || srv.handle.connection_count() == 1).await;
        drop(client);
        assert_eq!(&clone.request(1, "still").await.unwrap()[..], b"still");
        drop(clone);
        wait_until("server saw the drop", || srv.handle.connection_count() == 0).await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn client_without_reconnect_reports_a_closed_server() {
    bounded(async {
        let srv = spawn(
            Server::builder(config().build().unwrap())
                .route(1, echo)
                .bind()
                .await
                .unwrap(),
        );
        let config = ClientConfig::builder()
            .addr(srv.addr.to_string())
            .reconnect(None)
            .build()
            .unwrap();
        let client = Client::connect_with(config).await.unwrap();
        srv.stop().await;
        assert!(
            client.recv().await.is_none(),
            "recv ends once closed for good"
        );
        assert!(!client.is_connected());
        let err = client.send(1, "x").await.unwrap_err();
        assert!(matches!(err, ClientError::Closed(Some(_))), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn connect_failure_is_an_error() {
    bounded(async {
        // A port nothing listens on: bind, note, release.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = Client::connect(addr.to_string()).await.unwrap_err();
        assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    })
    .await;
}
