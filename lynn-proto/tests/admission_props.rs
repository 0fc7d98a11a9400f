//! Admission accounting properties, with simulated time only.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use lynn_proto::admission::{Admission, AdmissionConfig, Permit, Rate, Rejection};
use proptest::prelude::*;

const IPS: u8 = 4;

#[derive(Clone, Debug)]
enum Op {
    Admit(u8),
    Release(usize),
    AdvanceMs(u64),
    AdvanceNanos(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..IPS).prop_map(Op::Admit),
        2 => any::<usize>().prop_map(Op::Release),
        2 => (0u64..400).prop_map(Op::AdvanceMs),
        1 => (0u64..2_000_000).prop_map(Op::AdvanceNanos),
    ]
}

fn rate() -> impl Strategy<Value = Option<Rate>> {
    proptest::option::of((1u32..30, 1u32..5).prop_map(|(r, b)| Rate::per_second(r).with_burst(b)))
}

fn config() -> impl Strategy<Value = AdmissionConfig> {
    (
        1usize..10,
        1usize..5,
        rate(),
        rate(),
        1usize..=(IPS as usize + 1),
    )
        .prop_map(
            |(max_connections, max_per_ip, rate, per_ip_rate, max_tracked_ips)| AdmissionConfig {
                max_connections,
                max_per_ip,
                rate,
                per_ip_rate,
                max_tracked_ips,
            },
        )
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

/// GCRA bound: in any window [t_i, t_j], admissions <= burst + floor(w * per_second).
/// Exact (no +1): each admission pushes TAT by at least T >= 1s/per_second (T is rounded up),
/// and admission j needs t_j >= TAT - (burst - 1) T >= t_i + (j - i - burst + 1) T.
fn assert_window_bound(times: &[Duration], rate: Rate) -> Result<(), TestCaseError> {
    for i in 0..times.len() {
        for j in i..times.len() {
            let w = (times[j] - times[i]).as_nanos();
            let allowed = u128::from(rate.burst) + w * u128::from(rate.per_second) / 1_000_000_000;
            prop_assert!(
                (j - i + 1) as u128 <= allowed,
                "{} admissions in {w}ns exceed {allowed} for {rate:?}",
                j - i + 1
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accounting_limits_and_rates_hold(config in config(), ops in proptest::collection::vec(op(), 0..200)) {
        let base = Instant::now();
        let mut elapsed = Duration::ZERO;
        let mut a = Admission::new(config.clone()).unwrap();
        let mut held: Vec<Permit> = Vec::new();
        let mut global_times = Vec::new();
        let mut ip_times: Vec<Vec<Duration>> = vec![Vec::new(); IPS as usize];
        // Eviction forgets per-IP history by design; the per-IP bound holds when no entry can be evicted.
        let per_ip_exact = config.max_tracked_ips >= IPS as usize;

        for op in ops {
            let now = base + elapsed;
            match op {
                Op::AdvanceMs(ms) => elapsed += Duration::from_millis(ms),
                Op::AdvanceNanos(ns) => elapsed += Duration::from_nanos(ns),
                Op::Release(i) if !held.is_empty() => {
                    let p = held.swap_remove(i % held.len());
                    a.release(p);
                }
                Op::Release(_) => {}
                Op::Admit(n) => {
                    let addr = ip(n);
                    let (open, open_ip, tracked) = (a.open(), a.open_for(addr), a.tracked_ips());
                    let stats = a.stats();
                    match a.try_admit(addr, now) {
                        Ok(p) => {
                            prop_assert_eq!(p.ip(), addr);
                            held.push(p);
                            global_times.push(elapsed);
                            ip_times[n as usize].push(elapsed);
                        }
                        Err(rejection) => {
                            prop_assert_eq!((a.open(), a.open_for(addr)), (open, open_ip));
                            prop_assert_eq!(a.stats().admitted, stats.admitted);
                            match &rejection {
                                Rejection::MaxConnections { limit } => prop_assert_eq!(open, *limit),
                                Rejection::MaxPerIp { limit, .. } => prop_assert_eq!(open_ip, *limit),
                                Rejection::TooManyTrackedIps { limit } => {
                                    prop_assert_eq!(tracked, *limit);
                                    prop_assert_eq!(open_ip, 0);
                                }
                                Rejection::RateLimited { retry_at } => {
                                    prop_assert!(config.rate.is_some() && *retry_at > now);
                                }
                                Rejection::IpRateLimited { retry_at, .. } => {
                                    prop_assert!(config.per_ip_rate.is_some() && *retry_at > now);
                                }
                                other => prop_assert!(false, "unexpected {other:?}"),
                            }
                            // Without rate limits, count limits are the only reasons to refuse.
                            if config.rate.is_none() && config.per_ip_rate.is_none() {
                                prop_assert!(
                                    open >= config.max_connections
                                        || open_ip >= config.max_per_ip
                                        || (open_ip == 0 && tracked >= config.max_tracked_ips),
                                    "spurious {rejection:?}"
                                );
                            }
                        }
                    }
                }
            }

            let s = a.stats();
            prop_assert_eq!(a.open(), held.len());
            prop_assert_eq!(a.open() as u64, s.admitted - s.released);
            prop_assert!(a.open() <= config.max_connections);
            prop_assert!(a.tracked_ips() <= config.max_tracked_ips);
            for n in 0..IPS {
                let mine = held.iter().filter(|p| p.ip() == ip(n)).count();
                prop_assert_eq!(a.open_for(ip(n)), mine);
                prop_assert!(mine <= config.max_per_ip);
            }
        }

        if let Some(rate) = config.rate {
            assert_window_bound(&global_times, rate)?;
        }
        if let (Some(rate), true) = (config.per_ip_rate, per_ip_exact) {
            for times in &ip_times {
                assert_window_bound(times, rate)?;
            }
        }
        for p in held.drain(..) {
            a.release(p);
        }
        prop_assert_eq!(a.open(), 0);
        prop_assert_eq!(a.stats().admitted, a.stats().released);
        if config.per_ip_rate.is_none() {
            prop_assert_eq!(a.tracked_ips(), 0);
        }
    }

    /// A steady client at exactly the configured rate is never refused after its burst.
    #[test]
    fn steady_rate_is_always_admitted(per_second in 1u32..1000, burst in 1u32..10, n in 1usize..200) {
        let rate = Rate::per_second(per_second).with_burst(burst);
        let config = AdmissionConfig { rate: Some(rate), per_ip_rate: Some(rate), ..Default::default() };
        let mut a = Admission::new(config).unwrap();
        let base = Instant::now();
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(per_second)));
        for i in 0..n {
            let now = base + interval * i as u32;
            let p = a.try_admit(ip(1), now);
            prop_assert!(p.is_ok(), "refused at step {i}: {:?}", p.as_ref().err());
            a.release(p.unwrap());
        }
    }
}
