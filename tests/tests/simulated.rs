//! lynn's shared server and client on the simulated runtime (`lynn_tests::sim`): the
//! conformance scenarios with no sockets and no sleeps, on a virtual clock, each under
//! several seeds (the order of tasks and where reads split the streams), and reproducible
//! from its seed.

use std::future::Future;

use lynn_tests::sim::scenarios::requests::Against;
use lynn_tests::sim::scenarios::{
    admission, backpressure, bad_frames, broadcast, echo, liveness, reconnect, requests, run,
    run_seed, shutdown,
};

/// Runs a request scenario against the shared server in both correlation modes, and
/// against the raw lynn_tcp-like server (v1).
fn on_every_server<F: Future<Output = ()>>(scenario: impl Fn(Against, bool) -> F) {
    let targets = [
        (Against::Lynn, false),
        (Against::Lynn, true),
        (Against::LynnTcp, false),
    ];
    for (against, ids) in targets {
        run(|| scenario(against, ids));
    }
}

#[test]
fn echo_all_sizes() {
    run(|| echo::echo_all_sizes(false));
    run(|| echo::echo_all_sizes(true));
}

#[test]
fn many_small_frames() {
    run(echo::many_small_frames);
}

#[test]
fn bytewise_frames() {
    run(echo::bytewise_frames);
}

#[test]
fn interleaved_partial_frames() {
    run(echo::interleaved_partial_frames);
}

#[test]
fn thousand_connections() {
    run(echo::thousand_connections);
}

#[test]
fn connect_burst() {
    run(echo::connect_burst);
}

#[test]
fn reply_survives_a_trailing_flood() {
    run(bad_frames::reply_survives_a_trailing_flood);
}

#[test]
fn frame_budget_bounds_stalled_frames() {
    run(backpressure::frame_budget_bounds_stalled_frames);
}

#[test]
fn unanswered_then_answered() {
    on_every_server(requests::unanswered_then_answered);
}

#[test]
fn late_reply_is_dropped() {
    on_every_server(requests::late_reply_is_dropped);
}

#[test]
fn pushes_while_requests_pend() {
    on_every_server(requests::pushes_while_requests_pend);
}

#[test]
fn full_push_queue() {
    on_every_server(requests::full_push_queue);
}

#[test]
fn pending_bound_after_timeouts() {
    on_every_server(requests::pending_bound_after_timeouts);
}

#[test]
fn replies_out_of_order() {
    run(requests::replies_out_of_order);
}

#[test]
fn fanout_to_many_clients_and_groups() {
    run(broadcast::fanout_to_many_clients_and_groups);
}

#[test]
fn outbound_queue_full() {
    run(backpressure::outbound_queue_full);
}

#[test]
fn reader_that_never_reads() {
    run(backpressure::reader_that_never_reads);
}

#[test]
fn client_backpressure() {
    run(backpressure::client_backpressure);
}

#[test]
fn idle_peer_evicted() {
    run(liveness::idle_peer_evicted);
}

#[test]
fn traffic_keeps_peer_alive() {
    run(liveness::traffic_keeps_peer_alive);
}

#[test]
fn client_heartbeats_keep_connection() {
    run(liveness::client_heartbeats_keep_connection);
}

/// A client quiet for `release_buffers_after` (5 s) waits instead of spinning (it took its
/// receive buffer before readiness, and the release timer freed it again at once).
#[test]
fn quiet_client_yields() {
    run(liveness::quiet_client_yields);
}

#[test]
fn stalled_partial_frame_times_out() {
    run(liveness::stalled_partial_frame_times_out);
}

#[test]
fn graceful_shutdown_answers_in_flight() {
    run(shutdown::graceful_shutdown_answers_in_flight);
}

#[test]
fn shutdown_timeout_stops_a_stuck_connection() {
    run(shutdown::shutdown_timeout_stops_a_stuck_connection);
}

#[test]
fn max_connections() {
    run(admission::max_connections);
}

#[test]
fn per_ip_limit() {
    run(admission::per_ip_limit);
}

#[test]
fn connection_rate() {
    run(admission::connection_rate);
}

#[test]
fn reconnect_after_restart() {
    run(reconnect::reconnect_after_restart);
}

#[test]
fn offline_queue_delivers_after_reconnect() {
    run(reconnect::offline_queue_delivers_after_reconnect);
}

#[test]
fn bad_frame_closes_only_its_connection() {
    run(bad_frames::bad_frame_closes_only_its_connection);
}

#[test]
fn ignored_and_contained() {
    run(bad_frames::ignored_and_contained);
}

#[test]
fn disconnect_mid_frame() {
    run(bad_frames::disconnect_mid_frame);
}

#[test]
fn custom_marks() {
    run(bad_frames::custom_marks);
}

#[test]
fn event_stream_gets_unrouted() {
    run(bad_frames::event_stream_gets_unrouted);
}

/// The same seed gives the same run (every scheduling choice, every read's size, the
/// virtual time), over scenarios with fanout, timeouts, reconnects and shutdown; another
/// seed splits the streams differently.
#[test]
fn a_run_is_reproducible_from_its_seed() {
    let traces = |seed| {
        [
            run_seed(seed, || echo::echo_all_sizes(true)),
            run_seed(seed, echo::many_small_frames),
            run_seed(seed, broadcast::fanout_to_many_clients_and_groups),
            run_seed(seed, || {
                requests::late_reply_is_dropped(Against::Lynn, false)
            }),
            run_seed(seed, shutdown::graceful_shutdown_answers_in_flight),
        ]
    };
    let first = traces(99);
    assert_eq!(first, traces(99));
    let other = traces(100);
    for (a, b) in first.iter().zip(&other) {
        assert_ne!(a.digest, b.digest, "{a:?} and {b:?}");
    }
    assert_ne!(
        first[0].reads, other[0].reads,
        "the 1 MiB echoes split differently"
    );
}
