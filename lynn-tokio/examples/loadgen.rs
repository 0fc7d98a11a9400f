//! Loopback load generator for lynn_tcp-compatible echo servers (lynn_tcp's two models).
//!
//! - Model 1: each connection sends one request and waits for its reply, then sends the next.
//! - Model 2: each connection keeps `--window` requests in flight; the replies of one read are
//!   replaced by new requests leaving in one write.
//!
//! Every reply is checked: an echo is the request's frame byte for byte (marks, length,
//! kind, method, body), so each reply must equal the frame of the oldest unanswered request
//! (each body carries the connection's index and a sequence number: in order, and never
//! another connection's). A reply that differs is described with lynn_proto's decoder.
//! Replies received inside the measurement window (after `--warmup`) count towards
//! responses/s and the latency histogram.
//!
//! ```text
//! cargo run --release -p lynn-tokio --example loadgen -- \
//!     --addr 127.0.0.1:9177 --connections 256 --model 2 --window 16 --seconds 3 --json
//! ```
//!
//! `--idle N` instead opens N connections (optionally `--ping` once each), prints `ready`,
//! and holds them for `--seconds`, for measuring a server's memory per idle connection.
//!
//! lynn servers admit at most 100 connections per IP by default, so connections to a
//! loopback address are spread over source addresses 127.0.0.1, 127.0.0.2, … with at most
//! `--per-ip` (default 50) on each; `--per-ip 0` keeps the kernel's choice.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use lynn_proto::codec::{Decoder, FrameKind, HEADER_LEN, OVERHEAD, TAIL_LEN, encode};
use lynn_proto::{Instant, Marks};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const METHOD: u16 = 1;
const MAX_FRAME: u64 = 16 * 1024 * 1024;
const READ_RESERVE: usize = 64 * 1024;
/// Connects in flight at once per thread.
const CONNECT_BATCH: usize = 256;

#[derive(Clone, Debug)]
struct Args {
    addr: SocketAddr,
    connections: usize,
    seconds: f64,
    warmup: f64,
    body: usize,
    window: usize,
    model: u8,
    json: bool,
    threads: usize,
    per_ip: usize,
    idle: Option<usize>,
    ping: bool,
    server_pid: Option<u32>,
}

const USAGE: &str = "usage: loadgen [--addr HOST:PORT] [--connections N] [--seconds S] \
[--warmup S] [--body BYTES] [--window W] [--model 1|2] [--threads T] [--per-ip K] \
[--server-pid PID] [--json] \
| --idle N [--ping] [--seconds S]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:9177".parse().unwrap(),
        connections: 64,
        seconds: 3.0,
        warmup: 1.0,
        body: 128,
        window: 16,
        model: 1,
        json: false,
        threads: 1,
        per_ip: 50,
        idle: None,
        ping: false,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--addr" => a.addr = value()?.parse().map_err(|e| bad(&e))?,
            "--connections" => a.connections = value()?.parse().map_err(|e| bad(&e))?,
            "--seconds" => a.seconds = value()?.parse().map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = value()?.parse().map_err(|e| bad(&e))?,
            "--body" => a.body = value()?.parse().map_err(|e| bad(&e))?,
            "--window" => a.window = value()?.parse().map_err(|e| bad(&e))?,
            "--model" => a.model = value()?.parse().map_err(|e| bad(&e))?,
            "--threads" => a.threads = value()?.parse().map_err(|e| bad(&e))?,
            "--per-ip" => a.per_ip = value()?.parse().map_err(|e| bad(&e))?,
            "--idle" => a.idle = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--ping" => a.ping = true,
            "--server-pid" => a.server_pid = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--json" => a.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.model == 1 {
        a.window = 1;
    }
    if !(a.model == 1 || a.model == 2) || a.window == 0 || a.threads == 0 {
        return Err(format!(
            "--model must be 1 or 2, --window and --threads ≥ 1\n{USAGE}"
        ));
    }
    if let Some(n) = a.idle {
        a.connections = n;
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------
// Latency histogram: log-linear buckets (32 per power of two, ≤ 3.2 % relative error), in
// nanoseconds, fixed size, no allocation while recording.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros(); // ≥ SUB_BITS
        let m = (v >> (e - SUB_BITS)) as usize & (SUB - 1);
        (e - SUB_BITS + 1) as usize * SUB + m
    }

    /// The largest value that falls into bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let e = (i / SUB) as u32 + SUB_BITS - 1;
        let m = (i % SUB) as u64;
        (((SUB as u64 + m + 1) << (e - SUB_BITS)) - 1).max(1)
    }

    fn record_n(&mut self, v: u64, n: u64) {
        self.counts[Self::index(v)] += n;
        self.total += n;
        self.max = self.max.max(v);
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }

    /// The value at quantile `q` (bucket upper bound, capped by the maximum seen).
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
}

