//! `ServerBuilder::workers`: connections run on the server's own worker threads, spread
//! over them in turn; zero workers is a configuration error.

mod common;

use std::collections::BTreeSet;

use common::*;
use lynn_proto::ServerError;
use lynn_tokio::{Client, Context, Server};

/// Answers with the name of the thread the handler runs on.
async fn thread_name(ctx: Context) -> lynn_proto::Reply {
    let name = std::thread::current().name().unwrap_or("").to_string();
    ctx.reply(name)
}

#[tokio::test]
async fn connections_run_on_the_workers_in_turn() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .workers(2)
            .route(1, thread_name)
            .route(2, echo)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let mut names = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..4 {
            let client = Client::connect(srv.addr.to_string()).await.unwrap();
            let name = client.request(1, "").await.unwrap();
            names.push(String::from_utf8(name.to_vec()).unwrap());
            assert_eq!(&client.request(2, "ping").await.unwrap()[..], b"ping");
            clients.push(client);
        }
        let distinct: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            distinct,
            BTreeSet::from(["lynn-worker-0", "lynn-worker-1"]),
            "{names:?}"
        );
        // In turn: consecutive connections land on different workers.
        assert!(names.windows(2).all(|w| w[0] != w[1]), "{names:?}");
        for client in clients {
            client.close().await;
        }
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn zero_workers_fails_bind() {
    bounded(async {
        let err = Server::builder(config().build().unwrap())
            .workers(0)
            .route(1, echo)
            .bind()
            .await
            .unwrap_err();
        assert!(matches!(err, ServerError::Config(e) if e.field == "workers"));
    })
    .await;
}
