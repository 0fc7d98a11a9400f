//! The client's connect / back-off / give-up policy, as a state machine of time.
//!
//! [`Reconnect`] tells a client runtime when to dial, how long to wait after a failure and
//! when to give up. It performs no IO and reads no clock: the runtime reports what happened
//! (`handle_*`) and asks what to do next ([`Reconnect::poll`]).

use std::time::Duration;

use crate::Instant;

/// Back-off policy for [`Reconnect`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(
        default,
        deny_unknown_fields,
        expecting = "\"off\" or a reconnect table"
    )
)]
pub struct ReconnectConfig {
    /// Delay after the first failure (default 100 ms). Must be non-zero.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub initial_delay: Duration,
    /// Upper bound of the delay before jitter (default 30 s); at most
    /// [`ReconnectConfig::MAX_DELAY_LIMIT`].
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_delay: Duration,
    /// Growth factor of the delay per consecutive failure (default 2). Must be at least 1.
    pub multiplier: u32,
    /// Each delay is scaled by a factor drawn uniformly from `[1 - j/100, 1]` (default 20).
    /// At most 100.
    pub jitter_percent: u8,
    /// Consecutive failures after which to give up; `None` retries forever (default 10).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub max_attempts: Option<u32>,
    /// A connection that lasted at least this long resets the failure count (default 10 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub stable_after: Duration,
    /// Seed of the jitter generator. Give each client its own (e.g. from a hash of its id or a
    /// random number drawn by the runtime), or clients restarted together retry together.
    pub seed: u64,
}

impl ReconnectConfig {
    /// The largest accepted `max_delay`: one day.
    pub const MAX_DELAY_LIMIT: Duration = Duration::from_secs(86_400);

    /// This policy with a seed of its own, mixed from `entropy` and the configured seed. The
    /// runtime passes something that differs between processes and between the clients of
    /// one process (the adapters use lynn-service's `reconnect_entropy`: the process id, the
    /// wall-clock time and a process-wide count of clients). The same `entropy` gives the
    /// same seed.
    pub fn with_distinct_seed(mut self, entropy: u64) -> Self {
        let mut z = entropy ^ self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.seed = z ^ (z >> 31);
        self
    }
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            multiplier: 2,
            jitter_percent: 20,
            max_attempts: Some(10),
            stable_after: Duration::from_secs(10),
            seed: 0x6c79_6e6e, // "lynn"
        }
    }
}

/// An invalid [`ReconnectConfig`], refused by [`Reconnect::new`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconnectConfigError {
    /// `initial_delay` was zero, which would retry in a busy loop.
    #[error("reconnect config: `initial_delay` must be non-zero")]
    ZeroInitialDelay,
    /// `initial_delay` exceeded `max_delay`.
    #[error("reconnect config: `initial_delay` ({initial:?}) exceeds `max_delay` ({max:?})")]
    InitialAboveMax {
        /// The configured initial delay.
        initial: Duration,
        /// The configured maximum delay.
        max: Duration,
    },
    /// `max_delay` exceeded [`ReconnectConfig::MAX_DELAY_LIMIT`].
    #[error("reconnect config: `max_delay` ({max:?}) exceeds one day")]
    MaxDelayTooLarge {
        /// The configured maximum delay.
        max: Duration,
    },
    /// `multiplier` was zero.
    #[error("reconnect config: `multiplier` must be at least 1")]
    ZeroMultiplier,
    /// `jitter_percent` exceeded 100.
    #[error("reconnect config: `jitter_percent` must be at most 100, got {percent}")]
    JitterOutOfRange {
        /// The configured jitter.
        percent: u8,
    },
    /// `max_attempts` was `Some(0)`.
    #[error("reconnect config: `max_attempts` must be at least 1 (use None to retry forever)")]
    ZeroMaxAttempts,
}

