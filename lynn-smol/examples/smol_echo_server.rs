//! An echo server: every message comes back to its sender unchanged (through the fallback,
//! so any method id works).
//!
//! The echo is a synchronous handler ([`ServerBuilder::fallback_sync`]): it answers each
//! message in place, from the receive buffer into the send queue. With `--async` it is an
//! `async fn` handler instead ([`ServerBuilder::fallback`]), for comparison.
//!
//! Connections run on smol's global executor (its thread count is `SMOL_THREADS`, 1 by
//! default); `main` only accepts. With `--threads N` they run on an executor of the
//! example's own instead ([`SmolRuntime::on`]), run by `N` threads, `main` among them.
//!
//! ```text
//! cargo run -p lynn-smol --example smol_echo_server -- --addr 127.0.0.1:9177 [--async] [--threads N]
//! ```
//!
//! With `--config FILE` (e.g. `config/server.toml`) the file and `LYNN_…` variables give
//! the configuration, and `--addr`, if also given, overrides its address.
//!
//! With `--metrics-addr ADDR` it serves its metrics at `http://ADDR/metrics`. Logs go to
//! stderr, filtered by `RUST_LOG` (`info` by default).
//!
//! [`ServerBuilder::fallback_sync`]: lynn_smol::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_smol::ServerBuilder::fallback
//! [`SmolRuntime::on`]: lynn_smol::SmolRuntime::on

use std::sync::Arc;

use lynn_smol::{Context, Server, ServerConfig, SmolRuntime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let (mut addr, mut file, mut metrics_addr) = (None, None, None);
    let mut asynchronous = false;
    let mut threads = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = Some(args.next().ok_or("--addr needs a value")?),
            "--config" => file = Some(args.next().ok_or("--config needs a value")?),
            "--metrics-addr" => {
                metrics_addr = Some(args.next().ok_or("--metrics-addr needs a value")?)
            }
            "--async" => asynchronous = true,
            "--threads" => threads = Some(args.next().ok_or("--threads needs a value")?.parse()?),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: smol_echo_server [--addr HOST:PORT] \
                     [--config FILE] [--async] [--threads N] [--metrics-addr HOST:PORT]"
                )
                .into());
            }
        }
    }
    let config = match file {
        Some(file) => lynn_smol::config::ConfigLoader::new()
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
    let builder = if asynchronous {
        builder.fallback(|ctx: Context| async move { ctx.reply(ctx.body().clone()) })
    } else {
        builder.fallback_sync(|ctx| ctx.reply(ctx.body()))
    };
    let Some(threads) = threads else {
        return smol::block_on(serve(builder));
    };
    let executor = Arc::new(smol::Executor::new());
    for i in 1..threads {
        let executor = executor.clone();
        std::thread::Builder::new()
            .name(format!("echo-{i}"))
            .spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())))?;
    }
    let builder = builder.runtime(SmolRuntime::on(executor.clone()));
    smol::block_on(executor.run(serve(builder)))
}

async fn serve(builder: lynn_smol::ServerBuilder) -> Result<(), Box<dyn std::error::Error>> {
    let server = builder.bind().await?;
    println!("echo server listening on {}", server.local_addr());
    if let Some(metrics) = server.metrics_addr() {
        println!("metrics at http://{metrics}/metrics");
    }
    server.serve().await?;
    Ok(())
}
