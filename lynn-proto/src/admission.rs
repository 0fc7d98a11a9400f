//! Connection admission: global and per-IP connection limits plus token-bucket connection rates.
//!
//! [`Admission`] decides whether a freshly accepted connection may stay. It answers with a
//! [`Permit`] (give it back with [`Admission::release`] when the connection closes) or a typed
//! [`Rejection`] that says which limit was hit and, for rate limits, when a retry can succeed.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use crate::Instant;

/// A token-bucket rate: `per_second` tokens refill each second, at most `burst` are stored.
///
/// The bucket is implemented as GCRA (generic cell rate algorithm) with integer nanoseconds.
/// The emission interval `1s / per_second` is rounded *up* to whole nanoseconds, so the
/// effective rate never exceeds the configured one (rates above 10⁹/s behave as 10⁹/s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Rate {
    /// Tokens added per second. Must be at least 1.
    pub per_second: u32,
    /// Bucket capacity: how many admissions may happen back to back. Must be at least 1.
    pub burst: u32,
}

impl Rate {
    /// `n` per second with a burst of `n`.
    #[must_use]
    pub const fn per_second(n: u32) -> Rate {
        Rate {
            per_second: n,
            burst: n,
        }
    }

    /// The same rate with another burst size.
    #[must_use]
    pub const fn with_burst(self, burst: u32) -> Rate {
        Rate { burst, ..self }
    }
}

/// Limits enforced by [`Admission`]. The defaults match lynn_tcp.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct AdmissionConfig {
    /// Maximum number of connections open at once (default 100 000).
    pub max_connections: usize,
    /// Maximum number of connections open at once from one IP address (default 100).
    pub max_per_ip: usize,
    /// Global connection rate (default: unlimited).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub rate: Option<Rate>,
    /// Connection rate per IP address (default: unlimited).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub per_ip_rate: Option<Rate>,
    /// Maximum number of IP addresses tracked at once (default 65 536); bounds memory.
    pub max_tracked_ips: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections: 100_000,
            max_per_ip: 100,
            rate: None,
            per_ip_rate: None,
            max_tracked_ips: 65_536,
        }
    }
}

/// An invalid [`AdmissionConfig`], refused by [`Admission::new`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionConfigError {
    /// A count limit (`max_connections`, `max_per_ip`, `max_tracked_ips`) was zero.
    #[error("admission config: `{field}` must be at least 1")]
    ZeroLimit {
        /// Name of the offending field.
        field: &'static str,
    },
    /// A rate (`rate` or `per_ip_rate`) had `per_second == 0`.
    #[error("admission config: `{field}.per_second` must be at least 1")]
    ZeroRate {
        /// Name of the offending field.
        field: &'static str,
    },
    /// A rate (`rate` or `per_ip_rate`) had `burst == 0`.
    #[error("admission config: `{field}.burst` must be at least 1")]
    ZeroBurst {
        /// Name of the offending field.
        field: &'static str,
    },
}

/// Why a connection was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The server already holds `limit` connections.
    #[error("connection limit reached ({limit} open)")]
    MaxConnections {
        /// The configured `max_connections`.
        limit: usize,
    },
    /// This IP address already holds `limit` connections.
    #[error("per-IP connection limit reached for {ip} ({limit} open)")]
    MaxPerIp {
        /// The peer address.
        ip: IpAddr,
        /// The configured `max_per_ip`.
        limit: usize,
    },
    /// The global connection rate is exhausted.
    #[error("connection rate limited; retry at {retry_at:?}")]
    RateLimited {
        /// Earliest instant at which this limit admits again.
        retry_at: Instant,
    },
    /// This IP address's connection rate is exhausted.
    #[error("connection rate limited for {ip}; retry at {retry_at:?}")]
    IpRateLimited {
        /// The peer address.
        ip: IpAddr,
        /// Earliest instant at which this limit admits again.
        retry_at: Instant,
    },
    /// The per-IP table is full and every tracked address holds open connections.
    #[error("too many distinct IP addresses connected ({limit} tracked)")]
    TooManyTrackedIps {
        /// The configured `max_tracked_ips`.
        limit: usize,
    },
}

