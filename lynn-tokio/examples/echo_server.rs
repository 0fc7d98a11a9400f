//! Echo server: every method is answered with the same method and body.
//!
//! The echo is a synchronous handler ([`ServerBuilder::fallback_sync`]): it answers each
//! message in place, from the receive buffer into the send queue. With `--async` it is an
//! `async fn` handler instead ([`ServerBuilder::fallback`]), for comparison.
//!
//! Connections run on one worker thread per CPU this process may use
//! ([`ServerBuilder::workers`]); the runtime of `main` only accepts, so a single-threaded
//! one is enough.
//!
//! `cargo run -p lynn-tokio --example echo_server -- --addr 127.0.0.1:9177 [--async]`
//!
//! [`ServerBuilder::fallback_sync`]: lynn_tokio::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_tokio::ServerBuilder::fallback
//! [`ServerBuilder::workers`]: lynn_tokio::ServerBuilder::workers

use lynn_proto::ServerConfig;
use lynn_tokio::{Context, Server};

fn addr_arg(default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::builder()
        .addr(addr_arg("127.0.0.1:9177"))
        .build()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let builder = Server::builder(config).workers(cpus);
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
