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
//! [`ServerBuilder::fallback_sync`]: lynn_blocking::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_blocking::ServerBuilder::fallback

use lynn_blocking::{Context, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut file) = (None, None);
    let mut sync = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = Some(args.next().ok_or("--addr needs a value")?),
            "--config" => file = Some(args.next().ok_or("--config needs a value")?),
            "--sync" => sync = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: [--addr host:port] [--config FILE] [--sync]"
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
            .load()?,
        None => ServerConfig::builder()
            .addr(addr.unwrap_or_else(|| "127.0.0.1:9177".into()))
            .build()?,
    };
    let builder = Server::builder(config);
    let builder = if sync {
        builder.fallback_sync(|ctx| ctx.reply(ctx.body()))
    } else {
        builder.fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
    };
    let server = builder.bind()?;
    println!("echo server listening on {}", server.local_addr());
    server.serve()?;
    Ok(())
}