// ---------------------------------------------------------------------------------------

/// What the connections of one thread record (one thread, so `Rc<RefCell<_>>`).
struct Stats {
    hist: Histogram,
    /// Replies received inside the measurement window.
    measured: u64,
    /// All checked replies, warm-up and tail included.
    total: u64,
    errors: u64,
    /// Per connection: send time of its oldest unanswered request.
    oldest_pending: Vec<Option<Instant>>,
    /// Per connection: replies received inside the measurement window (fairness).
    per_conn: Vec<u64>,
    first_error: Option<String>,
}

impl Stats {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// The body of request `seq` on connection `conn`: seq (8 bytes LE), conn (4 bytes LE),
/// then 0xa5 bytes (truncated to the body's length).
fn fill_body(buf: &mut [u8], conn: u32, seq: u64) {
    let mut head = [0u8; 12];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8..].copy_from_slice(&conn.to_le_bytes());
    let n = buf.len().min(12);
    buf[..n].copy_from_slice(&head[..n]);
    buf[n..].fill(0xa5);
}

/// Only the sequence number changes between requests of one connection.
fn set_seq(buf: &mut [u8], seq: u64) {
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
}

fn source_ip(args: &Args, index: usize) -> Option<IpAddr> {
    match args.addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && args.per_ip > 0 => {
            let n = u32::from(Ipv4Addr::new(127, 0, 0, 1)) + (index / args.per_ip) as u32;
            Some(IpAddr::V4(Ipv4Addr::from(n)))
        }
        _ => None,
    }
}