impl Rejection {
    /// When a retry could succeed, for rate limits. `None` for count limits, which only clear
    /// when some connection is released.
    #[must_use]
    pub fn retry_at(&self) -> Option<Instant> {
        match self {
            Rejection::RateLimited { retry_at } | Rejection::IpRateLimited { retry_at, .. } => {
                Some(*retry_at)
            }
            _ => None,
        }
    }

    /// A stable snake_case label for metrics, e.g. `"max_connections"`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::MaxConnections { .. } => "max_connections",
            Rejection::MaxPerIp { .. } => "max_per_ip",
            Rejection::RateLimited { .. } => "rate_limited",
            Rejection::IpRateLimited { .. } => "ip_rate_limited",
            Rejection::TooManyTrackedIps { .. } => "too_many_tracked_ips",
        }
    }
}

/// Proof that one connection was admitted. Give it back with [`Admission::release`].
///
/// A permit is neither `Clone` nor `Copy`, and `release` consumes it, so each admission is
/// released at most once by construction. Dropping a permit without releasing it leaks a
/// slot; debug builds catch that with an assertion (unless the thread is already panicking).
#[must_use = "an admitted connection must be released with Admission::release"]
#[derive(Debug)]
pub struct Permit {
    ip: IpAddr,
    /// Id of the issuing [`Admission`], so a foreign permit cannot corrupt its counts.
    owner: usize,
    released: bool,
}

impl Permit {
    /// The IP address this permit was issued for.
    #[must_use]
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.released {
            debug_assert!(
                std::thread::panicking(),
                "lynn: Permit for {} dropped without Admission::release",
                self.ip
            );
        }
    }
}

/// Counters since creation, for metrics export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdmissionStats {
    /// Permits issued.
    pub admitted: u64,
    /// Permits released.
    pub released: u64,
    /// Rejections by [`Rejection::MaxConnections`].
    pub rejected_max_connections: u64,
    /// Rejections by [`Rejection::MaxPerIp`].
    pub rejected_max_per_ip: u64,
    /// Rejections by [`Rejection::RateLimited`].
    pub rejected_rate: u64,
    /// Rejections by [`Rejection::IpRateLimited`].
    pub rejected_ip_rate: u64,
    /// Rejections by [`Rejection::TooManyTrackedIps`].
    pub rejected_table_full: u64,
}

/// GCRA parameters: emission interval and burst tolerance.
#[derive(Clone, Copy, Debug)]
struct Gcra {
    interval: Duration,
    tolerance: Duration,
}

impl Gcra {
    fn new(rate: Rate) -> Gcra {
        // Both fields are validated non-zero. Round the interval up so the rate is never exceeded.
        let per_second = u64::from(rate.per_second.max(1));
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(per_second));
        let tolerance = interval.saturating_mul(rate.burst.max(1) - 1);
        Gcra {
            interval,
            tolerance,
        }
    }

    /// Checks a bucket whose theoretical arrival time is `tat` (`None`: full bucket).
    /// Returns the new TAT on success, the retry instant on failure. Does not mutate.
    fn check(&self, tat: Option<Instant>, now: Instant) -> Result<Instant, Instant> {
        let tat = match tat {
            Some(tat) if tat > now => tat,
            _ => now,
        };
        // Admit iff now >= tat - tolerance, i.e. tat - now <= tolerance.
        if tat.duration_since(now) <= self.tolerance {
            // Overflow is unreachable for clock-derived instants; keep `tat` rather than panic.
            Ok(tat.checked_add(self.interval).unwrap_or(tat))
        } else {
            Err(tat.checked_sub(self.tolerance).unwrap_or(now))
        }
    }
}

#[derive(Debug)]
struct IpEntry {
    open: usize,
    /// Per-IP GCRA state; `None` until the first admission or when no per-IP rate is set.
    tat: Option<Instant>,
}

