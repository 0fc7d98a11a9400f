//! Sends one request to a lynn server and prints the reply.
//!
//! ```text
//! cargo run -p lynn-blocking --example blocking_client -- [--addr 127.0.0.1:9177] [--method 1] [text]
//! ```

use lynn_blocking::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut method, mut text) =
        ("127.0.0.1:9177".to_string(), 1u16, "hello".to_string());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--method" => method = args.next().ok_or("--method needs a value")?.parse()?,
            other => text = other.to_string(),
        }
    }
    let client = Client::connect(addr)?;
    let reply = client.request(method, text)?;
    println!("{}", String::from_utf8_lossy(&reply));
    client.close();
    Ok(())
}
