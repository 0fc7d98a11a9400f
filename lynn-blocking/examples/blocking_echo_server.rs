//! Echo server: answers every message with its own method and body (via the fallback).
//!
//! By default the echo is an ordinary handler: a closure that may block, run on a handler
//! thread ([`ServerBuilder::fallback`]). With `--sync` it is a synchronous handler
//! ([`ServerBuilder::fallback_sync`]), answered in place inside each connection's task on
//! the executor threads, with no hop to a handler thread: the faster choice for a handler
//! that never blocks. Either way the connections themselves take no thread of their own.
//!
//! ```text
//! cargo run -p lynn-blocking --example blocking_echo_server -- --addr 127.0.0.1:9177 [--sync]
//! ```
//!
//! With `--config FILE` (e.g. `config/server.toml`) the file and `LYNN_…` variables give
//! the configuration, and `--addr`, if also given, overrides its address.
//!
//! With `--metrics-addr ADDR` it serves its metrics at `http://ADDR/metrics`. Logs go to
//! stderr, filtered by `RUST_LOG` (`info` by default).
//!
//! [`ServerBuilder::fallback_sync`]: lynn_blocking::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_blocking::ServerBuilder::fallback

use lynn_blocking::{Context, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let (mut addr, mut file, mut metrics_addr) = (None, None, None);
    let mut sync = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = Some(args.next().ok_or("--addr needs a value")?),
            "--config" => file = Some(args.next().ok_or("--config needs a value")?),
            "--metrics-addr" => {
                metrics_addr = Some(args.next().ok_or("--metrics-addr needs a value")?)
            }
            "--sync" => sync = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: [--addr host:port] [--config FILE] [--sync] \
                     [--metrics-addr host:port]"
                )
                .into());
            }
        }
    }
    let config = match file {
        Some(file) => lynn_blocking::config::ConfigLoader::new()
            .file(file)
            .process_env()
            .set("addr", addr)
            .set("metrics_addr", metrics_addr)
            .load()?,
        None => {
            let config =
                ServerConfig::builder().addr(addr.unwrap_or_else(|| "127.0.0.1:9177".into()));
            match metrics_addr {
                Some(metrics) => config.metrics_addr(metrics),
                None => config,
            }
            .build()?
        }
    };
    let builder = Server::builder(config);
    let builder = if sync {
        builder.fallback_sync(|ctx| ctx.reply(ctx.body()))
    } else {
        builder.fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
    };
    let server = builder.bind()?;
    println!("echo server listening on {}", server.local_addr());
    if let Some(metrics) = server.metrics_addr() {
        println!("metrics at http://{metrics}/metrics");
    }
    server.serve()?;
    Ok(())
}
