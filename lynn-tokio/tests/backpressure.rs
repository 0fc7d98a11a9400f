//! A peer that never reads cannot make the server buffer without bound.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use lynn_tokio::{Client, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

const TOTAL: u64 = 64 * 1024 * 1024;

#[tokio::test]
async fn non_reading_peer_is_pushed_back_and_others_are_served() {
    bounded(async {
        let config = config()
            .max_in_flight(4)
            .send_queue_limit(16 * 1024)
            .send_buffer_size(32 * 1024)
            .write_timeout(None)
            .build()
            .unwrap();
        let server = Server::builder(config).route(1, echo).bind().await.unwrap();
        let srv = spawn(server);

        let sock = TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(32 * 1024).unwrap();
        let mut sock = sock.connect(srv.addr).await.unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        let writer = tokio::spawn(async move {
            let chunk: Vec<u8> = (0..64).flat_map(|_| frame(1, &[7u8; 1024])).collect();
            while counter.load(Ordering::Relaxed) < TOTAL {
                if sock.write_all(&chunk).await.is_err() {
                    break;
                }
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            sock
        });

        // Wait for the server to stop reading: its received-bytes counter stays put while
        // the writer is blocked (it has not written everything).
        let mut last = -1;
        let mut stable = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while stable < 20 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "server never pushed back"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
            let now = server_metric(&srv.handle, "lynn_network_bytes_received_total");
            if now == last {
                stable += 1;
            } else {
                (last, stable) = (now, 0);
            }
        }
        let received = last as u64;
        assert!(received < 8 * 1024 * 1024, "server read {received} bytes");
        assert!(
            !writer.is_finished(),
            "the writer is blocked by TCP backpressure"
        );
        assert!(written.load(Ordering::Relaxed) < TOTAL);

        // Meanwhile another client is served.
        let other = Client::connect(srv.addr.to_string()).await.unwrap();
        assert_eq!(&other.request(1, "served").await.unwrap()[..], b"served");
        assert_eq!(
            server_metric(&srv.handle, "lynn_network_bytes_received_total") as u64,
            received + 21
        );

        writer.abort();
        srv.stop().await;
    })
    .await;
}
