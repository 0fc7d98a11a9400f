//! The shared client on the simulated runtime (`lynn_tests::sim`): request scenarios with
//! no sockets and no sleeps, on a virtual clock, each under several seeds (the order of
//! tasks and where reads split frames), and reproducible from its seed.

use std::time::Duration;

use bytes::Bytes;
use futures_lite::future::zip;
use lynn_proto::{ClientConfig, ClientError, PushFull};
use lynn_tests::app::{DELAY, ECHO, PUSH, SILENT, TO_ALL, delay_body};
use lynn_tests::sim::{Sim, SimRuntime, serve};

type Client = lynn_service::Client<SimRuntime>;

const ADDR: &str = "sim:9177";
const TIMEOUT: Duration = Duration::from_secs(1);
const SEEDS: [u64; 4] = [1, 7, 42, 2026];

fn config(ids: bool) -> lynn_proto::ClientConfigBuilder {
    ClientConfig::builder()
        .addr(ADDR)
        .request_timeout(Some(TIMEOUT))
        .reconnect_interval(Duration::from_millis(20))
        .offline_queue(16)
        .correlation_ids(ids)
}

/// Runs `scenario` for every seed and both correlation modes, each in a world of its own.
fn each(scenario: impl Fn(&Sim, bool)) {
    for seed in SEEDS {
        for ids in [false, true] {
            let sim = Sim::new(seed);
            let _server = sim.block_on(async { serve(ADDR) });
            scenario(&sim, ids);
        }
    }
}

#[test]
fn unanswered_then_answered_in_virtual_time() {
    each(|sim, ids| {
        let client: Client = sim
            .block_on(Client::connect_with(config(ids).build().unwrap()))
            .unwrap();
        let before = sim.elapsed();
        let r = sim.block_on(client.request(SILENT, "a"));
        assert!(matches!(r, Err(ClientError::Timeout)), "ids {ids}: {r:?}");
        assert!(
            sim.elapsed() - before >= TIMEOUT,
            "the clock is virtual, not skipped"
        );
        for body in ["b", "c", "d"] {
            let reply = sim.block_on(client.request(ECHO, body));
            assert_eq!(reply.unwrap(), body, "ids {ids}");
        }
        sim.block_on(client.close());
    });
}

#[test]
fn a_late_reply_never_reaches_another_request() {
    each(|sim, ids| {
        let client: Client = sim
            .block_on(Client::connect_with(config(ids).build().unwrap()))
            .unwrap();
        let late = delay_body(TIMEOUT + Duration::from_millis(100), b"late");
        let r = sim.block_on(client.request(DELAY, late));
        assert!(matches!(r, Err(ClientError::Timeout)), "ids {ids}: {r:?}");
        // Answered after the late reply (a lynn server answers in order): with ids that
        // reply arrives first and is dropped; without, it went with the old connection.
        let reply = sim.block_on(client.request(ECHO, "next"));
        assert_eq!(reply.unwrap(), "next", "ids {ids}");
        if ids {
            assert_eq!(client.metrics().messages_dropped(), 1);
        }
        sim.block_on(client.close());
    });
}

#[test]
fn pushes_and_replies_while_requests_pend() {
    each(|sim, ids| {
        let client: Client = sim
            .block_on(Client::connect_with(config(ids).build().unwrap()))
            .unwrap();
        let (slow, n) = sim.block_on(zip(
            client.request(DELAY, delay_body(TIMEOUT / 4, b"slow")),
            client.request(TO_ALL, "pushed"),
        ));
        assert_eq!(slow.unwrap(), "slow");
        assert_eq!(n.unwrap().len(), 8);
        let push = sim.block_on(client.recv()).unwrap();
        assert_eq!((push.method, &push.body[..]), (PUSH, &b"pushed"[..]));
        sim.block_on(client.close());
    });
}

#[test]
fn a_full_push_queue_under_each_policy() {
    each(|sim, ids| {
        for policy in [PushFull::DropOldest, PushFull::DropNewest, PushFull::Wait] {
            let cfg = config(ids).incoming_queue(4).push_full(policy);
            let client: Client = sim
                .block_on(Client::connect_with(cfg.build().unwrap()))
                .unwrap();
            let mut failed = None;
            for i in 0..20u8 {
                if let Err(e) = sim.block_on(client.request(TO_ALL, Bytes::from(vec![i]))) {
                    failed = Some((i, e));
                    break;
                }
            }
            let got: Vec<u8> = (0..4)
                .map(|_| sim.block_on(client.recv()).unwrap().body[0])
                .collect();
            match policy {
                PushFull::DropOldest => assert_eq!(got, [16, 17, 18, 19]),
                PushFull::DropNewest => assert_eq!(got, [0, 1, 2, 3]),
                _ => {
                    assert_eq!(got, [0, 1, 2, 3]);
                    assert!(
                        matches!(failed, Some((4, ClientError::PushesUnread { unread: 4 }))),
                        "ids {ids}: {failed:?}"
                    );
                }
            }
            if policy != PushFull::Wait {
                assert!(failed.is_none(), "{policy:?}: {failed:?}");
                assert_eq!(client.metrics().messages_dropped(), 16);
            }
            let reply = sim.block_on(client.request(ECHO, "after"));
            assert_eq!(reply.unwrap(), "after", "ids {ids}, {policy:?}");
            sim.block_on(client.close());
        }
    });
}

#[test]
fn timeouts_leave_the_pending_bound_free() {
    each(|sim, ids| {
        let cfg = config(ids).max_pending_requests(2);
        let client: Client = sim
            .block_on(Client::connect_with(cfg.build().unwrap()))
            .unwrap();
        for round in 0..10 {
            let (a, b) = sim.block_on(zip(
                client.request(SILENT, "void"),
                client.request(SILENT, "void"),
            ));
            for r in [a, b] {
                assert!(
                    matches!(r, Err(ClientError::Timeout | ClientError::CorrelationLost)),
                    "ids {ids}, round {round}: {r:?}"
                );
            }
        }
        let reply = sim.block_on(client.request(ECHO, "free"));
        assert_eq!(reply.unwrap(), "free");
        sim.block_on(client.close());
    });
}

/// The same seed gives the same run: the same replies at the same virtual times.
#[test]
fn a_run_is_reproducible_from_its_seed() {
    let run = |seed| {
        let sim = Sim::new(seed);
        let _server = sim.block_on(async { serve(ADDR) });
        let client: Client = sim
            .block_on(Client::connect_with(config(false).build().unwrap()))
            .unwrap();
        let mut trace = Vec::new();
        for i in 0..5u8 {
            let body = delay_body(Duration::from_millis(u64::from(i) * 300), &[i]);
            let r = sim.block_on(client.request(DELAY, body));
            trace.push((sim.elapsed(), r.map_err(|e| e.to_string())));
        }
        trace
    };
    assert_eq!(run(99), run(99));
}
