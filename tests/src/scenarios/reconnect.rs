//! A client reconnects after its server restarts on the same port.

use std::time::Duration;

use lynn_proto::reconnect::ReconnectConfig;

use crate::app::{self, App, DELAY, ECHO};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{DEADLINE, client_config, server_config, wait_for, wait_until};

fn fast_policy() -> ReconnectConfig {
    ReconnectConfig {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_attempts: None,
        ..ReconnectConfig::default()
    }
}

/// The server stops; the client notices (`is_connected` turns false); a new server binds
/// the same port; the client reconnects by itself and its requests work again.
pub fn reconnect_after_restart<C: Runtime, S: Runtime>() {
    let server = S::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let addr = server.addr();
    let config = client_config(addr)
        .reconnect(Some(fast_policy()))
        .request_timeout(Some(Duration::from_secs(5)))
        .build()
        .unwrap();
    let client = C::connect(config).expect("client connects");
    assert_eq!(&client.request(ECHO, "one".into()).unwrap()[..], b"one");
    server.stop();
    wait_until("the client to notice", || !client.is_connected());
    let config = server_config().addr(addr.to_string()).build().unwrap();
    let server = wait_for("the port to be free again", || {
        S::start_server(config.clone(), App::default()).ok()
    });
    let reply = wait_for("a request after reconnecting", || {
        client.request(ECHO, "two".into()).ok()
    });
    assert_eq!(&reply[..], b"two");
    assert!(client.is_connected());
    client.close();
    server.stop();
}

/// With an offline queue, a `send` and a `request` made while the server is down are
/// accepted, kept, and delivered once the client has reconnected: the request gets its
/// reply, and the send's reply arrives as a message.
pub fn offline_queue_delivers_after_reconnect<C: Runtime, S: Runtime>() {
    let server = S::start_server(server_config().build().unwrap(), App::default()).expect("server");
    let addr = server.addr();
    let config = client_config(addr)
        .reconnect(Some(fast_policy()))
        .offline_queue(8)
        .build()
        .unwrap();
    let client = C::connect(config).expect("client connects");
    assert_eq!(&client.request(ECHO, "one".into()).unwrap()[..], b"one");
    server.stop();
    wait_until("the client to notice", || !client.is_connected());
    let queued_send = app::delay_body(Duration::ZERO, b"queued send");
    client
        .send(DELAY, queued_send)
        .expect("send is queued while offline");
    std::thread::scope(|s| {
        let request = s.spawn(|| client.request(ECHO, "queued request".into()));
        let config = server_config().addr(addr.to_string()).build().unwrap();
        let server = wait_for("the port to be free again", || {
            S::start_server(config.clone(), App::default()).ok()
        });
        let reply = request
            .join()
            .unwrap()
            .expect("the offline request is answered");
        assert_eq!(&reply[..], b"queued request");
        let msg = client
            .recv_timeout(DEADLINE)
            .expect("the queued send's reply");
        assert_eq!((msg.method, &msg.body[..]), (DELAY, &b"queued send"[..]));
        client.close();
        server.stop();
    });
}
