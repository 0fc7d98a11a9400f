//! A/B mode (`--addr-b`): two servers taking turns, slice by slice, in one run.
//!
//! The turns follow the clock: slice k of the run (each `--slice-ms` long, counted from the
//! run's start) belongs to A if k is even and to B if it is odd, so the connections of every
//! load thread agree on them without a word between them. The warm-up is a whole number of
//! pairs of slices, and so is the measurement: both sides get as many counted slices.

use super::*;

/// The run's slices.
#[derive(Clone, Copy)]
struct Slices {
    t0: Instant,
    slice_ns: u64,
    settle: Duration,
    /// The first counted slice (the warm-up's are before it); even, so A's.
    first: u64,
    /// The slice after the last counted one; the run ends where it begins.
    end: u64,
}

impl Slices {
    fn new(args: &Args, t0: Instant) -> Self {
        let slice = args.slice_ms / 1000.0;
        // Whole pairs of slices (A's, then B's), rounded up; 1e-9 so that 6 s of 200 ms
        // slices are 15 pairs whatever the rounding of 6 / 0.2.
        let pairs = |secs: f64| (secs / slice / 2.0 - 1e-9).ceil().max(0.0) as u64;
        let first = 2 * pairs(args.warmup);
        let end = first + 2 * pairs(args.seconds).max(1);
        Slices {
            t0,
            slice_ns: (args.slice_ms * 1e6) as u64,
            settle: Duration::from_secs_f64(settle_ms(args) / 1000.0),
            first,
            end,
        }
    }

    /// When slice `k` begins.
    fn start(&self, k: u64) -> Instant {
        self.t0 + Duration::from_nanos(k * self.slice_ns)
    }

    /// The slice `now` falls into.
    fn index(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.t0).as_nanos() as u64 / self.slice_ns
    }

    /// The time each side is counted: its slices after the settle time.
    fn counted_secs(&self) -> f64 {
        let per_slice = self.slice_ns as f64 / 1e9 - self.settle.as_secs_f64();
        (self.end - self.first) as f64 / 2.0 * per_slice
    }
}

/// The settle time in ms: `--settle-ms`, or 20 % of the slice but at least 10 ms. (With
/// 1,024 connections in model 1, a turn's first replies arrive ~8 ms into it and the rate
/// is steady from ~40 ms; with 64 connections, or in model 2, from ~10 ms.)
fn settle_ms(args: &Args) -> f64 {
    args.settle_ms.unwrap_or((args.slice_ms / 5.0).max(10.0))
}

/// The refusals particular to the A/B mode.
pub(super) fn check_args(a: &Args) -> Result<(), String> {
    let settle = settle_ms(a);
    if !(a.slice_ms >= 1.0 && a.slice_ms.is_finite()) {
        return Err(format!("--slice-ms must be at least 1\n{USAGE}"));
    }
    if !(0.0..a.slice_ms).contains(&settle) {
        return Err(format!(
            "--settle-ms must be at least 0 and less than --slice-ms ({settle} ms of a {} ms slice)",
            a.slice_ms
        ));
    }
    if a.warmup < 0.0 || a.seconds <= 0.0 {
        return Err(format!("--warmup ≥ 0 and --seconds > 0 please\n{USAGE}"));
    }
    Ok(())
}

/// One side's turns: sending in its slices, counting after their settle time.
#[derive(Clone, Copy)]
struct Side {
    slices: Slices,
    /// 0 for A, 1 for B.
    side: u64,
}

impl Gate for Side {
    fn step(&self, now: Instant) -> Step {
        let k = self.slices.index(now);
        if k >= self.slices.end {
            Step::End
        } else if k % 2 == self.side {
            Step::Send
        } else {
            Step::Wait(self.slices.start(k + 1))
        }
    }

    /// A pair of slices (A's, then B's) is a counted period.
    fn counts(&self, now: Instant) -> Option<usize> {
        let s = &self.slices;
        let k = s.index(now);
        let counted = k >= s.first
            && k < s.end
            && k % 2 == self.side
            && now.saturating_duration_since(s.start(k)) >= s.settle;
        counted.then(|| ((k - s.first) / 2) as usize)
    }

    fn periods(&self) -> usize {
        ((self.slices.end - self.slices.first) / 2) as usize
    }

    fn end(&self) -> Instant {
        self.slices.start(self.slices.end)
    }
}

/// CPU time process `pid` has spent so far, in ns: the sum of its threads' schedstat
/// (exact), else /proc/PID/stat (in 10 ms ticks).
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut sum = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        // A thread that is gone, or a kernel without schedstat.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
        sum = Some(sum.unwrap_or(0) + ns);
    }
    sum.or_else(|| {
        let t = cpu_times(&pid.to_string())?;
        Some(((t.user + t.system) * 1e9) as u64)
    })
}