/// Connection admission for a server: connection counts, per-IP counts and connection rates.
///
/// # Driving contract
///
/// - Call [`try_admit`](Admission::try_admit) once per accepted socket, with the peer address
///   and the current time. On `Ok(permit)` keep the permit with the connection; on `Err` close
///   the socket (the [`Rejection`] says why and, for rate limits, when to retry).
/// - When that connection closes, for whatever reason, call [`release`](Admission::release)
///   with its permit. Nothing else frees a slot.
/// - Time only moves forward between calls.
///
/// Checks run in this order: `max_connections`, `max_per_ip`, per-IP rate, global rate, and
/// finally (for an address not yet tracked) room in the per-IP table. A rejection consumes no
/// tokens and changes no counts.
///
/// Runtimes share one `Admission` per server behind a `Mutex`, taken once per accept and once
/// per close — never per message. Every operation is O(log n) in the number of tracked
/// addresses; there is no per-call scan.
///
/// # Per-IP table
///
/// At most `max_tracked_ips` addresses are tracked. An entry stays while the address has open
/// connections or, with a per-IP rate, until its bucket has refilled. When the table is full
/// and a new address arrives, refilled idle entries are dropped; if none is refilled, the idle
/// entry whose bucket refills soonest is evicted (forgetting the least rate history). If every
/// tracked address has open connections, the new address is refused with
/// [`Rejection::TooManyTrackedIps`].
///
/// # Example
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use std::time::Duration;
/// use lynn_proto::admission::{Admission, AdmissionConfig, Rate, Rejection};
///
/// let config = AdmissionConfig { max_per_ip: 2, rate: Some(Rate::per_second(10)), ..Default::default() };
/// let mut admission = Admission::new(config)?;
/// let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let now = std::time::Instant::now();
///
/// let a = admission.try_admit(ip, now).expect("first connection");
/// let b = admission.try_admit(ip, now).expect("second connection");
/// let refused = admission.try_admit(ip, now).unwrap_err();
/// assert_eq!(refused, Rejection::MaxPerIp { ip, limit: 2 });
///
/// admission.release(a);
/// let c = admission.try_admit(ip, now + Duration::from_millis(1)).expect("slot was freed");
/// assert_eq!(admission.open_for(ip), 2);
///
/// admission.release(b);
/// admission.release(c);
/// assert_eq!(admission.open(), 0);
/// # Ok::<(), lynn_proto::admission::AdmissionConfigError>(())
/// ```
#[derive(Debug)]
pub struct Admission {
    /// Identity stamped on every permit issued here: the address of this one-byte
    /// allocation, unique among the controllers alive (no global counter, no atomics).
    id: Box<u8>,
    config: AdmissionConfig,
    global: Option<Gcra>,
    global_tat: Option<Instant>,
    per_ip: Option<Gcra>,
    ips: HashMap<IpAddr, IpEntry>,
    /// Entries with no open connection, ordered by the instant their bucket is full again.
    idle: BTreeSet<(Instant, IpAddr)>,
    open: usize,
    stats: AdmissionStats,
}

impl Admission {
    /// Validates `config` and creates an admission controller with nothing admitted.
    pub fn new(config: AdmissionConfig) -> Result<Admission, AdmissionConfigError> {
        for (field, value) in [
            ("max_connections", config.max_connections),
            ("max_per_ip", config.max_per_ip),
            ("max_tracked_ips", config.max_tracked_ips),
        ] {
            if value == 0 {
                return Err(AdmissionConfigError::ZeroLimit { field });
            }
        }
        for (field, rate) in [("rate", config.rate), ("per_ip_rate", config.per_ip_rate)] {
            match rate {
                Some(r) if r.per_second == 0 => {
                    return Err(AdmissionConfigError::ZeroRate { field });
                }
                Some(r) if r.burst == 0 => return Err(AdmissionConfigError::ZeroBurst { field }),
                _ => {}
            }
        }
        Ok(Admission {
            id: Box::new(0),
            global: config.rate.map(Gcra::new),
            per_ip: config.per_ip_rate.map(Gcra::new),
            config,
            global_tat: None,
            ips: HashMap::new(),
            idle: BTreeSet::new(),
            open: 0,
            stats: AdmissionStats::default(),
        })
    }

