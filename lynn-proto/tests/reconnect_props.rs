//! Reconnect policy properties, with simulated time only.

use std::time::{Duration, Instant};

use lynn_proto::reconnect::{Reconnect, ReconnectConfig, Step};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Poll,
    Connected,
    ConnectFailed,
    Disconnected,
    /// handle_timeout at the deadline shifted by this many ms (negative: early).
    TimeoutNear(i64),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..5_000).prop_map(Op::Advance),
        3 => Just(Op::Poll),
        2 => Just(Op::Connected),
        3 => Just(Op::ConnectFailed),
        2 => Just(Op::Disconnected),
        3 => (-500i64..500).prop_map(Op::TimeoutNear),
        1 => Just(Op::Reset),
    ]
}

fn config() -> impl Strategy<Value = ReconnectConfig> {
    (
        1u64..500,
        0u64..20_000,
        1u32..4,
        0u8..=100,
        proptest::option::of(1u32..6),
        0u64..3_000,
        any::<u64>(),
    )
        .prop_map(
            |(initial, extra, multiplier, jitter, max_attempts, stable, seed)| ReconnectConfig {
                initial_delay: Duration::from_millis(initial),
                max_delay: Duration::from_millis(initial + extra),
                multiplier,
                jitter_percent: jitter,
                max_attempts,
                stable_after: Duration::from_millis(stable),
                seed,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// poll_timeout / handle_timeout / poll agree exactly, and every wait stays within the
    /// back-off bounds.
    #[test]
    fn timers_are_honest(config in config(), ops in proptest::collection::vec(op(), 0..120)) {
        let base = Instant::now();
        let mut now = base;
        let mut p = Reconnect::new(config.clone()).unwrap();
        for op in ops {
            let before = p.poll_timeout();
            match op {
                Op::Advance(ms) => now += Duration::from_millis(ms),
                Op::Poll => {
                    let step = p.poll(now);
                    match step {
                        Step::Wait(deadline) => {
                            prop_assert!(deadline > now);
                            prop_assert_eq!(p.poll_timeout(), Some(deadline));
                        }
                        Step::Connect => {
                            if let Some(deadline) = before {
                                prop_assert!(now >= deadline);
                            }
                            prop_assert_eq!(p.poll(now), Step::Connecting);
                        }
                        Step::GaveUp { attempts } => {
                            prop_assert_eq!(Some(attempts), config.max_attempts);
                        }
                        _ => prop_assert_eq!(p.poll_timeout(), None),
                    }
                }
                Op::Connected => p.handle_connected(now),
                Op::ConnectFailed | Op::Disconnected => {
                    let attempts = p.attempts();
                    if matches!(op, Op::ConnectFailed) {
                        p.handle_connect_failed(now);
                    } else {
                        p.handle_disconnected(now);
                    }
                    if before.is_none() && let Some(deadline) = p.poll_timeout() {
                        // A wait was just scheduled: check its length against the back-off.
                        let n = p.attempts().max(1);
                        prop_assert!(p.attempts() == attempts + 1 || p.attempts() == 0);
                        let mut base_delay = config.initial_delay;
                        for _ in 1..n.min(64) {
                            base_delay = base_delay.saturating_mul(config.multiplier).min(config.max_delay);
                        }
                        let delay = deadline - now;
                        let floor = base_delay * (100 - u32::from(config.jitter_percent)) / 100;
                        prop_assert!(delay <= base_delay && delay >= floor,
                            "{delay:?} outside [{floor:?}, {base_delay:?}] after {n} failures");
                    }
                }
                Op::TimeoutNear(shift) => {
                    if let Some(deadline) = before {
                        let t = if shift < 0 {
                            deadline.checked_sub(Duration::from_millis(shift.unsigned_abs())).unwrap_or(deadline)
                        } else {
                            deadline + Duration::from_millis(shift as u64)
                        };
                        let t = t.max(now);
                        p.handle_timeout(t);
                        if t >= deadline {
                            prop_assert_eq!(p.poll_timeout(), None);
                            prop_assert_eq!(p.poll(t), Step::Connect);
                        } else {
                            prop_assert_eq!(p.poll_timeout(), Some(deadline));
                            prop_assert_eq!(p.poll(t), Step::Wait(deadline));
                        }
                        now = t;
                    } else {
                        p.handle_timeout(now);
                        prop_assert_eq!(p.poll_timeout(), None);
                    }
                }
                Op::Reset => {
                    p.reset();
                    prop_assert_eq!(p.attempts(), 0);
                    prop_assert_eq!(p.poll_timeout(), None);
                }
            }
            if let Some(max) = config.max_attempts {
                prop_assert!(p.attempts() <= max);
            }
        }
    }

    /// Same seed, same events: same deadlines.
    #[test]
    fn deterministic_for_a_seed(config in config(), failures in 1usize..30) {
        let base = Instant::now();
        let run = || {
            let mut p = Reconnect::new(config.clone()).unwrap();
            let mut now = base;
            let mut out = Vec::new();
            for _ in 0..failures {
                if p.poll(now) != Step::Connect {
                    break;
                }
                p.handle_connect_failed(now);
                match p.poll_timeout() {
                    Some(d) => {
                        out.push(d - now);
                        now = d;
                    }
                    None => break,
                }
            }
            out
        };
        prop_assert_eq!(run(), run());
    }
}
