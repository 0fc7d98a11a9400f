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
//! cargo run --release -p lynn-bench --bin loadgen -- \
//!     --addr 127.0.0.1:9177 --connections 256 --model 2 --window 16 --seconds 3 --json
//! ```
//!
//! `--idle N` instead opens N connections (optionally `--ping` once each), prints `ready`,
//! and holds them for `--seconds`, for measuring a server's memory per idle connection.
//!
//! `--tls-ca PEM` speaks TLS 1.3 to the server(s), verified against the CA certificates in
//! PEM as `127.0.0.1` (or whatever IP `--addr` has): a full handshake per connection, or
//! resumed ones with `--tls-resume`. `--handshakes N` instead measures connection setup:
//! connect (and handshake), one checked echo, close, N times over `--connections`
//! concurrent connections (see `handshakes.rs`).
//!
//! lynn servers admit at most 100 connections per IP by default, so connections to a
//! loopback address are spread over source addresses 127.0.0.1, 127.0.0.2, … with at most
//! `--per-ip` (default 50) on each; `--per-ip 0` keeps the kernel's choice.
//!
//! # A/B mode
//!
//! Two servers measured in separate runs on a machine whose speed drifts (other tenants,
//! frequency changes) differ by the drift as much as by anything else. `--addr-b` measures
//! two servers in one run instead: `--connections` connections to each, server A
//! (`--addr`) and server B (`--addr-b`) taking turns every `--slice-ms` (default 200 ms),
//! through the warm-up and `--seconds` of measurement (rounded to whole pairs of slices).
//! While a side is off, its connections send nothing new (model 1: the next request waits
//! for the side's next slice; model 2: the window is not refilled), so its server goes
//! idle; the replies still due arrive and are checked as usual. A side's replies count
//! (responses/s, latency, replies per connection) only when received in its own slice at
//! least `--settle-ms` (default 20 % of the slice, at least 10 ms) after the slice began,
//! and its responses/s is over that counted time. Both sides thus see the same machine,
//! slice by slice, and `ratio_b_over_a` (responses/s of B over A) keeps only what differs
//! between the servers. `--server-pid` / `--server-pid-b` add each server's CPU time per
//! response over its counted time (from /proc/PID/task/*/schedstat, sampled at the edges
//! of every counted period), and how much CPU it used in the other's (≈ 0 if the settle
//! time covers the other's drain). Each side's counted replies per slice are listed
//! (`slice_responses`); `pair_ratio_median` is the median of B's slice over the A slice
//! before it, which a few slices disturbed by something else on the machine do not move.
//! `bench/ab` runs the servers of `bench/run` this way, against the baseline.
//!
//! ```text
//! taskset -c 1 target/release/loadgen --addr 127.0.0.1:19301 \
//!     --addr-b 127.0.0.1:19302 --connections 256 --model 2 --window 16 --seconds 6 \
//!     --server-pid 1234 --server-pid-b 1235 --json
//! ```
//!
//! The phases follow the clock (slice k of the run belongs to A if k is even), so every
//! load thread agrees on them without talking to the others and `--threads` works as usual.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use lynn_proto::codec::{Decoder, FrameKind, HEADER_LEN, TAIL_LEN, encode};
use lynn_proto::{Instant, Marks};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls::ClientConfig;

use conn::{Conn, connect};
use histogram::Histogram;

mod ab;
mod conn;
mod handshakes;
mod histogram;
mod idle;

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
    /// A/B mode: the second server.
    addr_b: Option<SocketAddr>,
    server_pid_b: Option<u32>,
    slice_ms: f64,
    /// Unset: 20 % of the slice, at least 10 ms.
    settle_ms: Option<f64>,
    /// TLS (`--tls-ca`): the configuration every connection's session is made from.
    tls: Option<Arc<ClientConfig>>,
    /// `--tls-resume`: TLS sessions may be resumed.
    tls_resume: bool,
    /// `--handshakes N`: connection setups to measure.
    handshakes: Option<usize>,
}