    fn owner(&self) -> usize {
        std::ptr::from_ref::<u8>(&self.id) as usize
    }

    /// Decides whether a new connection from `ip` may be accepted at `now`.
    ///
    /// On success the connection is counted until its [`Permit`] is passed to
    /// [`release`](Admission::release). On rejection nothing changes except the statistics.
    pub fn try_admit(&mut self, ip: IpAddr, now: Instant) -> Result<Permit, Rejection> {
        let result = self.check(ip, now);
        match &result {
            Ok(_) => self.stats.admitted += 1,
            Err(Rejection::MaxConnections { .. }) => self.stats.rejected_max_connections += 1,
            Err(Rejection::MaxPerIp { .. }) => self.stats.rejected_max_per_ip += 1,
            Err(Rejection::RateLimited { .. }) => self.stats.rejected_rate += 1,
            Err(Rejection::IpRateLimited { .. }) => self.stats.rejected_ip_rate += 1,
            Err(Rejection::TooManyTrackedIps { .. }) => self.stats.rejected_table_full += 1,
        }
        result
    }

    fn check(&mut self, ip: IpAddr, now: Instant) -> Result<Permit, Rejection> {
        let limit = self.config.max_connections;
        if self.open >= limit {
            return Err(Rejection::MaxConnections { limit });
        }
        let entry = self.ips.get(&ip);
        let (open_for_ip, ip_tat) = entry.map_or((0, None), |e| (e.open, e.tat));
        let limit = self.config.max_per_ip;
        if open_for_ip >= limit {
            return Err(Rejection::MaxPerIp { ip, limit });
        }
        let new_ip_tat = match &self.per_ip {
            Some(gcra) => Some(
                gcra.check(ip_tat, now)
                    .map_err(|retry_at| Rejection::IpRateLimited { ip, retry_at })?,
            ),
            None => None,
        };
        let new_global_tat = match &self.global {
            Some(gcra) => Some(
                gcra.check(self.global_tat, now)
                    .map_err(|retry_at| Rejection::RateLimited { retry_at })?,
            ),
            None => None,
        };
        let victim = if entry.is_none() {
            self.make_room(now)?
        } else {
            None
        };

        // Every check passed: commit.
        if let Some(key) = victim {
            self.idle.remove(&key);
            self.ips.remove(&key.1);
        }
        if new_global_tat.is_some() {
            self.global_tat = new_global_tat;
        }
        let entry = self.ips.entry(ip).or_insert(IpEntry { open: 0, tat: None });
        if entry.open == 0 {
            if let Some(tat) = entry.tat {
                self.idle.remove(&(tat, ip));
            }
        }
        entry.open += 1;
        if new_ip_tat.is_some() {
            entry.tat = new_ip_tat;
        }
        self.open += 1;
        Ok(Permit {
            ip,
            owner: self.owner(),
            released: false,
        })
    }

    /// Ensures a new address fits in the table. Drops refilled idle entries (invisible: a
    /// refilled bucket behaves like a fresh one); returns an idle entry to evict if still full.
    fn make_room(&mut self, now: Instant) -> Result<Option<(Instant, IpAddr)>, Rejection> {
        let limit = self.config.max_tracked_ips;
        if self.ips.len() < limit {
            return Ok(None);
        }
        while let Some(&(full_at, ip)) = self.idle.first() {
            if full_at > now {
                break;
            }
            self.idle.pop_first();
            self.ips.remove(&ip);
        }
        if self.ips.len() < limit {
            return Ok(None);
        }
        match self.idle.first() {
            Some(&key) => Ok(Some(key)),
            None => Err(Rejection::TooManyTrackedIps { limit }),
        }
    }

