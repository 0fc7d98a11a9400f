//! The reconnect target: back-off bounds, give-up and timer honesty of the client policy.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use crate::Instant;
use crate::reconnect::{Reconnect, ReconnectConfig, ReconnectConfigError, Step};

#[derive(Arbitrary, Debug)]
enum MaxDelay {
    /// `initial_delay` plus this many microseconds.
    Above(u32),
    /// Any number of milliseconds (may be below the initial delay or above the limit).
    AnyMillis(u32),
    /// Exactly [`ReconnectConfig::MAX_DELAY_LIMIT`].
    Limit,
}

#[derive(Arbitrary, Debug)]
enum Multiplier {
    /// `n % 5`, so 0 (invalid) and 1 (constant delay) come up often.
    Small(u8),
    Any(u32),
}

#[derive(Arbitrary, Debug)]
struct Setup {
    /// Microseconds, modulo 2 s; 0 is invalid.
    initial_micros: u32,
    max_delay: MaxDelay,
    multiplier: Multiplier,
    /// Above 200: taken as is (invalid); otherwise `n % 101`.
    jitter: u8,
    /// `Some(255)`: an invalid `Some(0)`; otherwise `Some(1 + n % 8)`.
    max_attempts: Option<u8>,
    stable_millis: u16,
    seed: u64,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Poll,
    Connected,
    ConnectFailed,
    Disconnected,
    /// `handle_timeout` one nanosecond before the deadline: must change nothing.
    JustBefore,
    /// `handle_timeout` at the deadline.
    AtDeadline,
    /// `handle_timeout` this many milliseconds past the deadline.
    PastDeadline(u16),
    /// Time passes (microseconds) without any call.
    Advance(u32),
    /// `handle_timeout` now.
    HandleTimeout,
    Stop,
    Reset,
}

/// The documented state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    ConnectDue,
    Connecting,
    Connected { since: Instant },
    Waiting { deadline: Instant },
    GaveUp,
    Stopped,
}

struct Model {
    config: ReconnectConfig,
    state: State,
    attempts: u32,
    /// A wait began during the last operation; its deadline is still to be learned.
    fresh_wait: bool,
}

pub(super) fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let setup = Setup::arbitrary(u)?;
    let ops = Vec::<Op>::arbitrary(u)?;
    let initial_delay = Duration::from_micros(u64::from(setup.initial_micros % 2_000_000));
    let config = ReconnectConfig {
        initial_delay,
        max_delay: match setup.max_delay {
            MaxDelay::Above(us) => initial_delay + Duration::from_micros(u64::from(us)),
            MaxDelay::AnyMillis(ms) => Duration::from_millis(u64::from(ms)),
            MaxDelay::Limit => ReconnectConfig::MAX_DELAY_LIMIT,
        },
        multiplier: match setup.multiplier {
            Multiplier::Small(n) => u32::from(n % 5),
            Multiplier::Any(n) => n,
        },
        jitter_percent: if setup.jitter > 200 {
            setup.jitter
        } else {
            setup.jitter % 101
        },
        max_attempts: setup
            .max_attempts
            .map(|n| if n == 255 { 0 } else { 1 + u32::from(n % 8) }),
        stable_after: Duration::from_millis(u64::from(setup.stable_millis)),
        seed: setup.seed,
    };
    let expected_error = config_error(&config);
    let mut policy = match Reconnect::new(config.clone()) {
        Ok(p) => {
            assert_eq!(expected_error, None, "invalid config accepted");
            p
        }
        Err(e) => {
            assert_eq!(
                Some(e),
                expected_error,
                "valid config refused, or wrong error"
            );
            return Ok(());
        }
    };
    let mut now = Instant::now();
    let mut m = Model {
        config,
        state: State::ConnectDue,
        attempts: 0,
        fresh_wait: false,
    };
    m.check(&policy, now);
    for op in ops {
        let before = m.state;
        match op {
            Op::Poll => {
                let step = policy.poll(now);
                assert_eq!(step, m.poll(now), "poll({op:?}) in {before:?}");
            }
            Op::Connected => {
                policy.handle_connected(now);
                if matches!(
                    m.state,
                    State::ConnectDue | State::Connecting | State::Waiting { .. }
                ) {
                    m.state = State::Connected { since: now };
                }
            }
            Op::ConnectFailed => {
                policy.handle_connect_failed(now);
                if matches!(m.state, State::ConnectDue | State::Connecting) {
                    m.fail(now);
                }
            }
            Op::Disconnected => {
                policy.handle_disconnected(now);
                if let State::Connected { since } = m.state {
                    if now - since >= m.config.stable_after {
                        m.attempts = 0;
                        m.state = State::Waiting { deadline: now };
                        m.fresh_wait = true;
                    } else {
                        m.fail(now);
                    }
                }
            }
            Op::JustBefore => {
                if let State::Waiting { deadline } = m.state
                    && deadline > now
                {
                    now = deadline - Duration::from_nanos(1);
                    policy.handle_timeout(now);
                    assert_eq!(policy.poll_timeout(), Some(deadline), "early call acted");
                }
            }
            Op::AtDeadline | Op::PastDeadline(_) => {
                if let State::Waiting { deadline } = m.state {
                    let past = match op {
                        Op::PastDeadline(ms) => Duration::from_millis(u64::from(ms)),
                        _ => Duration::ZERO,
                    };
                    now = now.max(deadline) + past;
                    policy.handle_timeout(now);
                    assert_eq!(policy.poll_timeout(), None, "deadline did not move");
                    m.state = State::ConnectDue;
                }
            }
            Op::Advance(us) => now += Duration::from_micros(u64::from(us)),
            Op::HandleTimeout => {
                policy.handle_timeout(now);
                m.handle_timeout(now);
            }
            Op::Stop => {
                policy.stop();
                m.state = State::Stopped;
            }
            Op::Reset => {
                policy.reset();
                if m.state != State::Stopped {
                    if matches!(m.state, State::Waiting { .. } | State::GaveUp) {
                        m.state = State::ConnectDue;
                    }
                    m.attempts = 0;
                }
            }
        }
        if before == State::Stopped {
            assert_eq!(m.state, State::Stopped, "Stopped is terminal");
        }
        // Only `reset` leaves GaveUp (and `stop`, which ends everything).
        if before == State::GaveUp && !matches!(op, Op::Reset | Op::Stop) {
            assert_eq!(m.state, State::GaveUp, "GaveUp is terminal until reset");
        }
        m.check(&policy, now);
    }
    Ok(())
}