const USAGE: &str = "usage: loadgen [--addr HOST:PORT] [--connections N] [--seconds S] \
[--warmup S] [--body BYTES] [--window W] [--model 1|2] [--threads T] [--per-ip K] \
[--server-pid PID] [--json] \
[--addr-b HOST:PORT [--server-pid-b PID] [--slice-ms MS] [--settle-ms MS]] \
[--tls-ca PEM [--tls-resume]] | --idle N [--ping] [--seconds S] \
| --handshakes N [--connections C] [--threads T] [--server-pid PID] [--json]";

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
        addr_b: None,
        server_pid_b: None,
        slice_ms: 200.0,
        settle_ms: None,
        tls: None,
        tls_resume: false,
        handshakes: None,
    };
    let mut tls_ca = None::<PathBuf>;
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
            "--addr-b" => a.addr_b = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--server-pid-b" => a.server_pid_b = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--slice-ms" => a.slice_ms = value()?.parse().map_err(|e| bad(&e))?,
            "--settle-ms" => a.settle_ms = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--tls-ca" => tls_ca = Some(value()?.into()),
            "--tls-resume" => a.tls_resume = true,
            "--handshakes" => a.handshakes = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--json" => a.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if let Some(ca) = tls_ca {
        let config = lynn_bench::tls::client_config(&ca, a.tls_resume);
        a.tls = Some(config.map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?);
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
        if a.addr_b.is_some() {
            return Err(format!("--idle does not go with --addr-b\n{USAGE}"));
        }
    }
    if a.addr_b.is_some() {
        ab::check_args(&a)?;
    }
    Ok(a)
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
    /// Per counted period (see [`Gate::counts`]): the replies counted in it.
    per_period: Vec<u64>,
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

/// What a connection may do next (see [`Gate`]).
enum Step {
    /// Send the requests that are due.
    Send,
    /// Send nothing new before this instant (replies still due are read meanwhile).
    Wait(Instant),
    /// The run is over.
    End,
}

/// When the connections of one server send, and which of their replies count.
trait Gate: Clone + 'static {
    /// What a connection may do at `now`.
    fn step(&self, now: Instant) -> Step;
    /// Whether a reply received at `now` counts (responses/s, latency, fairness): the
    /// index of the counted period it falls into, if any.
    fn counts(&self, now: Instant) -> Option<usize>;
    /// How many counted periods there are.
    fn periods(&self) -> usize;
    /// When the connections stop sending.
    fn end(&self) -> Instant;
}

/// A single server's run: sending until `end`, counting from `start` (after the warm-up).
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Gate for Window {
    fn step(&self, now: Instant) -> Step {
        if now >= self.end {
            Step::End
        } else {
            Step::Send
        }
    }

    fn counts(&self, now: Instant) -> Option<usize> {
        (now >= self.start && now < self.end).then_some(0)
    }

    fn periods(&self) -> usize {
        1
    }

    fn end(&self) -> Instant {
        self.end
    }
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

fn source_ip(args: &Args, addr: SocketAddr, index: usize) -> Option<IpAddr> {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && args.per_ip > 0 => {
            let n = u32::from(Ipv4Addr::new(127, 0, 0, 1)) + (index / args.per_ip) as u32;
            Some(IpAddr::V4(Ipv4Addr::from(n)))
        }
        _ => None,
    }
}

