//! Client behaviour: request timeout, pushes, closing, dropping, offline errors.

mod common;

use std::time::Duration;

use common::{Running, build, config, wait_until};
use lynn_blocking::{Client, ClientConfig, ClientError, Context, Server};

fn server() -> Running {
    Running::start(
        Server::builder(build(config()))
            .route(1, |ctx: Context| ctx.reply(ctx.body().clone()))
            .route(2, |_: Context| ()) // never answers
            .route(3, |ctx: Context| {
                ctx.server().send(ctx.id(), 8, "push").unwrap();
                ctx.reply("pushed")
            })
            .bind()
            .unwrap(),
    )
}

#[test]
fn request_times_out_and_the_client_carries_on() {
    let server = server();
    let client = Client::connect_with(
        ClientConfig::builder()
            .addr(server.addr.clone())
            .request_timeout(Some(Duration::from_millis(200)))
            // With ids a timeout ends only its own request; the connection stays.
            .correlation_ids(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(matches!(client.request(2, "x"), Err(ClientError::Timeout)));
    assert_eq!(&client.request(1, "next").unwrap()[..], b"next");
    server.stop();
}

#[test]
fn pushes_arrive_through_recv() {
    let server = server();
    let client = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&client.request(3, "").unwrap()[..], b"pushed");
    let m = client.recv_timeout(common::DEADLINE).unwrap();
    assert_eq!((m.method, &m.body[..]), (8, &b"push"[..]));
    server.stop();
}

#[test]
fn dropping_the_last_clone_closes_the_socket() {
    let server = server();
    let client = Client::connect(server.addr.clone()).unwrap();
    let clone = client.clone();
    drop(client);
    assert_eq!(&clone.request(1, "still").unwrap()[..], b"still");
    wait_until("connected", || server.handle.connection_count() == 1);
    drop(clone);
    wait_until("socket closed", || server.handle.connection_count() == 0);
    server.stop();
}

#[test]
fn close_is_final_and_recv_ends() {
    let server = server();
    let client = Client::connect(server.addr.clone()).unwrap();
    client.send(1, "queued").unwrap();
    client.close();
    assert!(!client.is_connected());
    assert!(matches!(
        client.request(1, "x"),
        Err(ClientError::Closed(_))
    ));
    // The echo of "queued" was a push (no request waited for it) or never came; either
    // way `recv` ends instead of blocking.
    while client.recv().is_some() {}
    server.stop();
}

#[test]
fn without_reconnect_a_closed_server_ends_the_client() {
    let server = server();
    let client = Client::connect_with(
        ClientConfig::builder()
            .addr(server.addr.clone())
            .reconnect(None)
            .build()
            .unwrap(),
    )
    .unwrap();
    server.stop();
    assert!(client.recv().is_none());
    assert!(!client.is_connected());
    assert!(matches!(client.send(1, "x"), Err(ClientError::Closed(_))));
}

#[test]
fn connect_failure_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    assert!(matches!(
        Client::connect(addr),
        Err(ClientError::Connect(_))
    ));
}

#[test]
fn offline_sends_fail_fast_by_default() {
    let server = server();
    let client = Client::connect_with(
        ClientConfig::builder()
            .addr(server.addr.clone())
            .reconnect_interval(Duration::from_secs(20))
            .build()
            .unwrap(),
    )
    .unwrap();
    server.stop();
    wait_until("disconnected", || !client.is_connected());
    assert!(matches!(
        client.send(1, "x"),
        Err(ClientError::Disconnected)
    ));
}

#[test]
fn offline_queue_is_bounded_and_sent_after_reconnect() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static GOT: AtomicUsize = AtomicUsize::new(0);
    let counting = |addr: &str| {
        Server::builder(build(config().addr(addr)))
            .route(7, |_: Context| {
                GOT.fetch_add(1, Ordering::SeqCst);
            })
            .bind()
            .unwrap()
    };
    let first = Running::start(counting("127.0.0.1:0"));
    let addr = first.addr.clone();
    let client = Client::connect_with(
        ClientConfig::builder()
            .addr(addr.clone())
            .offline_queue(2)
            .reconnect_interval(Duration::from_millis(20))
            .reconnect_attempts(None)
            .build()
            .unwrap(),
    )
    .unwrap();
    first.stop();
    wait_until("disconnected", || !client.is_connected());
    client.send(7, "a").unwrap();
    client.send(7, "b").unwrap();
    assert!(matches!(
        client.send(7, "c"),
        Err(ClientError::Disconnected)
    ));
    let second = Running::start(counting(&addr));
    wait_until("offline messages delivered", || {
        GOT.load(Ordering::SeqCst) == 2
    });
    second.stop();
}
