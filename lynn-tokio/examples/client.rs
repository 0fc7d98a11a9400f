//! Connects to a lynn server, sends a few requests and prints the replies.
//!
//! `cargo run -p lynn-tokio --example client -- --addr 127.0.0.1:9177`

use lynn_tokio::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "127.0.0.1:9177".into());
    let client = Client::connect(addr.clone()).await?;
    println!("connected to {addr}");
    for (method, body) in [(1u16, "hello"), (2, "lynn"), (1, "bye")] {
        let reply = client.request(method, body).await?;
        println!(
            "method {method}: sent {body:?}, got {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    client.close().await;
    Ok(())
}
