//! The shared client's requests when replies do not come, come late, come out of order or
//! share the stream with pushes (`crate::scenarios::requests`): against the shared server
//! in both correlation modes, and against the raw lynn_tcp-like server (v1). The request
//! timeout is 1 s of virtual time.

use std::time::Duration;

use futures_lite::future::zip;
use lynn_proto::reconnect::ReconnectConfig;
use lynn_proto::{ClientConfigBuilder, ClientError, PushFull};

use super::{Client, client_config, connect, recv_within, server_config, settle, start};
use crate::app::{DELAY, ECHO, PUSH, SILENT, TO_ALL, count, delay_body};
use crate::sim::raw_server::{Answer, RawSimServer};
use crate::sim::{SimServer, elapsed};

/// Every request's reply deadline here.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// The server a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Against {
    /// The shared server (`lynn_service::server::Server<(), SimRuntime>`).
    Lynn,
    /// The raw lynn_tcp-like server (v1 only: no correlation ids).
    LynnTcp,
}

/// A server of either kind.
enum Target {
    Lynn(SimServer),
    Raw(RawSimServer),
}

impl Target {
    async fn start(against: Against) -> Target {
        match against {
            Against::Lynn => Target::Lynn(start(server_config()).await),
            Against::LynnTcp => Target::Raw(RawSimServer::start(Answer::LynnTcp).await.unwrap()),
        }
    }

    fn addr(&self) -> &str {
        match self {
            Target::Lynn(s) => s.addr(),
            Target::Raw(s) => s.addr(),
        }
    }

    async fn stop(self) {
        if let Target::Lynn(s) = self {
            s.stop().await;
        }
    }
}

/// Reconnects at once without jitter (the jitter's seed comes from the wall clock, which
/// would make runs differ), calls wait offline meanwhile.
fn config(server: &Target, ids: bool) -> ClientConfigBuilder {
    let reconnect = ReconnectConfig {
        initial_delay: Duration::from_millis(20),
        jitter_percent: 0,
        max_attempts: None,
        ..ReconnectConfig::default()
    };
    client_config(server.addr())
        .request_timeout(Some(TIMEOUT))
        .reconnect(Some(reconnect))
        .offline_queue(16)
        .correlation_ids(ids)
}

/// A request the server never answers ([`SILENT`]) times out after its timeout of virtual
/// time; the next ones are answered.
pub async fn unanswered_then_answered(against: Against, ids: bool) {
    let server = Target::start(against).await;
    let client = connect(config(&server, ids)).await;
    let before = elapsed();
    let r = client.request(SILENT, "a").await;
    assert!(
        matches!(r, Err(ClientError::Timeout)),
        "{against:?}, ids {ids}: {r:?}"
    );
    let waited = elapsed() - before;
    assert!(
        (TIMEOUT..TIMEOUT * 2).contains(&waited),
        "timed out after {waited:?}"
    );
    for body in ["b", "c", "d"] {
        assert_eq!(
            client.request(ECHO, body).await.unwrap(),
            body,
            "{against:?}, ids {ids}"
        );
    }
    client.close().await;
    server.stop().await;
}

/// A reply that comes after its request timed out is never handed to a later request:
/// dropped and counted with ids, gone with the replaced connection without.
pub async fn late_reply_is_dropped(against: Against, ids: bool) {
    let server = Target::start(against).await;
    let client = connect(config(&server, ids)).await;
    let late = delay_body(TIMEOUT * 2, b"late");
    let r = client.request(DELAY, late).await;
    assert!(
        matches!(r, Err(ClientError::Timeout)),
        "{against:?}, ids {ids}: {r:?}"
    );
    if ids {
        settle("the late reply is counted", || {
            client.metrics().messages_dropped() == 1
        })
        .await;
    }
    assert_eq!(
        client.request(ECHO, "next").await.unwrap(),
        "next",
        "{against:?}, ids {ids}"
    );
    client.close().await;
    server.stop().await;
}

