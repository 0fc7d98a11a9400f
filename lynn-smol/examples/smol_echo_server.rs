//! An echo server: every message comes back to its sender unchanged (through the fallback,
//! so any method id works).
//!
//! The echo is a synchronous handler ([`ServerBuilder::fallback_sync`]): it answers each
//! message in place, from the receive buffer into the send queue. With `--async` it is an
//! `async fn` handler instead ([`ServerBuilder::fallback`]), for comparison.
//!
//! ```text
//! cargo run -p lynn-smol --example smol_echo_server -- --addr 127.0.0.1:9177 [--async]
//! ```
//!
//! [`ServerBuilder::fallback_sync`]: lynn_smol::ServerBuilder::fallback_sync
//! [`ServerBuilder::fallback`]: lynn_smol::ServerBuilder::fallback

use lynn_smol::{Context, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9177".to_string();
    let mut asynchronous = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--async" => asynchronous = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: echo_server [--addr HOST:PORT] [--async]"
                )
                .into());
            }
        }
    }
    let config = ServerConfig::builder().addr(addr).build()?;
    async_io::block_on(async {
        let builder = Server::builder(config);
        let builder = if asynchronous {
            builder.fallback(|ctx: Context| async move { ctx.reply(ctx.body().clone()) })
        } else {
            builder.fallback_sync(|ctx| ctx.reply(ctx.body()))
        };
        let server = builder.bind().await?;
        println!("echo server listening on {}", server.local_addr());
        server.serve().await?;
        Ok(())
    })
}