    /// Gives back the slot held by `permit`. Consumes the permit, so it happens at most once.
    ///
    /// A permit issued by another `Admission` is consumed and ignored: it changes nothing here
    /// and its slot stays taken in the `Admission` that issued it.
    pub fn release(&mut self, mut permit: Permit) {
        permit.released = true;
        let ip = permit.ip;
        if permit.owner != self.owner() {
            return;
        }
        let Some(entry) = self.ips.get_mut(&ip) else {
            return;
        };
        if entry.open == 0 {
            return;
        }
        entry.open -= 1;
        self.open = self.open.saturating_sub(1);
        self.stats.released += 1;
        if entry.open == 0 {
            match entry.tat {
                // Keep the rate history until the bucket has refilled, which is at `tat`.
                Some(tat) if self.per_ip.is_some() => {
                    self.idle.insert((tat, ip));
                }
                _ => {
                    self.ips.remove(&ip);
                }
            }
        }
    }

    /// Connections currently admitted and not yet released.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open
    }

    /// Connections currently admitted for `ip`.
    #[must_use]
    pub fn open_for(&self, ip: IpAddr) -> usize {
        self.ips.get(&ip).map_or(0, |e| e.open)
    }

    /// Addresses currently held in the per-IP table (never above `max_tracked_ips`).
    #[must_use]
    pub fn tracked_ips(&self) -> usize {
        self.ips.len()
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// Counters since creation.
    #[must_use]
    pub fn stats(&self) -> AdmissionStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// (max_connections, max_per_ip, rate, per_ip_rate, max_tracked_ips)
    type Cfg = (usize, usize, Option<Rate>, Option<Rate>, usize);

    fn config(
        (max_connections, max_per_ip, rate, per_ip_rate, max_tracked_ips): Cfg,
    ) -> AdmissionConfig {
        AdmissionConfig {
            max_connections,
            max_per_ip,
            rate,
            per_ip_rate,
            max_tracked_ips,
        }
    }

    fn admission(c: Cfg) -> Admission {
        Admission::new(config(c)).expect("valid config")
    }

    fn rate(per_second: u32, burst: u32) -> Option<Rate> {
        Some(Rate::per_second(per_second).with_burst(burst))
    }

    fn err(a: &mut Admission, ip: IpAddr, now: Instant) -> Rejection {
        a.try_admit(ip, now).map(|p| a.release(p)).unwrap_err()
    }

    const D: Cfg = (100_000, 100, None, None, 65_536);

    #[test]
    fn defaults_match_lynn_tcp() {
        assert_eq!(AdmissionConfig::default(), config(D));
        assert_eq!(
            Rate::per_second(7),
            Rate {
                per_second: 7,
                burst: 7
            }
        );
        assert_eq!(Rate::per_second(7).with_burst(2).burst, 2);
    }

    #[test]
    fn invalid_configs_are_refused() {
        use AdmissionConfigError::*;
        let bad = |c: Cfg| Admission::new(config(c)).unwrap_err();
        assert_eq!(
            bad((0, 1, None, None, 1)),
            ZeroLimit {
                field: "max_connections"
            }
        );
        assert_eq!(
            bad((1, 0, None, None, 1)),
            ZeroLimit {
                field: "max_per_ip"
            }
        );
        assert_eq!(
            bad((1, 1, None, None, 0)),
            ZeroLimit {
                field: "max_tracked_ips"
            }
        );
        assert_eq!(bad((1, 1, rate(0, 1), None, 1)), ZeroRate { field: "rate" });
        assert_eq!(
            bad((1, 1, None, rate(5, 0), 1)),
            ZeroBurst {
                field: "per_ip_rate"
            }
        );
        assert!(Admission::new(config((1, 1, rate(1, 1), rate(1, 1), 1))).is_ok());
    }

    #[test]
    fn max_connections_rejects_without_side_effects() {
        let mut a = admission((2, 100, None, None, 100));
        let now = Instant::now();
        let p1 = a.try_admit(ip(1), now).unwrap();
        let p2 = a.try_admit(ip(2), now).unwrap();
        let e = err(&mut a, ip(3), now);
        assert_eq!(e, Rejection::MaxConnections { limit: 2 });
        assert_eq!((e.label(), e.retry_at()), ("max_connections", None));
        assert_eq!((a.open(), a.open_for(ip(3)), a.tracked_ips()), (2, 0, 2));
        a.release(p1);
        let p3 = a.try_admit(ip(3), now).unwrap();
        assert_eq!(p3.ip(), ip(3));
        a.release(p2);
        a.release(p3);
        let s = a.stats();
        assert_eq!(
            (s.admitted, s.released, s.rejected_max_connections),
            (3, 3, 1)
        );
        assert_eq!((a.open(), a.tracked_ips()), (0, 0));
    }

    #[test]
    fn max_per_ip_rejection_consumes_no_global_token() {
        let mut a = admission((100, 1, rate(1, 2), None, 100));
        let now = Instant::now();
        let p1 = a.try_admit(ip(1), now).unwrap();
        assert_eq!(
            err(&mut a, ip(1), now),
            Rejection::MaxPerIp {
                ip: ip(1),
                limit: 1
            }
        );
        let p2 = a
            .try_admit(ip(2), now)
            .expect("second global token still there");
        let e = err(&mut a, ip(3), now);
        assert_eq!(
            e,
            Rejection::RateLimited {
                retry_at: now + ms(1000)
            }
        );
        assert_eq!(
            (a.stats().rejected_max_per_ip, a.stats().rejected_rate),
            (1, 1)
        );
        a.release(p1);
        a.release(p2);
    }

    #[test]
    fn global_rate_burst_then_exact_retry_at() {
        let mut a = admission((100, 100, rate(10, 3), None, 100));
        let now = Instant::now();
        let mut held: Vec<Permit> = (1..=3).map(|n| a.try_admit(ip(n), now).unwrap()).collect();
        let e = err(&mut a, ip(4), now);
        assert_eq!(
            (e.retry_at(), e.label()),
            (Some(now + ms(100)), "rate_limited")
        );
        // One nanosecond early is still too early; at retry_at it succeeds, once.
        let early = now + ms(100) - Duration::from_nanos(1);
        assert!(matches!(
            err(&mut a, ip(4), early),
            Rejection::RateLimited { .. }
        ));
        held.push(a.try_admit(ip(4), now + ms(100)).unwrap());
        assert!(matches!(
            err(&mut a, ip(5), now + ms(100)),
            Rejection::RateLimited { .. }
        ));
        held.into_iter().for_each(|p| a.release(p));
    }

    #[test]
    fn per_ip_rate_is_independent_per_address() {
        let mut a = admission((100, 100, None, rate(2, 1), 100));
        let now = Instant::now();
        let p1 = a.try_admit(ip(1), now).unwrap();
        let e = err(&mut a, ip(1), now);
        assert_eq!(
            e,
            Rejection::IpRateLimited {
                ip: ip(1),
                retry_at: now + ms(500)
            }
        );
        assert_eq!(e.label(), "ip_rate_limited");
        let p2 = a.try_admit(ip(2), now).unwrap();
        let p3 = a.try_admit(ip(1), now + ms(500)).unwrap();
        assert_eq!(a.open_for(ip(1)), 2);
        [p1, p2, p3].into_iter().for_each(|p| a.release(p));
        // Idle entries keep their rate history until refilled.
        assert_eq!((a.open(), a.tracked_ips()), (0, 2));
        assert!(matches!(
            err(&mut a, ip(1), now + ms(600)),
            Rejection::IpRateLimited { .. }
        ));
    }

    #[test]
    fn global_rejection_consumes_no_per_ip_token() {
        let mut a = admission((100, 100, rate(2, 1), rate(1, 1), 100));
        let now = Instant::now();
        let p1 = a.try_admit(ip(1), now).unwrap();
        assert!(matches!(
            err(&mut a, ip(2), now),
            Rejection::RateLimited { .. }
        ));
        // Had the rejected attempt taken ip(2)'s token, this would be IpRateLimited.
        let p2 = a.try_admit(ip(2), now + ms(500)).unwrap();
        a.release(p1);
        a.release(p2);
    }

    #[test]
    fn table_full_of_open_addresses_rejects_new_ones() {
        let mut a = admission((100, 100, None, None, 2));
        let now = Instant::now();
        let p1 = a.try_admit(ip(1), now).unwrap();
        let p2 = a.try_admit(ip(2), now).unwrap();
        let p3 = a
            .try_admit(ip(2), now)
            .expect("known address needs no new entry");
        let e = err(&mut a, ip(3), now);
        assert_eq!(
            (e.clone(), e.label()),
            (
                Rejection::TooManyTrackedIps { limit: 2 },
                "too_many_tracked_ips"
            )
        );
        assert_eq!(a.stats().rejected_table_full, 1);
        a.release(p1); // no per-IP rate: the entry goes at once
        assert_eq!(a.tracked_ips(), 1);
        let p4 = a.try_admit(ip(3), now).unwrap();
        [p2, p3, p4].into_iter().for_each(|p| a.release(p));
        assert_eq!(a.tracked_ips(), 0);
    }

    #[test]
    fn full_table_drops_refilled_then_evicts_soonest_refilling_idle_entry() {
        let mut a = admission((100, 100, None, rate(1, 1), 2));
        let t0 = Instant::now();
        let p = a.try_admit(ip(1), t0).unwrap();
        a.release(p); // ip1 refills at t0+1000ms
        let p = a.try_admit(ip(2), t0 + ms(100)).unwrap();
        a.release(p); // ip2 refills at t0+1100ms
        assert_eq!(a.tracked_ips(), 2);
        // Nothing refilled yet: ip1 (refills soonest) is evicted for ip3.
        let p3 = a.try_admit(ip(3), t0 + ms(500)).unwrap();
        assert_eq!(a.tracked_ips(), 2);
        // ip2 keeps its history...
        assert!(matches!(
            err(&mut a, ip(2), t0 + ms(600)),
            Rejection::IpRateLimited { .. }
        ));
        // ...ip1 lost it (the price of bounded memory) and evicts ip2 in turn.
        let p1 = a.try_admit(ip(1), t0 + ms(600)).unwrap();
        assert_eq!(a.tracked_ips(), 2);
        // Both entries are open now: a new address is refused.
        let e = err(&mut a, ip(4), t0 + ms(5000));
        assert_eq!(e, Rejection::TooManyTrackedIps { limit: 2 });
        a.release(p1);
        a.release(p3);
        // Both refilled by t0+5s: they are dropped together to make room.
        let p4 = a.try_admit(ip(4), t0 + ms(5000)).unwrap();
        assert_eq!(a.tracked_ips(), 1);
        a.release(p4);
    }

    #[test]
    fn table_full_rejection_evicts_nothing_when_rate_limited() {
        let mut a = admission((100, 100, rate(1, 1), rate(1, 1), 1));
        let t0 = Instant::now();
        let p = a.try_admit(ip(1), t0).unwrap();
        a.release(p);
        assert!(matches!(
            err(&mut a, ip(2), t0 + ms(10)),
            Rejection::RateLimited { .. }
        ));
        // ip1's history survived the rejected attempt.
        assert_eq!(a.tracked_ips(), 1);
        assert!(matches!(
            err(&mut a, ip(1), t0 + ms(999)),
            Rejection::IpRateLimited { .. }
        ));
    }

    #[test]
    fn permit_from_another_admission_is_ignored() {
        let mut a = admission(D);
        let mut b = admission(D);
        let now = Instant::now();
        let pb = b.try_admit(ip(1), now).unwrap();
        let pa = a.try_admit(ip(1), now).unwrap();
        b.release(pa);
        assert_eq!((b.open(), b.open_for(ip(1)), b.stats().released), (1, 1, 0));
        b.release(pb);
        assert_eq!((b.open(), b.stats().released), (0, 1));
        assert_eq!(a.open(), 1); // leaked in `a`, by the caller's mistake
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "dropped without Admission::release")]
    fn dropping_a_permit_is_caught_in_debug_builds() {
        let mut a = admission(D);
        let permit = a.try_admit(ip(1), Instant::now()).unwrap();
        drop(permit);
    }

    #[test]
    fn rejections_display() {
        let r = Rejection::MaxPerIp {
            ip: ip(9),
            limit: 3,
        };
        assert_eq!(
            r.to_string(),
            "per-IP connection limit reached for 10.0.0.9 (3 open)"
        );
        assert_eq!(r.label(), "max_per_ip");
    }
}
