//! The admission target: connection counts, per-IP table and token-bucket rates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use crate::Instant;
use crate::admission::{Admission, AdmissionConfig, AdmissionConfigError, Permit, Rate, Rejection};

/// Number of distinct peer addresses the scenario uses.
const IPS: usize = 6;

/// A count limit: `0xff` stands for an invalid 0, anything else for `1 + n % modulus`.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Count(u8);

impl Count {
    fn get(self, modulus: u8) -> usize {
        if self.0 == 0xff {
            0
        } else {
            usize::from(1 + self.0 % modulus)
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct RateSpec {
    /// `0xffff`: an invalid 0; otherwise `1 + n % 50` per second.
    per_second: u16,
    burst: Count,
}

impl RateSpec {
    fn get(self) -> Rate {
        let per_second = if self.per_second == 0xffff {
            0
        } else {
            1 + u32::from(self.per_second % 50)
        };
        Rate {
            per_second,
            burst: self.burst.get(4) as u32,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Setup {
    max_connections: Count,
    max_per_ip: Count,
    rate: Option<RateSpec>,
    per_ip_rate: Option<RateSpec>,
    max_tracked_ips: Count,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Admit(u8),
    Release(u8),
    AdvanceMillis(u8),
    AdvanceNanos(u16),
    /// Move to the `retry_at` of the last rate rejection.
    RetryAt,
    /// Release a permit of another `Admission` here: it must change nothing.
    ForeignRelease(u8),
}

/// GCRA as documented: interval `ceil(1s / per_second)`, tolerance `(burst - 1) * interval`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    interval: Duration,
    tolerance: Duration,
    burst: u64,
}

impl Bucket {
    fn new(rate: Rate) -> Bucket {
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(rate.per_second)));
        Bucket {
            interval,
            tolerance: interval * (rate.burst - 1),
            burst: u64::from(rate.burst),
        }
    }

    /// New theoretical arrival time on admission, or the retry instant.
    fn check(&self, tat: Option<Instant>, now: Instant) -> Result<Instant, Instant> {
        let tat = tat.filter(|t| *t > now).unwrap_or(now);
        if tat - now <= self.tolerance {
            Ok(tat + self.interval)
        } else {
            Err(tat - self.tolerance)
        }
    }

    /// In any window, admissions never exceed `burst + window / interval`.
    fn check_window(&self, times: &[Instant], what: &str) {
        let Some((&last, earlier)) = times.split_last() else {
            return;
        };
        let interval = self.interval.as_nanos();
        for (i, &t) in earlier.iter().enumerate() {
            let count = (times.len() - i) as u128;
            let allowed = u128::from(self.burst) + (last - t).as_nanos() / interval;
            assert!(
                count <= allowed,
                "{what}: {count} admissions within {:?}, bucket allows {allowed}",
                last - t
            );
        }
    }
}

struct Model {
    config: AdmissionConfig,
    global: Option<Bucket>,
    per_ip: Option<Bucket>,
    /// Whether the per-IP table can never evict (so per-IP rate history is never lost).
    no_eviction: bool,
    permits: Vec<Permit>,
    open_ip: [usize; IPS],
    admitted: u64,
    released: u64,
    global_tat: Option<Instant>,
    ip_tat: [Option<Instant>; IPS],
    global_times: Vec<Instant>,
    ip_times: [Vec<Instant>; IPS],
}

fn ip(i: usize) -> IpAddr {
    match i {
        0..4 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)),
        _ => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i as u16)),
    }
}

