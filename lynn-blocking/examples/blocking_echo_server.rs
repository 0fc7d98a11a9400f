//! Echo server: answers every message with its own method and body (via the fallback).
//!
//! By default the echo is a synchronous handler ([`ServerBuilder::fallback_sync`]): it runs
//! on each connection's own thread and answers every message in place, from the receive
//! buffer into the send queue. With `--pool` it is an ordinary handler run on the worker
//! pool instead ([`ServerBuilder::fallback`]), for comparison.
//!
//! ```text
//! cargo run -p lynn-blocking --example blocking_echo_server -- --addr 127.0.0.1:9177 [--pool]
//! ```
//!
//! [`ServerBuilder::fallback_sync`]: lynn_blocking::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_blocking::ServerBuilder::fallback

use lynn_blocking::{Context, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9177".to_string();
    let mut pool = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--pool" => pool = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: [--addr host:port] [--pool]"
                )
                .into());
            }
        }
    }
    let config = ServerConfig::builder().addr(addr).build()?;
    let builder = Server::builder(config);
    let builder = if pool {
        builder.fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
    } else {
        builder.fallback_sync(|ctx| ctx.reply(ctx.body()))
    };
    let server = builder.bind()?;
    println!("echo server listening on {}", server.local_addr());
    server.serve()?;
    Ok(())
}
