//! The macros that turn the scenario list into `#[test]`s.

/// Instantiates every server scenario for one runtime: `conformance!(tokio, TokioRuntime)`
/// gives `mod tokio { #[test] fn echo_…() … }`.
///
/// For a runtime over TLS, `conformance!(tokio_tls, Tls<TokioRuntime>, tls)` marks the
/// few scenarios that only hold over plain TCP `#[ignore]`, each with its reason.
#[macro_export]
macro_rules! conformance {
    (@plain_only [tls] $test:ident, $reason:literal, $call:expr) => {
        #[test]
        #[ignore = $reason]
        fn $test() {
            $call;
        }
    };
    (@plain_only [] $test:ident, $reason:literal, $call:expr) => {
        #[test]
        fn $test() {
            $call;
        }
    };
    ($name:ident, $rt:ty $(, $tls:ident)?) => {
        mod $name {
            use $crate::scenarios::*;

            #[test]
            fn sample_bytes_echoed() {
                framing::sample_bytes_echoed::<$rt>();
            }
            #[test]
            fn coalesced_frames() {
                framing::coalesced_frames::<$rt>();
            }
            #[test]
            fn bytewise_frames() {
                framing::bytewise_frames::<$rt>();
            }
            #[test]
            fn interleaved_partial_frames() {
                framing::interleaved_partial_frames::<$rt>();
            }
            #[test]
            fn thousand_connections() {
                load::thousand_connections::<$rt>();
            }
            #[test]
            fn connect_burst() {
                load::connect_burst::<$rt>();
            }
            #[test]
            fn invalid_header() {
                bad_frames::invalid_header::<$rt>();
            }
            #[test]
            fn invalid_tail() {
                bad_frames::invalid_tail::<$rt>();
            }
            #[test]
            fn length_below_minimum() {
                bad_frames::length_below_minimum::<$rt>();
            }
            #[test]
            fn length_above_limit() {
                bad_frames::length_above_limit::<$rt>();
            }
            $crate::conformance!(@plain_only [$($tls)?] reply_survives_a_trailing_flood,
                "plain TCP only: it writes and reads one socket from two threads, which one \
                 blocking rustls session cannot; the linger it checks is the socket's",
                bad_frames::reply_survives_a_trailing_flood::<$rt>());
            #[test]
            fn unknown_kind_ignored() {
                bad_frames::unknown_kind_ignored::<$rt>();
            }
            #[test]
            fn unknown_method_ignored() {
                bad_frames::unknown_method_ignored::<$rt>();
            }
            #[test]
            fn unknown_method_closes() {
                bad_frames::unknown_method_closes::<$rt>();
            }
            #[test]
            fn event_stream_gets_unrouted() {
                events::event_stream_gets_unrouted::<$rt>();
            }
            #[test]
            fn handler_panic_contained() {
                bad_frames::handler_panic_contained::<$rt>();
            }
            #[test]
            fn idle_peer_evicted() {
                liveness::idle_peer_evicted::<$rt>();
            }
            #[test]
            fn traffic_keeps_peer_alive() {
                liveness::traffic_keeps_peer_alive::<$rt>();
            }
            #[test]
            fn stalled_partial_frame_times_out() {
                liveness::stalled_partial_frame_times_out::<$rt>();
            }
            #[test]
            fn max_connections() {
                limits::max_connections::<$rt>();
            }
            #[test]
            fn frame_budget_bounds_stalled_frames() {
                limits::frame_budget_bounds_stalled_frames::<$rt>();
            }
            #[test]
            fn per_ip_limit() {
                limits::per_ip_limit::<$rt>();
            }
            #[test]
            fn connection_rate_limit() {
                limits::connection_rate_limit::<$rt>();
            }
            #[test]
            fn reader_that_never_reads() {
                slow_peer::reader_that_never_reads::<$rt>();
            }
            #[test]
            fn pushes_refused_at_the_outbound_bound() {
                slow_peer::pushes_refused_at_the_outbound_bound::<$rt>();
            }
            #[test]
            fn disconnect_mid_frame() {
                slow_peer::disconnect_mid_frame::<$rt>();
            }
            #[test]
            fn client_backpressure() {
                backpressure::client_backpressure::<$rt>();
            }
            #[test]
            fn graceful_shutdown_answers_in_flight() {
                shutdown::graceful_shutdown_answers_in_flight::<$rt>();
            }
            #[test]
            fn sync_echo_in_order() {
                sync_routes::sync_echo_in_order::<$rt>();
            }
            #[test]
            fn sync_panic_contained() {
                sync_routes::sync_panic_contained::<$rt>();
            }
            #[test]
            fn sync_broadcast() {
                sync_routes::sync_broadcast::<$rt>();
            }
            #[test]
            fn metrics_scraped_after_traffic() {
                metrics::scraped_after_traffic::<$rt>();
            }
        }
    };
}

/// Instantiates every client scenario for every client × server pair of the runtimes
/// given: `cross_runtime!(tokio => TokioRuntime, smol => SmolRuntime)` gives
/// `mod tokio { mod tokio {…} mod smol {…} } mod smol {…}`, named `client::server::scenario`.
#[macro_export]
macro_rules! cross_runtime {
    ($($name:ident => $rt:ty),+ $(,)?) => {
        $crate::cross_runtime!(@clients [$($name => $rt),+] $($name => $rt),+);
    };
    (@clients $servers:tt $($client:ident => $crt:ty),+) => {
        $( $crate::cross_runtime!(@row $client => $crt, $servers); )+
    };
    (@row $client:ident => $crt:ty, [$($server:ident => $srt:ty),+]) => {
        mod $client {
            $( $crate::cross_runtime!(@pair $server, $crt, $srt); )+
        }
    };
    (@pair $server:ident, $crt:ty, $srt:ty) => {
        mod $server {
            use $crate::scenarios::*;

            #[test]
            fn echo_all_sizes() {
                echo::echo_all_sizes::<$crt, $srt>();
            }
            #[test]
            fn broadcast_all_and_group() {
                broadcast::broadcast_all_and_group::<$crt, $srt>();
            }
            #[test]
            fn client_heartbeats_keep_connection() {
                liveness::client_heartbeats_keep_connection::<$crt, $srt>();
            }
            #[test]
            fn reconnect_after_restart() {
                reconnect::reconnect_after_restart::<$crt, $srt>();
            }
            #[test]
            fn offline_queue_delivers_after_reconnect() {
                reconnect::offline_queue_delivers_after_reconnect::<$crt, $srt>();
            }
            #[test]
            fn custom_marks() {
                marks::custom_marks::<$crt, $srt>();
            }
            #[test]
            fn unanswered_then_answered() {
                requests::on_lynn::<$crt, $srt>(requests::unanswered_then_answered::<$crt>);
            }
            #[test]
            fn late_reply_is_dropped() {
                requests::on_lynn::<$crt, $srt>(requests::late_reply_is_dropped::<$crt>);
            }
            #[test]
            fn pushes_while_requests_pend() {
                requests::on_lynn::<$crt, $srt>(requests::pushes_while_requests_pend::<$crt>);
            }
            #[test]
            fn full_push_queue() {
                requests::on_lynn::<$crt, $srt>(requests::full_push_queue::<$crt>);
            }
            #[test]
            fn pending_bound_after_timeouts() {
                requests::on_lynn::<$crt, $srt>(requests::pending_bound_after_timeouts::<$crt>);
            }
        }
    };
}
