//! Graceful shutdown answers every accepted request; a client reconnects to a restarted
//! server on the same port.

mod common;

use std::time::Duration;

use common::{Raw, Running, build, config, frame, wait_until};
use lynn_blocking::{Client, ClientConfig, Context, Server};
use lynn_proto::reconnect::ReconnectConfig;

#[test]
fn graceful_shutdown_answers_every_accepted_request() {
    const N: u8 = 10;
    let server = Server::builder(build(config().max_concurrent_handlers(Some(4))))
        .route(1, |ctx: Context| {
            std::thread::sleep(Duration::from_millis(50)); // the workload
            ctx.reply(ctx.body().clone())
        })
        .bind()
        .unwrap();
    let server = Running::start(server);
    let mut raw = Raw::connect(&server.addr);
    let bytes: Vec<u8> = (0..N).flat_map(|i| frame(1, &[i])).collect();
    raw.write(&bytes);
    let m = std::sync::Arc::clone(server.handle.metrics());
    wait_until("all requests accepted", || {
        m.messages_received() == u64::from(N)
    });
    server.handle.shutdown();
    for i in 0..N {
        let f = raw
            .read_frame()
            .expect("every accepted request is answered");
        assert_eq!(f.body[..], [i]);
    }
    raw.expect_closed();
    server.stop();
    assert_eq!(m.closed_with("local"), 1);
    assert_eq!(m.active_connections(), 0);
}

#[test]
fn serve_with_shutdown_stops_on_signal() {
    let server = Server::builder(build(config())).bind().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        server.serve_with_shutdown(move || {
            let _ = rx.recv();
        })
    });
    tx.send(()).unwrap();
    t.join().unwrap().unwrap();
}

#[test]
fn client_reconnects_after_server_restart() {
    let echo = |addr: &str| {
        Server::builder(build(config().addr(addr)))
            .fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
            .bind()
            .unwrap()
    };
    let first = Running::start(echo("127.0.0.1:0"));
    let addr = first.addr.clone();
    let policy = ReconnectConfig {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_attempts: None,
        ..Default::default()
    };
    let client = Client::connect_with(
        ClientConfig::builder()
            .addr(addr.clone())
            .reconnect(Some(policy))
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(&client.request(1, "one").unwrap()[..], b"one");
    first.stop();
    wait_until("client notices", || !client.is_connected());
    assert!(matches!(
        client.request(1, "lost"),
        Err(lynn_blocking::ClientError::Disconnected)
    ));
    let second = Running::start(echo(&addr));
    wait_until("client reconnects", || client.is_connected());
    assert_eq!(&client.request(1, "two").unwrap()[..], b"two");
    second.stop();
}