/// The servers' CPU time over the counted periods.
struct CpuUse {
    /// `busy[s][p]`: ns of CPU of server `p` during side `s`'s counted periods.
    busy: [[Option<u64>; 2]; 2],
    /// `wall[s]`: ns of side `s`'s counted periods, as sampled.
    wall: [u64; 2],
}

impl CpuUse {
    /// The CPUs server `p` used during side `s`'s counted periods (1.0: one core); -1 if
    /// unknown.
    fn util(&self, s: usize, p: usize) -> f64 {
        match self.busy[s][p] {
            Some(ns) if self.wall[s] > 0 => ns as f64 / self.wall[s] as f64,
            _ => -1.0,
        }
    }
}

/// Samples both servers' CPU time at the edges of every counted period.
fn sample_cpu(args: &Args, s: &Slices) -> CpuUse {
    let pids = [args.server_pid, args.server_pid_b];
    let sample = || (Instant::now(), pids.map(|p| p.and_then(cpu_ns)));
    let sleep_until = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    let known = pids.map(|p| p.map(|_| 0));
    let mut cpu = CpuUse {
        busy: [known, known],
        wall: [0; 2],
    };
    for k in s.first..s.end {
        let side = (k % 2) as usize;
        sleep_until(s.start(k) + s.settle);
        let (w0, c0) = sample();
        sleep_until(s.start(k + 1));
        let (w1, c1) = sample();
        cpu.wall[side] += w1.saturating_duration_since(w0).as_nanos() as u64;
        for p in 0..2 {
            // Once unknown (a server gone), unknown for good.
            let busy = &mut cpu.busy[side][p];
            *busy = match (*busy, c0[p], c1[p]) {
                (Some(sum), Some(a), Some(b)) => Some(sum + b.saturating_sub(a)),
                _ => None,
            };
        }
    }
    cpu
}

/// One side's figures.
struct SideResult {
    name: &'static str,
    addr: SocketAddr,
    t: Totals,
    rps: f64,
    /// CPUs the side's server used in its counted periods, and in the other side's.
    server_cpu: f64,
    server_idle_cpu: f64,
    /// µs of server CPU per counted response; -1 if unknown.
    cpu_us: f64,
}

impl SideResult {
    fn json(&self) -> String {
        let t = &self.t;
        format!(
            "{{\"addr\":\"{}\",\"connected\":{},\"responses\":{},\"total_responses\":{},\
             \"rps\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\
             \"errors\":{},\"connect_errors\":{},\"stalled\":{},\"conn_min\":{},\"conn_p50\":{},\
             \"conn_max\":{},\"server_cpu\":{:.3},\"server_idle_cpu\":{:.3},\
             \"server_cpu_us_per_resp\":{:.4},\"slice_responses\":{:?},\"first_error\":\"{}\"}}",
            self.addr,
            t.connected,
            t.measured,
            t.total,
            self.rps,
            t.us(0.5),
            t.us(0.99),
            t.us(0.999),
            t.max_us(),
            t.errors,
            t.connect_errors,
            t.stalled,
            t.conn_q(0.0),
            t.conn_q(0.5),
            t.conn_q(1.0),
            self.server_cpu,
            self.server_idle_cpu,
            self.cpu_us,
            t.per_period,
            t.first_error_json()
        )
    }

    fn print(&self) {
        let t = &self.t;
        println!(
            "{} {}: responses/s {:.0} ({} counted, {} in all, {} connected)",
            self.name, self.addr, self.rps, t.measured, t.total, t.connected
        );
        println!(
            "  latency p50 {:.1} µs · p99 {:.1} µs · p99.9 {:.1} µs · max {:.1} µs",
            t.us(0.5),
            t.us(0.99),
            t.us(0.999),
            t.max_us()
        );
        println!(
            "  replies per connection: min {} · median {} · max {} · errors {} · connect \
             errors {} · stalled {}",
            t.conn_q(0.0),
            t.conn_q(0.5),
            t.conn_q(1.0),
            t.errors,
            t.connect_errors,
            t.stalled
        );
        if self.server_cpu >= 0.0 {
            println!(
                "  server CPU {:.2} in its turns ({:.3} µs per response), {:.2} in the other's",
                self.server_cpu, self.cpu_us, self.server_idle_cpu
            );
        }
        if let Some(e) = &t.first_error {
            println!("  first error: {e}");
        }
    }
}

