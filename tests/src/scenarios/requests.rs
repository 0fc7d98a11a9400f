//! A client's requests when replies do not come, come late, come out of order or share the
//! stream with pushes: each scenario takes the server's address and the correlation mode, so
//! it runs against every lynn server (both modes) and against the raw lynn_tcp-like server
//! of [`crate::raw_server`] (v1).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::{ClientConfig, ClientError, PushFull};

use crate::app::{App, DELAY, ECHO, PUSH, SILENT, TO_ALL, count, delay_body};
use crate::raw_server::{Answer, RawServer};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{client_config, server_config, wait_until};

/// Every request's reply deadline here.
const TIMEOUT: Duration = Duration::from_millis(200);

/// Short timeouts; reconnects at once, calls wait offline meanwhile.
fn config(addr: SocketAddr, ids: bool) -> lynn_proto::ClientConfigBuilder {
    client_config(addr)
        .request_timeout(Some(TIMEOUT))
        .reconnect_interval(Duration::from_millis(20))
        .offline_queue(16)
        .correlation_ids(ids)
}

fn connect<C: Runtime>(config: ClientConfig) -> C::Client {
    C::connect(config).expect("client connects")
}

/// Runs `scenario` against a lynn server of runtime `S` in both modes.
pub fn on_lynn<C: Runtime, S: Runtime>(scenario: fn(SocketAddr, bool, &str)) {
    let server =
        S::start_server(server_config().build().unwrap(), App::default()).expect("server starts");
    for ids in [false, true] {
        scenario(server.addr(), ids, S::name());
    }
    server.stop();
}

/// Runs `scenario` in v1 mode against the raw lynn_tcp-like server.
pub fn on_raw(scenario: fn(SocketAddr, bool, &str)) {
    let server = RawServer::start(Answer::LynnTcp).expect("raw server starts");
    scenario(server.addr(), false, "raw");
}

/// A request the server never answers times out alone; the next ones are answered.
pub fn unanswered_then_answered<C: Runtime>(addr: SocketAddr, ids: bool, server: &str) {
    let client = connect::<C>(config(addr, ids).build().unwrap());
    match client.request(SILENT, "a".into()) {
        Err(ClientError::Timeout) => {}
        other => panic!("{server}, ids {ids}: unanswered request gave {other:?}"),
    }
    for body in ["b", "c", "d"] {
        let reply = client.request(ECHO, body.into());
        assert_eq!(reply.unwrap(), body, "{server}, ids {ids}");
    }
    client.close();
}

/// A reply that comes after its request timed out is never handed to a later request:
/// dropped and counted with ids, gone with the replaced connection without.
pub fn late_reply_is_dropped<C: Runtime>(addr: SocketAddr, ids: bool, server: &str) {
    let client = connect::<C>(config(addr, ids).build().unwrap());
    match client.request(DELAY, delay_body(TIMEOUT * 2, b"late")) {
        Err(ClientError::Timeout) => {}
        other => panic!("{server}, ids {ids}: slow request gave {other:?}"),
    }
    if ids {
        wait_until("the late reply is counted", || {
            client.metrics().messages_dropped() == 1
        });
    }
    let reply = client.request(ECHO, "next".into());
    assert_eq!(reply.unwrap(), "next", "{server}, ids {ids}");
    client.close();
}

/// Pushes that arrive while requests are pending go to `recv`, not to a request.
pub fn pushes_while_requests_pend<C: Runtime>(addr: SocketAddr, ids: bool, server: &str) {
    let client = connect::<C>(config(addr, ids).build().unwrap());
    std::thread::scope(|s| {
        let slow = s.spawn(|| client.request(DELAY, delay_body(TIMEOUT / 4, b"slow")));
        let n = client.request(TO_ALL, "pushed".into()).expect("broadcast");
        assert_eq!(count(&n), 1, "{server}, ids {ids}");
        assert_eq!(slow.join().unwrap().unwrap(), "slow", "{server}, ids {ids}");
    });
    let push = client
        .recv_timeout(Duration::from_secs(5))
        .expect("the push");
    assert_eq!((push.method, &push.body[..]), (PUSH, &b"pushed"[..]));
    client.close();
}