pub(super) fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let setup = Setup::arbitrary(u)?;
    let ops = Vec::<Op>::arbitrary(u)?;
    let config = AdmissionConfig {
        max_connections: setup.max_connections.get(8),
        max_per_ip: setup.max_per_ip.get(4),
        rate: setup.rate.map(RateSpec::get),
        per_ip_rate: setup.per_ip_rate.map(RateSpec::get),
        max_tracked_ips: setup.max_tracked_ips.get(5),
    };
    let expected_error = config_error(&config);
    let mut admission = match Admission::new(config.clone()) {
        Ok(a) => {
            assert_eq!(expected_error, None, "invalid config accepted");
            a
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
    let start = Instant::now();
    let mut now = start;
    let mut last_retry = None;
    let mut foreign = Admission::new(AdmissionConfig::default()).expect("default config");
    let mut m = Model {
        global: config.rate.map(Bucket::new),
        per_ip: config.per_ip_rate.map(Bucket::new),
        no_eviction: config.max_tracked_ips >= IPS,
        config,
        permits: Vec::new(),
        open_ip: [0; IPS],
        admitted: 0,
        released: 0,
        global_tat: None,
        ip_tat: [None; IPS],
        global_times: Vec::new(),
        ip_times: Default::default(),
    };
    for op in ops {
        match op {
            Op::Admit(i) => {
                let i = usize::from(i) % IPS;
                let result = admission.try_admit(ip(i), now);
                if let Err(r) = &result {
                    last_retry = r.retry_at().or(last_retry);
                }
                m.on_admit(i, now, result);
            }
            Op::Release(k) => {
                if !m.permits.is_empty() {
                    let permit = m.permits.swap_remove(usize::from(k) % m.permits.len());
                    let i = (0..IPS).find(|&i| ip(i) == permit.ip()).expect("known ip");
                    admission.release(permit);
                    m.open_ip[i] -= 1;
                    m.released += 1;
                }
            }
            Op::AdvanceMillis(ms) => now += Duration::from_millis(u64::from(ms)),
            Op::AdvanceNanos(ns) => now += Duration::from_nanos(u64::from(ns)),
            Op::RetryAt => now = now.max(last_retry.unwrap_or(now)),
            Op::ForeignRelease(i) => {
                if let Ok(permit) = foreign.try_admit(ip(usize::from(i) % IPS), now) {
                    admission.release(permit);
                }
            }
        }
        m.check(&admission);
    }
    for permit in std::mem::take(&mut m.permits) {
        admission.release(permit);
        m.released += 1;
    }
    m.open_ip = [0; IPS];
    m.check(&admission);
    assert_eq!(
        admission.open(),
        0,
        "releasing every permit frees every slot"
    );
    if m.config.per_ip_rate.is_none() {
        assert_eq!(admission.tracked_ips(), 0, "no rate history to keep");
    }
    Ok(())
}

/// What [`Admission::new`] must say about `c`.
fn config_error(c: &AdmissionConfig) -> Option<AdmissionConfigError> {
    use AdmissionConfigError::*;
    for (field, value) in [
        ("max_connections", c.max_connections),
        ("max_per_ip", c.max_per_ip),
        ("max_tracked_ips", c.max_tracked_ips),
    ] {
        if value == 0 {
            return Some(ZeroLimit { field });
        }
    }
    for (field, rate) in [("rate", c.rate), ("per_ip_rate", c.per_ip_rate)] {
        match rate {
            Some(r) if r.per_second == 0 => return Some(ZeroRate { field }),
            Some(r) if r.burst == 0 => return Some(ZeroBurst { field }),
            _ => {}
        }
    }
    None
}

impl Model {
    fn open(&self) -> usize {
        self.open_ip.iter().sum()
    }

    fn open_ips(&self) -> usize {
        self.open_ip.iter().filter(|&&n| n > 0).count()
    }

    fn on_admit(&mut self, i: usize, now: Instant, result: Result<Permit, Rejection>) {
        let c = &self.config;
        // Count limits come first and are always predictable.
        let count_limit = if self.open() >= c.max_connections {
            Some(Rejection::MaxConnections {
                limit: c.max_connections,
            })
        } else if self.open_ip[i] >= c.max_per_ip {
            Some(Rejection::MaxPerIp {
                ip: ip(i),
                limit: c.max_per_ip,
            })
        } else {
            None
        };
        if let Some(expected) = count_limit {
            assert_eq!(result.as_ref().err(), Some(&expected));
            return;
        }
        // The per-IP bucket is predictable unless the table may have evicted its history.
        let ip_check = match (self.per_ip, self.no_eviction) {
            (Some(b), true) => Some(b.check(self.ip_tat[i], now)),
            _ => None,
        };
        let global_check = self.global.map(|b| b.check(self.global_tat, now));
        let table_full = self.open_ip[i] == 0 && self.open_ips() >= c.max_tracked_ips;
        match &result {
            Ok(permit) => {
                assert_eq!(permit.ip(), ip(i));
                assert!(!matches!(ip_check, Some(Err(_))), "per-IP rate exceeded");
                assert!(
                    !matches!(global_check, Some(Err(_))),
                    "global rate exceeded"
                );
                assert!(!table_full, "admitted past a table full of open addresses");
            }
            Err(Rejection::IpRateLimited { ip: rip, retry_at }) => {
                assert!(
                    self.per_ip.is_some(),
                    "per-IP rate rejection without a per-IP rate"
                );
                assert_eq!(*rip, ip(i));
                assert!(*retry_at > now, "retry_at must lie in the future");
                if let Some(check) = ip_check {
                    assert_eq!(check, Err(*retry_at), "per-IP rate rejection");
                }
            }
            Err(Rejection::RateLimited { retry_at }) => {
                assert!(*retry_at > now, "retry_at must lie in the future");
                assert!(
                    !matches!(ip_check, Some(Err(_))),
                    "per-IP rate is checked first"
                );
                assert_eq!(global_check, Some(Err(*retry_at)), "global rate rejection");
            }
            Err(Rejection::TooManyTrackedIps { limit }) => {
                assert_eq!(*limit, c.max_tracked_ips);
                assert!(table_full, "table not full of open addresses");
                assert!(
                    !matches!(ip_check, Some(Err(_))),
                    "per-IP rate is checked first"
                );
                assert!(
                    !matches!(global_check, Some(Err(_))),
                    "global rate is checked first"
                );
            }
            Err(other) => panic!("unexpected rejection {other:?}"),
        }
        // Exact decision when every limit is predictable.
        let predictable = self.per_ip.is_none() || self.no_eviction;
        if predictable {
            let should_admit = !matches!(ip_check, Some(Err(_)))
                && !matches!(global_check, Some(Err(_)))
                && !table_full;
            assert_eq!(result.is_ok(), should_admit, "decision differs: {result:?}");
        }
        let Ok(permit) = result else {
            return;
        };
        self.permits.push(permit);
        self.open_ip[i] += 1;
        self.admitted += 1;
        if let Some(Ok(tat)) = global_check {
            self.global_tat = Some(tat);
        }
        if let Some(Ok(tat)) = ip_check {
            self.ip_tat[i] = Some(tat);
        }
        if let Some(b) = self.global {
            self.global_times.push(now);
            b.check_window(&self.global_times, "global rate");
        }
        if let (Some(b), true) = (self.per_ip, self.no_eviction) {
            self.ip_times[i].push(now);
            b.check_window(&self.ip_times[i], "per-IP rate");
        }
    }

    fn check(&self, a: &Admission) {
        let c = &self.config;
        assert_eq!(a.open(), self.open(), "open == admitted - released");
        assert_eq!(self.open() as u64, self.admitted - self.released);
        for i in 0..IPS {
            assert_eq!(a.open_for(ip(i)), self.open_ip[i], "open_for({})", ip(i));
            assert!(self.open_ip[i] <= c.max_per_ip);
        }
        assert!(a.open() <= c.max_connections);
        assert!(
            a.tracked_ips() <= c.max_tracked_ips,
            "per-IP table over its bound"
        );
        assert!(
            a.tracked_ips() >= self.open_ips(),
            "open address not tracked"
        );
        if c.per_ip_rate.is_none() {
            assert_eq!(
                a.tracked_ips(),
                self.open_ips(),
                "idle entry kept without a rate"
            );
        }
        let stats = a.stats();
        assert_eq!(
            (stats.admitted, stats.released),
            (self.admitted, self.released)
        );
    }
}