/// What the runtime should do now, from [`Reconnect::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start a connection attempt now, then report its outcome with
    /// [`handle_connected`](Reconnect::handle_connected) or
    /// [`handle_connect_failed`](Reconnect::handle_connect_failed).
    Connect,
    /// An attempt is in flight; wait for its outcome.
    Connecting,
    /// Sleep until this instant, then poll again.
    Wait(Instant),
    /// Connected; report the end with [`handle_disconnected`](Reconnect::handle_disconnected).
    Connected,
    /// Gave up after `attempts` consecutive failures; [`reset`](Reconnect::reset) starts over.
    GaveUp {
        /// Consecutive failures that led to giving up.
        attempts: u32,
    },
    /// Stopped by [`stop`](Reconnect::stop); nothing more will happen.
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    ConnectDue,
    Connecting,
    Connected { since: Instant },
    Waiting { deadline: Instant },
    GaveUp,
    Stopped,
}

/// A client's reconnect policy: exponential back-off with jitter, a cap, a give-up limit and
/// a failure count that resets once a connection has proved stable.
///
/// # Driving contract
///
/// 1. Call [`poll(now)`](Reconnect::poll) and act on the [`Step`]: dial on `Connect`, sleep
///    until the instant on `Wait`, do nothing on `Connecting`/`Connected`, stop the client on
///    `GaveUp`/`Stopped`.
/// 2. Report each outcome as it happens: [`handle_connected`](Reconnect::handle_connected) or
///    [`handle_connect_failed`](Reconnect::handle_connect_failed) for a dial,
///    [`handle_disconnected`](Reconnect::handle_disconnected) when an established connection
///    ends. Then poll again.
/// 3. Runtimes with a separate timer use [`poll_timeout`](Reconnect::poll_timeout) and
///    [`handle_timeout`](Reconnect::handle_timeout): after `handle_timeout(t)` with `t` at or
///    past the deadline, the next `poll` returns `Step::Connect`; earlier calls change nothing.
///
/// A connect failure, and the end of a connection shorter than `stable_after`, count as one
/// consecutive failure; after `max_attempts` of them the policy gives up. The delay after the
/// n-th failure is `initial_delay * multiplier^(n-1)`, capped at `max_delay`, then jittered.
/// After a stable connection ends, the count restarts at zero and the wait is `initial_delay`
/// (jittered). Reports that do not fit the current state (say, a disconnect while waiting)
/// are ignored. Time only moves forward between calls.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use lynn_proto::reconnect::{Reconnect, ReconnectConfig, Step};
///
/// let config = ReconnectConfig { jitter_percent: 0, max_attempts: Some(2), ..Default::default() };
/// let mut policy = Reconnect::new(config)?;
/// let t0 = std::time::Instant::now();
///
/// assert_eq!(policy.poll(t0), Step::Connect);
/// policy.handle_connect_failed(t0);
/// let retry_at = t0 + Duration::from_millis(100);
/// assert_eq!(policy.poll(t0), Step::Wait(retry_at));
/// assert_eq!(policy.poll_timeout(), Some(retry_at));
///
/// assert_eq!(policy.poll(retry_at), Step::Connect);
/// policy.handle_connect_failed(retry_at);
/// assert_eq!(policy.poll(retry_at), Step::GaveUp { attempts: 2 });
/// # Ok::<(), lynn_proto::reconnect::ReconnectConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Reconnect {
    config: ReconnectConfig,
    state: State,
    attempts: u32,
    rng: u64,
}

impl Reconnect {
    /// Validates `config`. The first connect is due immediately.
    pub fn new(config: ReconnectConfig) -> Result<Reconnect, ReconnectConfigError> {
        use ReconnectConfigError as E;
        let (initial, max) = (config.initial_delay, config.max_delay);
        if initial.is_zero() {
            return Err(E::ZeroInitialDelay);
        }
        if initial > max {
            return Err(E::InitialAboveMax { initial, max });
        }
        if max > ReconnectConfig::MAX_DELAY_LIMIT {
            return Err(E::MaxDelayTooLarge { max });
        }
        if config.multiplier == 0 {
            return Err(E::ZeroMultiplier);
        }
        if config.jitter_percent > 100 {
            return Err(E::JitterOutOfRange {
                percent: config.jitter_percent,
            });
        }
        if config.max_attempts == Some(0) {
            return Err(E::ZeroMaxAttempts);
        }
        Ok(Reconnect {
            rng: config.seed,
            config,
            state: State::ConnectDue,
            attempts: 0,
        })
    }

