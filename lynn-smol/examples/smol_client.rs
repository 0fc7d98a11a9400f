//! A client that sends a few requests to a lynn server (for example `echo_server`) and
//! prints the replies.
//!
//! ```text
//! cargo run -p lynn-smol --example smol_client -- --addr 127.0.0.1:9177
//! ```

use lynn_smol::{Client, ClientConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9177".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            other => {
                return Err(
                    format!("unknown argument {other}; usage: client [--addr HOST:PORT]").into(),
                );
            }
        }
    }
    let config = ClientConfig::builder().addr(addr).build()?;
    smol::block_on(async {
        let client = Client::connect_with(config).await?;
        for i in 1..=3u16 {
            let reply = client.request(i, format!("hello #{i}")).await?;
            println!("method {i}: {}", String::from_utf8_lossy(&reply));
        }
        client.close().await;
        Ok(())
    })
}