/// With 4 pushes unread, each `PushFull` policy: the dropping ones keep replies flowing
/// and count what they drop; `Wait` stops reading, and the request it holds up fails with
/// an error that names the unread pushes.
pub fn full_push_queue<C: Runtime>(addr: SocketAddr, ids: bool, server: &str) {
    for policy in [PushFull::DropOldest, PushFull::DropNewest, PushFull::Wait] {
        let what = format!("{server}, ids {ids}, {policy:?}");
        let cfg = config(addr, ids).incoming_queue(4).push_full(policy);
        let client = connect::<C>(cfg.build().unwrap());
        let mut failed = None;
        for i in 0..20u8 {
            match client.request(TO_ALL, Bytes::from(vec![i])) {
                Ok(_) => {}
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        if policy != PushFull::Wait {
            assert!(failed.is_none(), "{what}: {failed:?}");
            // A push may trail its request's reply: wait until all 20 are in.
            wait_until("16 pushes dropped", || {
                client.metrics().messages_dropped() == 16
            });
        }
        let received: Vec<u8> = std::iter::from_fn(|| client.recv_timeout(TIMEOUT))
            .map(|m| m.body[0])
            .collect();
        match policy {
            PushFull::DropOldest => assert_eq!(received, [16, 17, 18, 19], "{what}"),
            PushFull::DropNewest => assert_eq!(received, [0, 1, 2, 3], "{what}"),
            _ => assert_eq!(received[..4], [0, 1, 2, 3], "{what}"),
        }
        if policy == PushFull::Wait {
            match failed {
                Some((4 | 5, ClientError::PushesUnread { unread: 4 })) => {}
                other => panic!("{what}: expected PushesUnread at the 5th or 6th, {other:?}"),
            }
        }
        let reply = client.request(ECHO, "after".into());
        assert_eq!(reply.unwrap(), "after", "{what}");
        client.close();
    }
}

/// Requests that time out leave nothing behind: with `max_pending_requests(2)`, round after
/// round of unanswered pairs never meets `TooManyPending`.
pub fn pending_bound_after_timeouts<C: Runtime>(addr: SocketAddr, ids: bool, server: &str) {
    let cfg = config(addr, ids).max_pending_requests(2);
    let client = connect::<C>(cfg.build().unwrap());
    for round in 0..5 {
        std::thread::scope(|s| {
            let calls: Vec<_> = (0..2)
                .map(|_| s.spawn(|| client.request(SILENT, "void".into())))
                .collect();
            for call in calls {
                match call.join().unwrap() {
                    Err(ClientError::Timeout | ClientError::CorrelationLost) => {}
                    other => panic!("{server}, ids {ids}, round {round}: {other:?}"),
                }
            }
        });
    }
    let reply = client.request(ECHO, "free".into());
    assert_eq!(reply.unwrap(), "free", "{server}, ids {ids}");
    client.close();
}

/// With ids, replies that come in any order find their own requests (the raw server
/// answers each batch of three backwards).
pub fn replies_out_of_order<C: Runtime>() {
    let server = RawServer::start(Answer::Reversed(3)).expect("raw server starts");
    let client = connect::<C>(config(server.addr(), true).build().unwrap());
    for round in 0..3u8 {
        std::thread::scope(|s| {
            let calls: Vec<_> = (0..3u8)
                .map(|i| {
                    let body = Bytes::from(vec![round, i]);
                    let client = &client;
                    s.spawn(move || (body.clone(), client.request(ECHO, body)))
                })
                .collect();
            for call in calls {
                let (sent, reply) = call.join().unwrap();
                assert_eq!(reply.expect("reply"), sent, "round {round}");
            }
        });
    }
    client.close();
}
