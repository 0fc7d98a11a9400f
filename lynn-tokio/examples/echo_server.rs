//! Echo server: every method is answered with the same method and body.
//!
//! Connections run on one worker thread per CPU this process may use
//! ([`ServerBuilder::workers`](lynn_tokio::ServerBuilder::workers)); the runtime of `main`
//! only accepts, so a single-threaded one is enough.
//!
//! `cargo run -p lynn-tokio --example echo_server -- --addr 127.0.0.1:9177`

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
    let server = Server::builder(config)
        .workers(cpus)
        .fallback(|ctx: Context| async move {
            let body = ctx.body().clone();
            ctx.reply(body)
        })
        .bind()
        .await?;
    println!("echo server listening on {}", server.local_addr());
    server.serve().await?;
    Ok(())
}