/// Pushes that arrive while a request is pending go to `recv`, not to the request.
pub async fn pushes_while_requests_pend(against: Against, ids: bool) {
    let server = Target::start(against).await;
    let client = connect(config(&server, ids)).await;
    let (slow, n) = zip(
        client.request(DELAY, delay_body(TIMEOUT / 4, b"slow")),
        client.request(TO_ALL, "pushed"),
    )
    .await;
    assert_eq!(slow.unwrap(), "slow", "{against:?}, ids {ids}");
    assert_eq!(count(&n.unwrap()), 1, "{against:?}, ids {ids}");
    let push = recv_within(&client, TIMEOUT).await.expect("the push");
    assert_eq!((push.method, &push.body[..]), (PUSH, &b"pushed"[..]));
    client.close().await;
    server.stop().await;
}

/// With 4 pushes unread, each `PushFull` policy: the dropping ones keep replies flowing
/// and count what they drop; `Wait` stops reading, and the request it holds up fails with
/// an error that names the unread pushes.
pub async fn full_push_queue(against: Against, ids: bool) {
    let server = Target::start(against).await;
    for policy in [PushFull::DropOldest, PushFull::DropNewest, PushFull::Wait] {
        let what = format!("{against:?}, ids {ids}, {policy:?}");
        let client = connect(config(&server, ids).incoming_queue(4).push_full(policy)).await;
        let mut failed = None;
        for i in 0..20u8 {
            if let Err(e) = client.request(TO_ALL, vec![i]).await {
                failed = Some((i, e));
                break;
            }
        }
        if policy != PushFull::Wait {
            assert!(failed.is_none(), "{what}: {failed:?}");
            settle("16 pushes dropped", || {
                client.metrics().messages_dropped() == 16
            })
            .await;
        }
        let mut received = Vec::new();
        while let Some(m) = recv_within(&client, TIMEOUT).await {
            received.push(m.body[0]);
        }
        match policy {
            PushFull::DropOldest => assert_eq!(received, [16, 17, 18, 19], "{what}"),
            PushFull::DropNewest => assert_eq!(received, [0, 1, 2, 3], "{what}"),
            _ => assert_eq!(received[..4], [0, 1, 2, 3], "{what}"),
        }
        if policy == PushFull::Wait {
            assert!(
                matches!(
                    failed,
                    Some((4 | 5, ClientError::PushesUnread { unread: 4 }))
                ),
                "{what}: expected PushesUnread at the 5th or 6th, {failed:?}"
            );
        }
        assert_eq!(
            client.request(ECHO, "after").await.unwrap(),
            "after",
            "{what}"
        );
        client.close().await;
    }
    server.stop().await;
}

/// Requests that time out leave nothing behind: with `max_pending_requests(2)`, round after
/// round of unanswered pairs never meets `TooManyPending`.
pub async fn pending_bound_after_timeouts(against: Against, ids: bool) {
    let server = Target::start(against).await;
    let client: Client = connect(config(&server, ids).max_pending_requests(2)).await;
    for round in 0..10 {
        let (a, b) = zip(
            client.request(SILENT, "void"),
            client.request(SILENT, "void"),
        )
        .await;
        for r in [a, b] {
            assert!(
                matches!(r, Err(ClientError::Timeout | ClientError::CorrelationLost)),
                "{against:?}, ids {ids}, round {round}: {r:?}"
            );
        }
    }
    assert_eq!(
        client.request(ECHO, "free").await.unwrap(),
        "free",
        "{against:?}, ids {ids}"
    );
    client.close().await;
    server.stop().await;
}

/// With ids, replies that come in any order find their own requests (the raw server
/// answers each batch of three backwards).
pub async fn replies_out_of_order() {
    let server = RawSimServer::start(Answer::Reversed(3)).await.unwrap();
    let client = connect(client_config(server.addr()).correlation_ids(true)).await;
    for round in 0..3u8 {
        let call = |i: u8| client.request(ECHO, vec![round, i]);
        let ((a, b), c) = zip(zip(call(0), call(1)), call(2)).await;
        for (i, reply) in [a, b, c].into_iter().enumerate() {
            assert_eq!(reply.unwrap(), [round, i as u8][..], "round {round}");
        }
    }
    client.close().await;
}