/// Connects this thread's share of connections (`indices`) to `addr`, a batch at a time.
async fn connect_all(
    args: &Args,
    addr: SocketAddr,
    indices: &[usize],
) -> (Vec<(usize, Conn)>, Vec<String>) {
    let mut streams = Vec::with_capacity(indices.len());
    let mut errors = Vec::new();
    for batch in indices.chunks(CONNECT_BATCH) {
        let mut set = tokio::task::JoinSet::new();
        for &i in batch {
            let args = args.clone();
            set.spawn_local(async move { (i, connect(&args, addr, i).await) });
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

/// One connection's request/reply loop until its gate ends it.
///
/// It spends as few instructions per reply as it can, so that a run measures the server and
/// not the loadgen: a request is a copy of the connection's frame with its sequence number
/// patched in (nothing is encoded per request), and since an echo is that frame byte for
/// byte, a reply is checked with one comparison where it lies in the read buffer. Only a
/// reply that differs goes through lynn-proto's decoder, to say what is wrong with it.
async fn drive<G: Gate, S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    conn: u32,
    slot: usize,
    args: Arc<Args>,
    gate: G,
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
        let now = Instant::now();
        match gate.step(now) {
            Step::End => break,
            Step::Send => {
                // Send `refill` new requests in one write.
                let t = since(now);
                for frame in out.chunks_exact_mut(len).take(refill) {
                    set_seq(&mut frame[HEADER_LEN..len - TAIL_LEN], next_seq);
                    next_seq += 1;
                    sent_at.push_back(t);
                }
                // (A TCP stream's flush costs nothing; a TLS stream's sends what its
                // session still holds.)
                let written = match stream.write_all(&out[..refill * len]).await {
                    Ok(()) => stream.flush().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    stats.borrow_mut().error(format!("write: {e}"));
                    return;
                }
                stats.borrow_mut().oldest_pending[slot] =
                    Some(base + Duration::from_nanos(sent_at[0]));
                refill = 0;
            }
            // Nothing due: sleep until this side may send again.
            Step::Wait(until) if sent_at.is_empty() => {
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            // Replies still due: read them, without sending new requests.
            Step::Wait(_) => {}
        }
        // Read until at least one reply arrived.
        let mut got = 0;
        while got == 0 {
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
            let (t, counted) = (since(now), gate.counts(now));
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
                if counted.is_some() {
                    st.hist.record_n(t.saturating_sub(t0), 1);
                }
                expect_seq += 1;
                got += 1;
            }
            if start == end {
                (start, end) = (0, 0);
            }
            st.total += got as u64;
            if let Some(period) = counted {
                st.measured += got as u64;
                st.per_conn[slot] += got as u64;
                st.per_period[period] += got as u64;
            }
            st.oldest_pending[slot] = sent_at.front().map(|&t| base + Duration::from_nanos(t));
        }
        refill += got;
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

/// Makes each server's gate once the run's start is known (all threads make the same).
type MakeGates<G> = fn(&Args, Instant) -> Vec<G>;

/// Connects this thread's connections to each server of `addrs`, waits for all threads,
/// runs the load, each server's connections under their gate. One result per server.
fn run_thread<G: Gate>(
    args: Arc<Args>,
    addrs: Vec<SocketAddr>,
    indices: Vec<usize>,
    barrier: Arc<Barrier>,
    start: Arc<OnceLock<Instant>>,
    make_gates: MakeGates<G>,
) -> Vec<ThreadResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let connected: Vec<_> = addrs
        .iter()
        .map(|&addr| local.block_on(&rt, connect_all(&args, addr, &indices)))
        .collect();
    if barrier.wait().is_leader() {
        let _ = start.set(Instant::now());
    }
    barrier.wait();
    let t0 = *start.get().expect("set by the leader");
    let mut sides = Vec::with_capacity(addrs.len());
    for ((streams, connect_errors), gate) in connected.into_iter().zip(make_gates(&args, t0)) {
        let connected = streams.len();
        let stats = Rc::new(RefCell::new(Stats {
            hist: Histogram::new(),
            measured: 0,
            total: 0,
            errors: 0,
            oldest_pending: vec![None; connected],
            per_conn: vec![0; connected],
            per_period: vec![0; gate.periods()],
            first_error: None,
        }));
        for (slot, (i, s)) in streams.into_iter().enumerate() {
            let (conn, gate, stats) = (i as u32, gate.clone(), stats.clone());
            match s {
                Conn::Tcp(s) => {
                    local.spawn_local(drive(s, conn, slot, args.clone(), gate, stats));
                }
                Conn::Tls(s) => {
                    local.spawn_local(drive(*s, conn, slot, args.clone(), gate, stats));
                }
            }
        }
        sides.push((stats, connected, connect_errors, gate.end()));
    }
    // Run to the end of the load plus a grace period for in-flight replies; then the
    // runtime is dropped, cancelling whatever still waits.
    let end = sides.iter().map(|s| s.3).max().unwrap_or(t0);
    let grace = end + Duration::from_millis(500);
    local.block_on(&rt, async { tokio::time::sleep_until(grace.into()).await });
    drop(local);
    drop(rt);
    sides
        .into_iter()
        .map(|(stats, connected, connect_errors, end)| {
            let stats = Rc::try_unwrap(stats)
                .ok()
                .expect("tasks dropped")
                .into_inner();
            // A connection whose oldest request is older than a second at the end is stalled.
            let stalled = stats
                .oldest_pending
                .iter()
                .filter(|t| t.is_some_and(|t| t + Duration::from_secs(1) < end))
                .count();
            ThreadResult {
                stats,
                connected,
                connect_errors,
                stalled,
            }
        })
        .collect()
}

/// The load threads, each with its results per server.
type LoadThreads = Vec<std::thread::JoinHandle<Vec<ThreadResult>>>;

/// Starts `--threads` load threads against the servers of `addrs` (the connections split
/// between them), waits until all have connected, and returns them with the run's start.
fn start_load<G: Gate>(
    args: &Arc<Args>,
    addrs: Vec<SocketAddr>,
    make_gates: MakeGates<G>,
) -> (LoadThreads, Instant) {
    // The load threads and this one, which samples CPU time.
    let barrier = Arc::new(Barrier::new(args.threads + 1));
    let start = Arc::new(OnceLock::new());
    let handles: Vec<_> = (0..args.threads)
        .map(|t| {
            let indices: Vec<usize> = (t..args.connections).step_by(args.threads).collect();
            let (args, barrier, start) = (args.clone(), barrier.clone(), start.clone());
            let addrs = addrs.clone();
            std::thread::spawn(move || run_thread(args, addrs, indices, barrier, start, make_gates))
        })
        .collect();
    if barrier.wait().is_leader() {
        let _ = start.set(Instant::now());
    }
    barrier.wait();
    (handles, *start.get().expect("set by the leader"))
}

/// One server's results, summed over the load threads.
struct Totals {
    hist: Histogram,
    /// Replies counted (inside the measurement window, or the side's counted periods).
    measured: u64,
    total: u64,
    errors: u64,
    connect_errors: usize,
    connected: usize,
    stalled: usize,
    first_error: Option<String>,
    /// Replies per connection counted, sorted once all threads are in.
    per_conn: Vec<u64>,
    /// Replies counted per counted period.
    per_period: Vec<u64>,
}

impl Totals {
    /// Joins the load threads: the totals of each server, in the order of `addrs`.
    fn join(handles: LoadThreads, servers: usize) -> Vec<Totals> {
        let mut totals: Vec<Totals> = (0..servers)
            .map(|_| Totals {
                hist: Histogram::new(),
                measured: 0,
                total: 0,
                errors: 0,
                connect_errors: 0,
                connected: 0,
                stalled: 0,
                first_error: None,
                per_conn: Vec::new(),
                per_period: Vec::new(),
            })
            .collect();
        for h in handles {
            let results = h.join().expect("load thread panicked");
            for (t, r) in totals.iter_mut().zip(results) {
                t.per_conn.extend_from_slice(&r.stats.per_conn);
                let periods = &r.stats.per_period;
                t.per_period
                    .resize(t.per_period.len().max(periods.len()), 0);
                for (sum, n) in t.per_period.iter_mut().zip(periods) {
                    *sum += n;
                }
                t.hist.merge(&r.stats.hist);
                t.measured += r.stats.measured;
                t.total += r.stats.total;
                t.errors += r.stats.errors;
                t.connected += r.connected;
                t.stalled += r.stalled;
                t.connect_errors += r.connect_errors.len();
                if t.first_error.is_none() {
                    t.first_error = r.connect_errors.into_iter().next().or(r.stats.first_error);
                }
            }
        }
        for t in &mut totals {
            t.per_conn.sort_unstable();
        }
        totals
    }

    /// Fairness: the replies of the connection at quantile `q` (0: the least served).
    fn conn_q(&self, q: f64) -> u64 {
        let i = ((self.per_conn.len() as f64 - 1.0) * q).round() as usize;
        self.per_conn.get(i).copied().unwrap_or(0)
    }

    /// Latency at quantile `q`, in µs.
    fn us(&self, q: f64) -> f64 {
        self.hist.quantile(q) as f64 / 1000.0
    }

    fn max_us(&self) -> f64 {
        self.hist.max as f64 / 1000.0
    }

    fn all_errors(&self) -> u64 {
        self.errors + self.connect_errors as u64 + self.stalled as u64
    }

    /// The first error as the inside of a JSON string.
    fn first_error_json(&self) -> String {
        self.first_error
            .as_deref()
            .unwrap_or("")
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    }
}

fn run_load(args: Args) {
    let args = Arc::new(args);
    let (handles, t0) = start_load(&args, vec![args.addr], |args, t0| {
        vec![Window {
            start: t0 + Duration::from_secs_f64(args.warmup),
            end: t0 + Duration::from_secs_f64(args.warmup + args.seconds),
        }]
    });
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
    let t = Totals::join(handles, 1).pop().expect("one server");
    let (measured, total, connected) = (t.measured, t.total, t.connected);
    let (errors, connect_errors, stalled) = (t.errors, t.connect_errors, t.stalled);
    let rps = measured as f64 / args.seconds;
    // Fairness: replies per connection in the window, the least served, median and most.
    let (conn_min, conn_p50, conn_max) = (t.conn_q(0.0), t.conn_q(0.5), t.conn_q(1.0));
    if args.json {
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
            t.us(0.5),
            t.us(0.99),
            t.us(0.999),
            t.max_us(),
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
            t.first_error_json()
        );
    } else {
        println!(
            "model {} · {} connections ({} connected) · window {} · body {} B · {} s",
            args.model, args.connections, connected, args.window, args.body, args.seconds
        );
        println!("responses/s {rps:.0} ({measured} in the window, {total} in all)");
        println!(
            "latency p50 {:.1} µs · p99 {:.1} µs · p99.9 {:.1} µs · max {:.1} µs",
            t.us(0.5),
            t.us(0.99),
            t.us(0.999),
            t.max_us()
        );
        println!("replies per connection: min {conn_min} · median {conn_p50} · max {conn_max}");
        println!("errors {errors} · connect errors {connect_errors} · stalled {stalled}");
        println!(
            "CPU over the window: loadgen {loadgen_cpu:.2} ({loadgen_user:.2} of it in user \
             space) · server {server_cpu:.2} ({server_user:.2})"
        );
        if let Some(e) = &t.first_error {
            println!("first error: {e}");
        }
    }
    if t.all_errors() > 0 {
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

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if args.handshakes.is_some() {
        handshakes::run_handshakes(args);
    } else if args.idle.is_some() {
        idle::run_idle(args);
    } else if args.addr_b.is_some() {
        ab::run_ab(args);
    } else {
        run_load(args);
    }
}
