//! Echo server: every method is answered with the same method and body.
//!
//! The echo is a synchronous handler ([`ServerBuilder::fallback_sync`]): it answers each
//! message in place, from the receive buffer into the send queue. With `--async` it is an
//! `async fn` handler instead ([`ServerBuilder::fallback`]), for comparison.
//!
//! Connections run on one worker thread per CPU this process may use
//! ([`TokioRuntime::with_workers`]); the runtime of `main` only accepts, so a single-threaded
//! one is enough. With `--multi-thread` they run on `main`'s runtime instead, a
//! multi-threaded one (the scheduler the benchmark's baseline uses, for comparison: it
//! favours the most recently woken connection, see BENCHMARKS.md).
//!
//! With `--tls-cert PEM --tls-key PEM` it serves TLS 1.3 (the certificate chain and key
//! in PEM files), and with `--tls-client-ca PEM` also requires client certificates signed
//! by that CA (mutual TLS).
//!
//! `cargo run -p lynn-tokio --example echo_server -- --addr 127.0.0.1:9177 [--async] [--multi-thread] [--tls-cert server.pem --tls-key server.key [--tls-client-ca ca.pem]]`
//!
//! With `--config FILE` (e.g. `config/server.toml`) the file and `LYNN_…` variables give
//! the configuration, and `--addr`, if also given, overrides its address.
//!
//! With `--metrics-addr ADDR` it serves its metrics at `http://ADDR/metrics`. Logs go to
//! stderr, filtered by `RUST_LOG` (`info` by default; `RUST_LOG=lynn_service=debug` shows
//! each connection's span and close reason).
//!
//! [`ServerBuilder::fallback_sync`]: lynn_tokio::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_tokio::ServerBuilder::fallback
//! [`TokioRuntime::with_workers`]: lynn_tokio::TokioRuntime::with_workers

use lynn_tokio::{Context, Server, ServerConfig, ServerTls, TokioRuntime};

fn addr_arg(default: &str) -> String {
    flag_value("--addr").unwrap_or_else(|| default.to_string())
}

/// The TLS options, if `--tls-cert` and `--tls-key` are given.
fn tls_arg() -> Result<Option<ServerTls>, Box<dyn std::error::Error>> {
    let (cert, key) = match (flag_value("--tls-cert"), flag_value("--tls-key")) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return Ok(None),
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let tls = ServerTls::from_pem_files(cert, key)?;
    Ok(Some(match flag_value("--tls-client-ca") {
        Some(ca) => tls.client_ca_file(ca)?,
        None => tls,
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let multi_thread = std::env::args().any(|a| a == "--multi-thread");
    let mut runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    runtime.enable_all().build()?.block_on(serve(multi_thread))
}

async fn serve(multi_thread: bool) -> Result<(), Box<dyn std::error::Error>> {
    let config = match flag_value("--config") {
        Some(file) => lynn_tokio::config::ConfigLoader::new()
            .file(file)
            .process_env()
            .set("addr", flag_value("--addr"))
            .set("metrics_addr", flag_value("--metrics-addr"))
            .load()?,
        None => {
            let config = ServerConfig::builder().addr(addr_arg("127.0.0.1:9177"));
            match flag_value("--metrics-addr") {
                Some(metrics) => config.metrics_addr(metrics),
                None => config,
            }
            .build()?
        }
    };
    let builder = Server::builder(config);
    let builder = if multi_thread {
        builder
    } else {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.runtime(TokioRuntime::with_workers(cpus)?)
    };
    let builder = if std::env::args().any(|a| a == "--async") {
        builder.fallback(|ctx: Context| async move {
            let body = ctx.body().clone();
            ctx.reply(body)
        })
    } else {
        builder.fallback_sync(|ctx| ctx.reply(ctx.body()))
    };
    let tls = tls_arg()?;
    let secure = if tls.is_some() { " (TLS)" } else { "" };
    let builder = match tls {
        Some(tls) => builder.tls(tls),
        None => builder,
    };
    let server = builder.bind().await?;
    println!("echo server listening on {}{secure}", server.local_addr());
    if let Some(metrics) = server.metrics_addr() {
        println!("metrics at http://{metrics}/metrics");
    }
    server.serve().await?;
    Ok(())
}

/// The value after `flag`, if the flag is given.
fn flag_value(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).cloned()
}
