//! `TokioRuntime::with_workers`: connections run on the server's own worker threads,
//! spread over them in turn; zero workers is an error.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use lynn_tokio::{Client, Context, Server, TokioRuntime};

/// Answers with the name of the thread the handler runs on.
async fn thread_name(ctx: Context) -> lynn_tokio::Reply {
    let name = std::thread::current().name().unwrap_or("").to_string();
    ctx.reply(name)
}

#[tokio::test]
async fn connections_run_on_the_workers_in_turn() {
    bounded(async {
        let server = Server::builder(config().build().unwrap())
            .runtime(TokioRuntime::with_workers(2).unwrap())
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

#[test]
fn zero_workers_is_an_error() {
    let err = TokioRuntime::with_workers(0).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// One worker thread and a peer that never stops sending (messages for a method without a
/// route: ignored, so nothing it waits on pushes back), so that its socket is readable at
/// almost every turn: a second connection on the same worker is still answered. A
/// connection's task lets the others run after `TURNS_PER_POLL` turns; on a two-core
/// machine the flood's socket buffer also runs dry now and then (after ~1,300 reads of 64
/// bytes), which ends a poll as well, so this checks the outcome, not the bound itself.
#[tokio::test]
async fn a_peer_that_never_stops_sending_does_not_starve_its_worker() {
    bounded(async {
        // Reads of 64 bytes: while the flood lasts, every read fills its buffer, so the
        // socket stays readable and nothing but a bound on turns ends the task's poll.
        let mut cfg = config().build().unwrap();
        cfg.connection.read_chunk = 64;
        let server = Server::builder(cfg)
            .runtime(TokioRuntime::with_workers(1).unwrap())
            .route(1, echo)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        // A blocking socket on a thread of its own, so the flood does not wait for this
        // test's runtime.
        let flood = std::net::TcpStream::connect(srv.addr).unwrap();
        let mut tx = flood.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let writer = std::thread::spawn(move || {
            let chunk: Vec<u8> = (0..256).flat_map(|_| frame(2, &[7u8; 64])).collect();
            while !flag.load(Ordering::Relaxed) && tx.write_all(&chunk).is_ok() {}
        });
        wait_until("the flood is being read", || {
            server_metric(&srv.handle, "lynn_network_bytes_received_total") > 1 << 20
        })
        .await;

        let client = Client::connect(srv.addr.to_string()).await.unwrap();
        for i in 0..20 {
            let body = format!("request {i}");
            assert_eq!(
                client.request(1, body.clone()).await.unwrap(),
                body.as_bytes()
            );
        }
        assert!(
            !writer.is_finished(),
            "the flood was still going while the other connection was answered"
        );

        stop.store(true, Ordering::Relaxed);
        flood.shutdown(Shutdown::Both).unwrap();
        writer.join().unwrap();
        client.close().await;
        srv.stop().await;
    })
    .await;
}
