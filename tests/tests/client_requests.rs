//! Every adapter's client against the raw lynn_tcp-like server (v1, replies in order) and
//! against a raw server that answers tagged requests backwards.

macro_rules! against_raw {
    ($($name:ident => $rt:ty),+ $(,)?) => {$(
        mod $name {
            use lynn_tests::scenarios::requests::*;

            #[test]
            fn unanswered_then_answered_v1() {
                on_raw(unanswered_then_answered::<$rt>);
            }
            #[test]
            fn late_reply_is_dropped_v1() {
                on_raw(late_reply_is_dropped::<$rt>);
            }
            #[test]
            fn pushes_while_requests_pend_v1() {
                on_raw(pushes_while_requests_pend::<$rt>);
            }
            #[test]
            fn full_push_queue_v1() {
                on_raw(full_push_queue::<$rt>);
            }
            #[test]
            fn pending_bound_after_timeouts_v1() {
                on_raw(pending_bound_after_timeouts::<$rt>);
            }
            #[test]
            fn replies_out_of_order_with_ids() {
                replies_out_of_order::<$rt>();
            }
        }
    )+};
}

against_raw!(
    tokio => lynn_tests::runtimes::TokioRuntime,
    smol => lynn_tests::runtimes::SmolRuntime,
    blocking => lynn_tests::runtimes::BlockingRuntime,
);