    /// What to do at `now`. Processes an elapsed wait first, so a `poll` alone is enough to
    /// drive the policy. Returns `Step::Connect` once per attempt.
    #[must_use = "the step says whether to connect, wait or stop"]
    pub fn poll(&mut self, now: Instant) -> Step {
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

    /// The instant at which [`handle_timeout`](Reconnect::handle_timeout) has work to do:
    /// the end of the current back-off wait, if waiting.
    #[must_use = "the deadline is when to call handle_timeout"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Ends the back-off wait if `now` is at or past its deadline; otherwise does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Waiting { deadline } = self.state {
            if now >= deadline {
                self.state = State::ConnectDue;
            }
        }
    }

    /// The attempt started after `Step::Connect` succeeded at `now`.
    pub fn handle_connected(&mut self, now: Instant) {
        if matches!(
            self.state,
            State::ConnectDue | State::Connecting | State::Waiting { .. }
        ) {
            self.state = State::Connected { since: now };
        }
    }

    /// The attempt started after `Step::Connect` failed at `now`.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if matches!(self.state, State::ConnectDue | State::Connecting) {
            self.fail(now);
        }
    }

    /// The established connection ended at `now`. Counts as a failure unless it lasted at
    /// least `stable_after`, in which case the failure count restarts from zero.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if let State::Connected { since } = self.state {
            if now.saturating_duration_since(since) >= self.config.stable_after {
                self.restart(now);
            } else {
                self.fail(now);
            }
        }
    }

    /// The client itself gave up a connection that worked, at `now` (for example its reply
    /// order was lost after a request timed out): not a failure, however short the
    /// connection. The failure count restarts from zero.
    pub fn handle_replaced(&mut self, now: Instant) {
        if let State::Connected { .. } = self.state {
            self.restart(now);
        }
    }

    /// After a connection that counts as good: the count restarts, the next attempt
    /// follows the first delay.
    fn restart(&mut self, now: Instant) {
        self.attempts = 0;
        let delay = self.backoff(1);
        self.state = State::Waiting {
            deadline: after(now, delay),
        };
    }

    /// Stops for good (the client was closed): every later `poll` returns `Step::Stopped`.
    pub fn stop(&mut self) {
        self.state = State::Stopped;
    }

    /// Forgets past failures; if waiting or given up, a connect is due at once.
    /// Does nothing once stopped.
    pub fn reset(&mut self) {
        match self.state {
            State::Stopped => return,
            State::Waiting { .. } | State::GaveUp => self.state = State::ConnectDue,
            _ => {}
        }
        self.attempts = 0;
    }

    /// Consecutive failures so far (reset by a stable connection or [`reset`](Self::reset)).
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &ReconnectConfig {
        &self.config
    }

    fn fail(&mut self, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        if self
            .config
            .max_attempts
            .is_some_and(|max| self.attempts >= max)
        {
            self.state = State::GaveUp;
        } else {
            let delay = self.backoff(self.attempts);
            self.state = State::Waiting {
                deadline: after(now, delay),
            };
        }
    }

    /// The jittered delay after the `failures`-th consecutive failure (`failures >= 1`).
    fn backoff(&mut self, failures: u32) -> Duration {
        let ReconnectConfig {
            initial_delay,
            max_delay,
            multiplier,
            ..
        } = self.config;
        let mut delay = initial_delay;
        if multiplier > 1 {
            // 128 doublings overflow any Duration; stop at the cap long before.
            for _ in 1..failures.min(128) {
                delay = delay.checked_mul(multiplier).unwrap_or(max_delay);
                if delay >= max_delay {
                    break;
                }
            }
        }
        let delay = delay.min(max_delay);
        // Scale by a factor in [1 - j, 1] with integer math: cut = delay * j/100 * r/(2^32-1).
        let r = u128::from(self.next_random() >> 32);
        let nanos = delay.as_nanos();
        let cut = nanos * u128::from(self.config.jitter_percent) * r / (100 * u128::from(u32::MAX));
        // nanos <= one day in ns fits in u64.
        Duration::from_nanos(u64::try_from(nanos - cut).unwrap_or(u64::MAX))
    }

    /// splitmix64.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `now + delay`; the delay is at most a day, so overflow cannot happen for a real clock.
fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn policy(jitter_percent: u8, max_attempts: Option<u32>) -> Reconnect {
        let config = ReconnectConfig {
            max_delay: ms(1000),
            jitter_percent,
            max_attempts,
            ..Default::default()
        };
        Reconnect::new(config).unwrap()
    }

    #[test]
    fn a_distinct_seed_depends_only_on_the_entropy_given() {
        let base = ReconnectConfig::default();
        let seed = |entropy| base.clone().with_distinct_seed(entropy).seed;
        assert_eq!(seed(7), seed(7), "no hidden state: same entropy, same seed");
        assert_ne!(seed(7), seed(8));
        assert_ne!(seed(7), base.seed);
    }

    /// Fails the due attempt at `now`; returns the wait it scheduled.
    fn fail(p: &mut Reconnect, now: Instant) -> Option<Duration> {
        assert_eq!(p.poll(now), Step::Connect);
        p.handle_connect_failed(now);
        p.poll_timeout().map(|d| d - now)
    }

    #[test]
    fn defaults_and_validation() {
        use ReconnectConfigError as E;
        let d = ReconnectConfig::default();
        assert_eq!(
            (d.initial_delay, d.max_delay, d.multiplier),
            (ms(100), ms(30_000), 2)
        );
        assert_eq!(
            (d.jitter_percent, d.max_attempts, d.stable_after),
            (20, Some(10), ms(10_000))
        );
        let bad = |c: ReconnectConfig| Reconnect::new(c).unwrap_err();
        assert_eq!(
            bad(ReconnectConfig {
                initial_delay: ms(0),
                ..d.clone()
            }),
            E::ZeroInitialDelay
        );
        assert_eq!(
            bad(ReconnectConfig {
                initial_delay: ms(5),
                max_delay: ms(4),
                ..d.clone()
            }),
            E::InitialAboveMax {
                initial: ms(5),
                max: ms(4)
            }
        );
        let max = ReconnectConfig::MAX_DELAY_LIMIT + ms(1);
        assert_eq!(
            bad(ReconnectConfig {
                max_delay: max,
                ..d.clone()
            }),
            E::MaxDelayTooLarge { max }
        );
        assert_eq!(
            bad(ReconnectConfig {
                multiplier: 0,
                ..d.clone()
            }),
            E::ZeroMultiplier
        );
        let e = bad(ReconnectConfig {
            jitter_percent: 101,
            ..d.clone()
        });
        assert_eq!(e, E::JitterOutOfRange { percent: 101 });
        assert_eq!(
            bad(ReconnectConfig {
                max_attempts: Some(0),
                ..d.clone()
            }),
            E::ZeroMaxAttempts
        );
        assert!(
            Reconnect::new(ReconnectConfig {
                jitter_percent: 100,
                max_attempts: None,
                ..d
            })
            .is_ok()
        );
    }

    #[test]
    fn delays_grow_geometrically_and_cap() {
        let mut p = policy(0, None);
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..7 {
            let delay = fail(&mut p, now).unwrap();
            delays.push(delay.as_millis());
            now += delay;
        }
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(p.attempts(), 7);
    }

    #[test]
    fn multiplier_one_keeps_the_delay_constant_even_after_many_failures() {
        let config = ReconnectConfig {
            multiplier: 1,
            jitter_percent: 0,
            max_attempts: None,
            ..Default::default()
        };
        let mut p = Reconnect::new(config).unwrap();
        p.attempts = u32::MAX - 1;
        let now = Instant::now();
        assert_eq!(fail(&mut p, now), Some(ms(100)));
        assert_eq!(p.attempts(), u32::MAX);
        assert_eq!(
            fail(&mut p, now + ms(100)),
            Some(ms(100)),
            "saturates, never wraps"
        );
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_deterministic_per_seed() {
        let run = |seed: u64| {
            let config = ReconnectConfig {
                seed,
                jitter_percent: 50,
                max_attempts: None,
                ..Default::default()
            };
            let mut p = Reconnect::new(config).unwrap();
            let mut now = Instant::now();
            let mut out = Vec::new();
            for n in 1..=40u32 {
                let delay = fail(&mut p, now).unwrap();
                let base = ms(100)
                    .saturating_mul(2u32.saturating_pow(n - 1))
                    .min(ms(30_000));
                assert!(
                    delay <= base && delay >= base / 2,
                    "attempt {n}: {delay:?} vs {base:?}"
                );
                out.push(delay);
                now += delay;
            }
            out
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        // Jitter actually varies the delay: not all capped delays are equal.
        assert!(a[20..].windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn gives_up_exactly_after_max_attempts() {
        let mut p = policy(0, Some(3));
        let mut now = Instant::now();
        for _ in 0..2 {
            now += fail(&mut p, now).expect("still retrying");
        }
        assert_eq!(fail(&mut p, now), None);
        assert_eq!(p.poll(now + ms(99_999)), Step::GaveUp { attempts: 3 });
        p.reset();
        assert_eq!((p.attempts(), p.poll(now)), (0, Step::Connect));
    }

    #[test]
    fn stable_connection_resets_the_count_and_short_ones_count_as_failures() {
        let mut p = policy(0, Some(3));
        let t0 = Instant::now();
        let t1 = t0 + fail(&mut p, t0).unwrap();
        let t2 = t1 + fail(&mut p, t1).unwrap();
        assert_eq!(p.poll(t2), Step::Connect);
        p.handle_connected(t2);
        assert_eq!((p.poll(t2), p.poll_timeout()), (Step::Connected, None));
        let t3 = t2 + ms(10_000);
        p.handle_disconnected(t3);
        assert_eq!(p.attempts(), 0);
        assert_eq!(p.poll(t3), Step::Wait(t3 + ms(100)));

        // After a failure, a connection shorter than stable_after counts as a second one.
        let t4 = t3 + ms(100);
        assert_eq!(p.poll(t4), Step::Connect);
        p.handle_connect_failed(t4);
        let t5 = t4 + ms(100);
        assert_eq!(p.poll(t5), Step::Connect);
        p.handle_connected(t5);
        p.handle_disconnected(t5 + ms(9_999));
        assert_eq!(p.attempts(), 2);
        assert_eq!(p.poll_timeout(), Some(t5 + ms(9_999) + ms(200)));
    }

    #[test]
    fn timers_are_honest_and_early_calls_do_nothing() {
        let mut p = policy(0, None);
        let t0 = Instant::now();
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.poll(t0), Step::Connect);
        assert_eq!(
            p.poll(t0),
            Step::Connecting,
            "Connect is emitted once per attempt"
        );
        p.handle_connect_failed(t0);
        let deadline = p.poll_timeout().unwrap();
        p.handle_timeout(deadline - Duration::from_nanos(1));
        assert_eq!(p.poll_timeout(), Some(deadline));
        assert_eq!(
            p.poll(deadline - Duration::from_nanos(1)),
            Step::Wait(deadline)
        );
        p.handle_timeout(deadline);
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.poll(deadline), Step::Connect);
    }

    #[test]
    fn out_of_place_reports_are_ignored_and_stop_is_final() {
        let mut p = policy(0, None);
        let t0 = Instant::now();
        p.handle_disconnected(t0); // not connected
        assert_eq!(p.attempts(), 0);
        let _ = fail(&mut p, t0);
        p.handle_connect_failed(t0); // duplicate report while waiting
        assert_eq!(p.attempts(), 1);
        p.stop();
        p.reset();
        p.handle_connected(t0);
        assert_eq!(
            (p.poll(t0 + ms(1000)), p.poll_timeout()),
            (Step::Stopped, None)
        );
    }

    #[test]
    fn replaced_connections_never_count_as_failures() {
        let mut p = policy(0, Some(2));
        let mut now = Instant::now();
        for _ in 0..5 {
            assert_eq!(p.poll(now), Step::Connect);
            p.handle_connected(now);
            now += ms(10); // far shorter than `stable_after`
            p.handle_replaced(now);
            assert_eq!(p.attempts(), 0);
            now = p.poll_timeout().expect("waits before the next connect");
            p.handle_timeout(now);
        }
        // A short connection that ends by itself still counts.
        assert_eq!(p.poll(now), Step::Connect);
        p.handle_connected(now);
        p.handle_disconnected(now + ms(10));
        assert_eq!(p.attempts(), 1);
    }
}