/// Runs the A/B mode and prints both sides' figures and B's over A's.
pub(super) fn run_ab(args: Args) {
    let args = Arc::new(args);
    let addrs = vec![args.addr, args.addr_b.expect("A/B mode")];
    let (handles, t0) = start_load(&args, addrs.clone(), |args, t0| {
        let slices = Slices::new(args, t0);
        vec![Side { slices, side: 0 }, Side { slices, side: 1 }]
    });
    let s = Slices::new(&args, t0);
    std::thread::sleep(s.start(s.first).saturating_duration_since(Instant::now()));
    let own0 = cpu_times("self");
    let cpu = sample_cpu(&args, &s);
    let own1 = cpu_times("self");
    // The loadgen's CPU use over the measurement (both sides), in CPUs.
    let measured_secs = (s.end - s.first) as f64 * s.slice_ns as f64 / 1e9;
    let loadgen_cpu = match (own0, own1) {
        (Some(a), Some(b)) => (b.user + b.system - a.user - a.system) / measured_secs,
        _ => -1.0,
    };
    let counted = s.counted_secs();
    let sides: Vec<SideResult> = Totals::join(handles, 2)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let rps = t.measured as f64 / counted;
            let server_cpu = cpu.util(i, i);
            let cpu_us = if server_cpu >= 0.0 && rps > 0.0 {
                server_cpu / rps * 1e6
            } else {
                -1.0
            };
            SideResult {
                name: ["A", "B"][i],
                addr: addrs[i],
                t,
                rps,
                server_cpu,
                server_idle_cpu: cpu.util(1 - i, i),
                cpu_us,
            }
        })
        .collect();
    let (a, b) = (&sides[0], &sides[1]);
    let ratio = |x: f64, y: f64| if x > 0.0 && y > 0.0 { y / x } else { -1.0 };
    let rps_ratio = ratio(a.rps, b.rps);
    let p99_ratio = ratio(a.t.us(0.99), b.t.us(0.99));
    let cpu_ratio = ratio(a.cpu_us, b.cpu_us);
    // B's over A's slice by slice (each of B's slices with the A slice before it): their
    // median and quartiles shrug off the slices a co-tenant disturbed.
    let mut pairs: Vec<f64> = (a.t.per_period.iter().zip(&b.t.per_period))
        .filter(|&(&x, &y)| x > 0 && y > 0)
        .map(|(&x, &y)| y as f64 / x as f64)
        .collect();
    pairs.sort_by(f64::total_cmp);
    let pair_q = |q: f64| match pairs.len() {
        0 => -1.0,
        n => {
            // Linear interpolation between the closest ranks.
            let r = q * (n - 1) as f64;
            let (i, f) = (r.floor() as usize, r.fract());
            pairs[i] + f * (pairs[(i + 1).min(n - 1)] - pairs[i])
        }
    };
    let (pair_q1, pair_med, pair_q3) = (pair_q(0.25), pair_q(0.5), pair_q(0.75));
    let slices = s.end - s.first;
    let settle = s.settle.as_secs_f64() * 1000.0;
    if args.json {
        println!(
            "{{\"mode\":\"ab\",\"model\":{},\"connections\":{},\"window\":{},\"body\":{},\
             \"seconds\":{},\"slice_ms\":{},\"settle_ms\":{},\"slices\":{},\
             \"counted_seconds\":{:.3},\"loadgen_cpu\":{:.2},\"ratio_b_over_a\":{:.4},\
             \"pair_ratio_median\":{:.4},\"pair_ratio_q1\":{:.4},\"pair_ratio_q3\":{:.4},\
             \"p99_ratio_b_over_a\":{:.4},\"cpu_per_resp_ratio_b_over_a\":{:.4},\
             \"a\":{},\"b\":{}}}",
            args.model,
            args.connections,
            args.window,
            args.body,
            measured_secs,
            args.slice_ms,
            settle,
            slices,
            counted,
            loadgen_cpu,
            rps_ratio,
            pair_med,
            pair_q1,
            pair_q3,
            p99_ratio,
            cpu_ratio,
            a.json(),
            b.json()
        );
    } else {
        println!(
            "A/B · model {} · {} connections to each · window {} · body {} B · {} slices of \
             {} ms ({} ms settle), {:.2} s counted per side",
            args.model,
            args.connections,
            args.window,
            args.body,
            slices,
            args.slice_ms,
            settle,
            counted
        );
        a.print();
        b.print();
        println!(
            "B / A: responses/s {rps_ratio:.4}× (slice by slice: median {pair_med:.4}×, \
             quartiles {pair_q1:.4}× – {pair_q3:.4}×) · p99 {p99_ratio:.3}× · server CPU \
             per response {cpu_ratio:.3}× · loadgen CPU {loadgen_cpu:.2}"
        );
    }
    if a.t.all_errors() + b.t.all_errors() > 0 {
        std::process::exit(2);
    }
}
