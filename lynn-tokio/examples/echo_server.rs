//! Echo server: every method is answered with the same method and body.
//!
//! The echo is a synchronous handler ([`ServerBuilder::fallback_sync`]): it answers each
//! message in place, from the receive buffer into the send queue. With `--async` it is an
//! `async fn` handler instead ([`ServerBuilder::fallback`]), for comparison.
//!
//! Connections run on one worker thread per CPU this process may use
//! ([`ServerBuilder::workers`]); the runtime of `main` only accepts, so a single-threaded
//! one is enough. With `--multi-thread` they run on `main`'s runtime instead, a
//! multi-threaded one (the scheduler the benchmark's baseline uses, for comparison: it
//! favours the most recently woken connection, see BENCHMARKS.md).
//!
//! `cargo run -p lynn-tokio --example echo_server -- --addr 127.0.0.1:9177 [--async] [--multi-thread]`
//!
//! With `--config FILE` (e.g. `config/server.toml`) the file and `LYNN_…` variables give
//! the configuration, and `--addr`, if also given, overrides its address.
//!
//! [`ServerBuilder::fallback_sync`]: lynn_tokio::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_tokio::ServerBuilder::fallback
//! [`ServerBuilder::workers`]: lynn_tokio::ServerBuilder::workers

use lynn_tokio::{Context, Server, ServerConfig, TokioRuntime};

fn addr_arg(default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
            .load()?,
        None => ServerConfig::builder()
            .addr(addr_arg("127.0.0.1:9177"))
            .build()?,
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
    let server = builder.bind().await?;
    println!("echo server listening on {}", server.local_addr());
    server.serve().await?;
    Ok(())
}

/// The value after `flag`, if the flag is given.
fn flag_value(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).cloned()
}