/// What [`Reconnect::new`] must say about `c`, in the documented order.
fn config_error(c: &ReconnectConfig) -> Option<ReconnectConfigError> {
    use ReconnectConfigError as E;
    if c.initial_delay.is_zero() {
        Some(E::ZeroInitialDelay)
    } else if c.initial_delay > c.max_delay {
        Some(E::InitialAboveMax {
            initial: c.initial_delay,
            max: c.max_delay,
        })
    } else if c.max_delay > ReconnectConfig::MAX_DELAY_LIMIT {
        Some(E::MaxDelayTooLarge { max: c.max_delay })
    } else if c.multiplier == 0 {
        Some(E::ZeroMultiplier)
    } else if c.jitter_percent > 100 {
        Some(E::JitterOutOfRange {
            percent: c.jitter_percent,
        })
    } else if c.max_attempts == Some(0) {
        Some(E::ZeroMaxAttempts)
    } else {
        None
    }
}

impl Model {
    fn handle_timeout(&mut self, now: Instant) {
        if let State::Waiting { deadline } = self.state
            && now >= deadline
        {
            self.state = State::ConnectDue;
        }
    }

    fn poll(&mut self, now: Instant) -> Step {
        self.handle_timeout(now);
        match self.state {
            State::ConnectDue => {
                self.state = State::Connecting;
                Step::Connect
            }
            State::Connecting => Step::Connecting,
            State::Connected { .. } => Step::Connected,
            State::Waiting { deadline } => Step::Wait(deadline),
            State::GaveUp => Step::GaveUp {
                attempts: self.attempts,
            },
            State::Stopped => Step::Stopped,
        }
    }

    fn fail(&mut self, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        if self.config.max_attempts.is_some_and(|m| self.attempts >= m) {
            self.state = State::GaveUp;
        } else {
            // The exact deadline depends on the jitter; `check` learns and bounds it.
            self.state = State::Waiting { deadline: now };
            self.fresh_wait = true;
        }
    }

    /// The un-jittered delay after the `failures`-th consecutive failure, in nanoseconds.
    fn base_delay(&self, failures: u32) -> u128 {
        let initial = self.config.initial_delay.as_nanos();
        let max = self.config.max_delay.as_nanos();
        let multiplier = u128::from(self.config.multiplier);
        let mut delay = initial;
        if multiplier > 1 {
            // Grows at least twofold per step, so this ends after a few dozen steps.
            for _ in 1..failures {
                delay = delay.saturating_mul(multiplier);
                if delay >= max {
                    break;
                }
            }
        }
        delay.min(max)
    }

    /// Compares the policy's observable state with the model; a wait that began during the
    /// last operation has its deadline learned (and bounded) here.
    fn check(&mut self, policy: &Reconnect, now: Instant) {
        assert_eq!(policy.attempts(), self.attempts, "attempts");
        if let Some(max) = self.config.max_attempts {
            assert!(policy.attempts() <= max, "attempts above max_attempts");
        }
        match self.state {
            State::Waiting { .. } if self.fresh_wait => {
                self.fresh_wait = false;
                let actual = policy.poll_timeout().expect("waiting has a deadline");
                assert!(actual >= now, "deadline in the past");
                let delay = (actual - now).as_nanos();
                let base = self.base_delay(self.attempts.max(1));
                let jitter = u128::from(self.config.jitter_percent);
                let low = base - base * jitter / 100;
                assert!(
                    (low..=base).contains(&delay),
                    "delay {delay} ns after {} failures outside [{low}, {base}]",
                    self.attempts
                );
                let initial = self.config.initial_delay.as_nanos();
                assert!(delay >= initial - initial * jitter / 100);
                assert!(delay <= self.config.max_delay.as_nanos());
                self.state = State::Waiting { deadline: actual };
            }
            State::Waiting { deadline } => {
                assert_eq!(policy.poll_timeout(), Some(deadline), "deadline moved");
            }
            _ => assert_eq!(policy.poll_timeout(), None, "deadline while not waiting"),
        }
    }
}
