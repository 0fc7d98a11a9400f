//! `--handshakes N`: how fast a server takes new connections. `--connections` tasks (split
//! over `--threads` load threads) each repeat, until N are done between them: connect (with
//! `--tls-ca`, a TLS 1.3 handshake, full unless `--tls-resume`), one request and its
//! checked echo, close (`close_notify` under TLS, then a FIN), and wait for the server's
//! end of stream, so that every connection's whole life on the server falls inside the run.
//! Reports connections per second over the run, the latency of one whole cycle, and with
//! `--server-pid` the server's CPU time per connection, which CPU contention on a shared
//! machine moves less than the rate.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lynn_proto::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conn::connect;
use crate::histogram::Histogram;
use crate::idle::ping;
use crate::{Args, cpu_times};

/// What one load thread saw.
struct Seen {
    hist: Histogram,
    done: u64,
    errors: u64,
    first_error: Option<String>,
}

/// One connection's whole life: connect (and handshake), an echo, close, the server's end.
async fn cycle(args: &Args, index: usize) -> Result<(), String> {
    let mut conn = connect(args, args.addr, index)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    ping(&mut conn, index as u32, args.body).await?;
    conn.shutdown().await.map_err(|e| format!("close: {e}"))?;
    let mut rest = [0u8; 64];
    match conn.read(&mut rest).await {
        Ok(0) => Ok(()),
        Ok(_) => Err("bytes after the echo".into()),
        // A server that closes without close_notify (the baseline drops its stream).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        Err(e) => Err(format!("waiting for the server's close: {e}")),
    }
}

/// One load thread: `workers` tasks taking cycle numbers from `next` until `total`.
fn run_thread(args: Arc<Args>, workers: usize, next: Arc<AtomicUsize>, total: usize) -> Seen {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let seen = Rc::new(RefCell::new(Seen {
        hist: Histogram::new(),
        done: 0,
        errors: 0,
        first_error: None,
    }));
    local.block_on(&rt, async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (args, next, seen) = (args.clone(), next.clone(), seen.clone());
            set.spawn_local(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let t0 = Instant::now();
                    let res = cycle(&args, i).await;
                    let ns = t0.elapsed().as_nanos() as u64;
                    let mut s = seen.borrow_mut();
                    match res {
                        Ok(()) => {
                            s.done += 1;
                            s.hist.record_n(ns, 1);
                        }
                        Err(e) => {
                            s.errors += 1;
                            s.first_error.get_or_insert(format!("cycle {i}: {e}"));
                        }
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    drop(local);
    Rc::try_unwrap(seen).ok().expect("tasks done").into_inner()
}

/// Runs `--handshakes` cycles and reports them.
pub(crate) fn run_handshakes(args: Args) {
    let total = args.handshakes.expect("--handshakes");
    let threads = args.threads.min(args.connections).max(1);
    let args = Arc::new(args);
    let next = Arc::new(AtomicUsize::new(0));
    let own0 = cpu_times("self");
    let server0 = args.server_pid.and_then(|p| cpu_times(&p.to_string()));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            // The connections split as evenly as they go.
            let workers = args.connections / threads + usize::from(t < args.connections % threads);
            let (args, next) = (args.clone(), next.clone());
            std::thread::spawn(move || run_thread(args, workers, next, total))
        })
        .collect();
    let mut all = Seen {
        hist: Histogram::new(),
        done: 0,
        errors: 0,
        first_error: None,
    };
    for h in handles {
        let s = h.join().expect("load thread panicked");
        all.hist.merge(&s.hist);
        all.done += s.done;
        all.errors += s.errors;
        all.first_error = all.first_error.or(s.first_error);
    }
    let secs = t0.elapsed().as_secs_f64();
    let own1 = cpu_times("self");
    let server1 = args.server_pid.and_then(|p| cpu_times(&p.to_string()));
    let busy = |a: Option<crate::CpuTimes>, b: Option<crate::CpuTimes>| match (a, b) {
        (Some(a), Some(b)) => (b.user - a.user) + (b.system - a.system),
        _ => -1.0,
    };
    let (loadgen_cpu, server_cpu) = (busy(own0, own1), busy(server0, server1));
    let rate = all.done as f64 / secs;
    let per = |cpu: f64| {
        if cpu >= 0.0 && all.done > 0 {
            cpu * 1e6 / all.done as f64
        } else {
            -1.0
        }
    };
    let us = |q: f64| all.hist.quantile(q) as f64 / 1000.0;
    let tls = if args.tls.is_none() {
        "tcp"
    } else if cfg!(debug_assertions) {
        "tls (debug build)"
    } else {
        "tls"
    };
    let first = all.first_error.clone().unwrap_or_default();
    if args.json {
        println!(
            "{{\"mode\":\"handshakes\",\"transport\":\"{tls}\",\"resume\":{},\"handshakes\":{},\
             \"concurrency\":{},\"seconds\":{secs:.3},\"rate\":{rate:.1},\"p50_us\":{:.1},\
             \"p99_us\":{:.1},\"max_us\":{:.1},\"errors\":{},\"loadgen_cpu\":{:.2},\
             \"server_cpu\":{:.2},\"server_us_per_conn\":{:.1},\"loadgen_us_per_conn\":{:.1},\
             \"first_error\":\"{}\"}}",
            args.tls_resume,
            all.done,
            args.connections,
            us(0.5),
            us(0.99),
            all.hist.max as f64 / 1000.0,
            all.errors,
            loadgen_cpu / secs,
            server_cpu / secs,
            per(server_cpu),
            per(loadgen_cpu),
            first.replace('\\', "\\\\").replace('"', "\\\"")
        );
    } else {
        println!(
            "{} connections ({tls}) over {} at a time in {secs:.2} s: {rate:.0}/s",
            all.done, args.connections
        );
        println!(
            "cycle latency p50 {:.1} µs · p99 {:.1} µs · max {:.1} µs",
            us(0.5),
            us(0.99),
            all.hist.max as f64 / 1000.0
        );
        println!(
            "CPU per connection: server {:.1} µs · loadgen {:.1} µs · errors {}",
            per(server_cpu),
            per(loadgen_cpu),
            all.errors
        );
        if !first.is_empty() {
            println!("first error: {first}");
        }
    }
    if all.errors > 0 {
        std::process::exit(2);
    }
}