async fn connect(args: &Args, index: usize) -> std::io::Result<TcpStream> {
    let socket = if args.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source_ip(args, index) {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(args.addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Connects this thread's share of connections (`indices`), a batch at a time.
async fn connect_all(args: &Args, indices: &[usize]) -> (Vec<(usize, TcpStream)>, Vec<String>) {
    let mut streams = Vec::with_capacity(indices.len());
    let mut errors = Vec::new();
    for batch in indices.chunks(CONNECT_BATCH) {
        let mut set = tokio::task::JoinSet::new();
        for &i in batch {
            let args = args.clone();
            set.spawn_local(async move { (i, connect(&args, i).await) });
        }
        while let Some(res) = set.join_next().await {
            match res {
                Ok((i, Ok(s))) => streams.push((i, s)),
                Ok((i, Err(e))) => errors.push(format!("connect #{i}: {e}")),
                Err(e) => errors.push(format!("connect task: {e}")),
            }
        }
    }
    (streams, errors)
}

/// One connection's request/reply loop until the window ends.
///
/// It spends as few instructions per reply as it can, so that a run measures the server and
/// not the loadgen: a request is a copy of the connection's frame with its sequence number
/// patched in (nothing is encoded per request), and since an echo is that frame byte for
/// byte, a reply is checked with one comparison where it lies in the read buffer. Only a
/// reply that differs goes through lynn-proto's decoder, to say what is wrong with it.
async fn drive(
    mut stream: TcpStream,
    conn: u32,
    slot: usize,
    args: Arc<Args>,
    window: Window,
    stats: Rc<RefCell<Stats>>,
) {
    let mut body = vec![0u8; args.body];
    fill_body(&mut body, conn, 0);
    let mut expect = BytesMut::new();
    encode(
        Marks::default(),
        FrameKind::Message,
        METHOD,
        &body,
        MAX_FRAME,
        &mut expect,
    )
    .expect("request fits");
    let len = expect.len();
    let mut out = expect.repeat(args.window);
    // Room for a whole frame behind any partial one.
    let mut inbuf = vec![0u8; READ_RESERVE.max(2 * len)];
    let (mut start, mut end) = (0usize, 0usize);
    // Send times in nanoseconds since `base`, oldest first.
    let base = Instant::now();
    let since = |t: Instant| t.saturating_duration_since(base).as_nanos() as u64;
    let mut sent_at: VecDeque<u64> = VecDeque::with_capacity(args.window);
    let (mut next_seq, mut expect_seq) = (0u64, 0u64);
    let mut refill = args.window;
    loop {
        // Send `refill` new requests in one write.
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        let t = since(now);
        for frame in out.chunks_exact_mut(len).take(refill) {
            set_seq(&mut frame[HEADER_LEN..len - TAIL_LEN], next_seq);
            next_seq += 1;
            sent_at.push_back(t);
        }
        if let Err(e) = stream.write_all(&out[..refill * len]).await {
            stats.borrow_mut().error(format!("write: {e}"));
            return;
        }
        stats.borrow_mut().oldest_pending[slot] = Some(base + Duration::from_nanos(sent_at[0]));
        refill = 0;
        // Read until at least one reply arrived.
        while refill == 0 {
            if inbuf.len() - end < len {
                inbuf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            }
            match stream.read(&mut inbuf[end..]).await {
                Ok(0) => {
                    let mut st = stats.borrow_mut();
                    st.error("server closed the connection".into());
                    return;
                }
                Ok(n) => end += n,
                Err(e) => {
                    stats.borrow_mut().error(format!("read: {e}"));
                    return;
                }
            }
            let now = Instant::now();
            let (t, in_window) = (since(now), now >= window.start && now < window.end);
            let mut st = stats.borrow_mut();
            loop {
                set_seq(&mut expect[HEADER_LEN..len - TAIL_LEN], expect_seq);
                let have = (end - start).min(len);
                if inbuf[start..start + have] != expect[..have] {
                    st.error(mismatch(conn, expect_seq, &inbuf[start..end]));
                    return;
                }
                if have < len {
                    break;
                }
                start += len;
                let Some(t0) = sent_at.pop_front() else {
                    st.error("reply without a request".into());
                    return;
                };
                if in_window {
                    st.hist.record_n(t.saturating_sub(t0), 1);
                }
                expect_seq += 1;
                refill += 1;
            }
            if start == end {
                (start, end) = (0, 0);
            }
            st.total += refill as u64;
            if in_window {
                st.measured += refill as u64;
                st.per_conn[slot] += refill as u64;
            }
            st.oldest_pending[slot] = sent_at.front().map(|&t| base + Duration::from_nanos(t));
        }
    }
    stats.borrow_mut().oldest_pending[slot] = None;
}

/// Says what is wrong with `got`, the bytes where reply `seq` of connection `conn` was due
/// (and which differ from the request's frame).
fn mismatch(conn: u32, seq: u64, got: &[u8]) -> String {
    let mut decoder = Decoder::new(Marks::default(), MAX_FRAME);
    match decoder.decode(&mut BytesMut::from(got)) {
        Err(e) => format!("conn {conn}: bad frame: {e}"),
        Ok(None) => format!("conn {conn}: reply {seq} begins unlike the request's frame"),
        Ok(Some(frame)) => format!(
            "conn {conn}: reply {seq} is not the request's echo (kind {:?}, method {}, {} bytes)",
            frame.kind,
            frame.method,
            frame.body.len()
        ),
    }
}

struct ThreadResult {
    stats: Stats,
    connected: usize,
    connect_errors: Vec<String>,
    stalled: usize,
}

/// Connects this thread's connections, waits for all threads, runs the load.
fn run_thread(
    args: Arc<Args>,
    indices: Vec<usize>,
    barrier: Arc<Barrier>,
    start: Arc<OnceLock<Instant>>,
) -> ThreadResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let (streams, connect_errors) = local.block_on(&rt, connect_all(&args, &indices));
    if barrier.wait().is_leader() {
        let _ = start.set(Instant::now());
    }
    barrier.wait();
    let t0 = *start.get().expect("set by the leader");
    let window = Window {
        start: t0 + Duration::from_secs_f64(args.warmup),
        end: t0 + Duration::from_secs_f64(args.warmup + args.seconds),
    };
    let connected = streams.len();
    let stats = Rc::new(RefCell::new(Stats {
        hist: Histogram::new(),
        measured: 0,
        total: 0,
        errors: 0,
        oldest_pending: vec![None; connected],
        per_conn: vec![0; connected],
        first_error: None,
    }));
    for (slot, (i, s)) in streams.into_iter().enumerate() {
        let fut = drive(s, i as u32, slot, args.clone(), window, stats.clone());
        local.spawn_local(fut);
    }
    // Run to the end of the window plus a grace period for in-flight replies; then the
    // runtime is dropped, cancelling whatever still waits.
    let grace = window.end + Duration::from_millis(500);
    local.block_on(&rt, async { tokio::time::sleep_until(grace.into()).await });
    drop(local);
    drop(rt);
    let stats = Rc::try_unwrap(stats)
        .ok()
        .expect("tasks dropped")
        .into_inner();
    // A connection whose oldest request is older than a second at the end is stalled.
    let stalled = stats
        .oldest_pending
        .iter()
        .filter(|t| t.is_some_and(|t| t + Duration::from_secs(1) < window.end))
        .count();
    ThreadResult {
        stats,
        connected,
        connect_errors,
        stalled,
    }
}

fn run_load(args: Args) {
    let args = Arc::new(args);
    // The load threads and this one, which samples CPU time at the window's edges.
    let barrier = Arc::new(Barrier::new(args.threads + 1));
    let start = Arc::new(OnceLock::new());
    let handles: Vec<_> = (0..args.threads)
        .map(|t| {
            let indices: Vec<usize> = (t..args.connections).step_by(args.threads).collect();
            let (args, barrier, start) = (args.clone(), barrier.clone(), start.clone());
            std::thread::spawn(move || run_thread(args, indices, barrier, start))
        })
        .collect();
    if barrier.wait().is_leader() {
        let _ = start.set(Instant::now());
    }
    barrier.wait();
    let t0 = *start.get().expect("set by the leader");
    let sleep_until = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    sleep_until(t0 + Duration::from_secs_f64(args.warmup));
    let own0 = cpu_times("self");
    let server0 = args.server_pid.and_then(|p| cpu_times(&p.to_string()));
    sleep_until(t0 + Duration::from_secs_f64(args.warmup + args.seconds));
    let own1 = cpu_times("self");
    let server1 = args.server_pid.and_then(|p| cpu_times(&p.to_string()));
    // CPU use over the window, in CPUs (1.0 = one core busy all the time), and the share
    // of it spent in user space (the rest is the kernel's); -1 if unknown.
    let util = |a: Option<CpuTimes>, b: Option<CpuTimes>| match (a, b) {
        (Some(a), Some(b)) => {
            let (user, system) = (b.user - a.user, b.system - a.system);
            let busy = user + system;
            let share = if busy > 0.0 { user / busy } else { -1.0 };
            (busy / args.seconds, share)
        }
        _ => (-1.0, -1.0),
    };
    let ((loadgen_cpu, loadgen_user), (server_cpu, server_user)) =
        (util(own0, own1), util(server0, server1));
    let mut hist = Histogram::new();
    let (mut measured, mut total, mut errors, mut connected, mut stalled) = (0, 0, 0, 0, 0);
    let mut connect_errors = 0;
    let mut first_error: Option<String> = None;
    let mut per_conn = Vec::with_capacity(args.connections);
    for h in handles {
        let r = h.join().expect("load thread panicked");
        per_conn.extend_from_slice(&r.stats.per_conn);
        hist.merge(&r.stats.hist);
        measured += r.stats.measured;
        total += r.stats.total;
        errors += r.stats.errors;
        connected += r.connected;
        stalled += r.stalled;
        connect_errors += r.connect_errors.len();
        if first_error.is_none() {
            first_error = r.connect_errors.into_iter().next().or(r.stats.first_error);
        }
    }
    let rps = measured as f64 / args.seconds;
    // Fairness: replies per connection in the window, the least served, median and most.
    per_conn.sort_unstable();
    let conn_q = |q: f64| {
        let i = ((per_conn.len() as f64 - 1.0) * q).round() as usize;
        per_conn.get(i).copied().unwrap_or(0)
    };
    let (conn_min, conn_p50, conn_max) = (conn_q(0.0), conn_q(0.5), conn_q(1.0));
    let us = |q: f64| hist.quantile(q) as f64 / 1000.0;
    let all_errors = errors + connect_errors as u64 + stalled as u64;
    if args.json {
        let first = first_error
            .as_deref()
            .unwrap_or("")
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        println!(
            "{{\"model\":{},\"connections\":{},\"connected\":{},\"window\":{},\"body\":{},\
             \"seconds\":{},\"responses\":{},\"total_responses\":{},\"rps\":{:.1},\
             \"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\
             \"errors\":{},\"connect_errors\":{},\"stalled\":{},\"loadgen_cpu\":{:.2},\
             \"server_cpu\":{:.2},\"loadgen_user\":{:.2},\"server_user\":{:.2},\"conn_min\":{},\"conn_p50\":{},\"conn_max\":{},\
             \"first_error\":\"{}\"}}",
            args.model,
            args.connections,
            connected,
            args.window,
            args.body,
            args.seconds,
            measured,
            total,
            rps,
            us(0.5),
            us(0.99),
            us(0.999),
            hist.max as f64 / 1000.0,
            errors,
            connect_errors,
            stalled,
            loadgen_cpu,
            server_cpu,
            loadgen_user,
            server_user,
            conn_min,
            conn_p50,
            conn_max,
            first
        );
    } else {
        println!(
            "model {} · {} connections ({} connected) · window {} · body {} B · {} s",
            args.model, args.connections, connected, args.window, args.body, args.seconds
        );
        println!("responses/s {rps:.0} ({measured} in the window, {total} in all)");
        println!(
            "latency p50 {:.1} µs · p99 {:.1} µs · p99.9 {:.1} µs · max {:.1} µs",
            us(0.5),
            us(0.99),
            us(0.999),
            hist.max as f64 / 1000.0
        );
        println!("replies per connection: min {conn_min} · median {conn_p50} · max {conn_max}");
        println!("errors {errors} · connect errors {connect_errors} · stalled {stalled}");
        println!(
            "CPU over the window: loadgen {loadgen_cpu:.2} ({loadgen_user:.2} of it in user \
             space) · server {server_cpu:.2} ({server_user:.2})"
        );
        if let Some(e) = first_error {
            println!("first error: {e}");
        }
    }
    if all_errors > 0 {
        std::process::exit(2);
    }
}

/// CPU seconds a process has spent so far, in user space and in the kernel.
#[derive(Clone, Copy)]
struct CpuTimes {
    user: f64,
    system: f64,
}

/// The CPU times of process `pid` ("self" for this one), from /proc.
fn cpu_times(pid: &str) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let seconds = |i: usize| Some(f.get(i)?.parse::<f64>().ok()? / 100.0); // USER_HZ is 100
    Some(CpuTimes {
        user: seconds(11)?,
        system: seconds(12)?,
    })
}

/// Opens `--idle` connections (pinging each once with `--ping`), says `ready`, holds them.
fn run_idle(args: Args) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let indices: Vec<usize> = (0..args.connections).collect();
    let (mut streams, errors) = local.block_on(&rt, connect_all(&args, &indices));
    let mut ping_errors = 0;
    if args.ping {
        let results = local.block_on(&rt, async {
            let mut set = tokio::task::JoinSet::new();
            for (i, mut s) in streams.drain(..) {
                let body = args.body;
                set.spawn_local(async move { (ping(&mut s, i as u32, body).await, s) });
            }
            let mut back = Vec::new();
            while let Some(r) = set.join_next().await {
                back.push(r.expect("ping task"));
            }
            back
        });
        for (res, s) in results {
            if res.is_err() {
                ping_errors += 1;
            }
            streams.push((0, s));
        }
    }
    println!(
        "ready connected={} connect_errors={} ping_errors={}",
        streams.len(),
        errors.len(),
        ping_errors
    );
    if let Some(e) = errors.first() {
        eprintln!("first connect error: {e}");
    }
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    drop(streams);
}

/// One request and its checked echo.
async fn ping(s: &mut TcpStream, conn: u32, body_len: usize) -> Result<(), String> {
    let marks = Marks::default();
    let mut body = vec![0u8; body_len];
    fill_body(&mut body, conn, 0);
    let mut out = BytesMut::new();
    encode(
        marks,
        FrameKind::Message,
        METHOD,
        &body,
        MAX_FRAME,
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut inbuf = BytesMut::with_capacity(OVERHEAD + body_len);
    let mut decoder = Decoder::new(marks, MAX_FRAME);
    loop {
        if s.read_buf(&mut inbuf).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed".into());
        }
        if let Some(f) = decoder.decode(&mut inbuf).map_err(|e| e.to_string())? {
            return if f.body[..] == body[..] {
                Ok(())
            } else {
                Err("wrong echo".into())
            };
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if args.idle.is_some() {
        run_idle(args);
    } else {
        run_load(args);
    }
}
