//! Echo server: answers every message with its own method and body (via the fallback).
//!
//! ```text
//! cargo run -p lynn-blocking --example blocking_echo_server -- --addr 127.0.0.1:9177
//! ```

use lynn_blocking::{Context, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9177".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => {
                return Err(format!("unknown argument {other}; usage: [--addr host:port]").into());
            }
        }
    }
    let config = ServerConfig::builder().addr(addr).build()?;
    let server = Server::builder(config)
        .fallback(|ctx: Context| ctx.reply(ctx.body().clone()))
        .bind()?;
    println!("echo server listening on {}", server.local_addr());
    server.serve()?;
    Ok(())
}
