//! An echo server: every message comes back to its sender unchanged (through the fallback,
//! so any method id works).
//!
//! ```text
//! cargo run -p lynn-smol --example smol_echo_server -- --addr 127.0.0.1:9177
//! ```

use lynn_smol::{Context, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9177".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: echo_server [--addr HOST:PORT]"
                )
                .into());
            }
        }
    }
    let config = ServerConfig::builder().addr(addr).build()?;
    async_io::block_on(async {
        let server = Server::builder(config)
            .fallback(|ctx: Context| async move { ctx.reply(ctx.body().clone()) })
            .bind()
            .await?;
        println!("echo server listening on {}", server.local_addr());
        server.serve().await?;
        Ok(())
    })
}
