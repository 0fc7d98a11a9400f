//! Connects to a lynn server, sends a few requests and prints the replies.
//!
//! With `--tls-ca PEM` it connects over TLS 1.3, verifying the server against the CA
//! certificates in that PEM file, as the host of `--addr` unless `--tls-server-name NAME`
//! is given; `--tls-cert PEM --tls-key PEM` present a client certificate (mutual TLS).
//!
//! `cargo run -p lynn-tokio --example client -- --addr 127.0.0.1:9177 [--tls-ca ca.pem [--tls-server-name NAME] [--tls-cert client.pem --tls-key client.key]]`

use lynn_tokio::{Client, ClientConfig, ClientTls};

/// The value after `--name`, if given.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The TLS options, if `--tls-ca` is given.
fn tls_arg() -> Result<Option<ClientTls>, Box<dyn std::error::Error>> {
    let Some(ca) = arg("--tls-ca") else {
        if arg("--tls-cert").is_some() || arg("--tls-server-name").is_some() {
            return Err("the other --tls-* options need --tls-ca".into());
        }
        return Ok(None);
    };
    let mut tls = ClientTls::from_ca_file(ca)?;
    if let Some(name) = arg("--tls-server-name") {
        tls = tls.server_name(name)?;
    }
    match (arg("--tls-cert"), arg("--tls-key")) {
        (Some(cert), Some(key)) => tls = tls.client_cert_files(cert, key)?,
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    Ok(Some(tls))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = arg("--addr").unwrap_or_else(|| "127.0.0.1:9177".into());
    let client = match tls_arg()? {
        Some(tls) => {
            let config = ClientConfig::builder().addr(addr.clone()).build()?;
            Client::connect_tls(config, tls).await?
        }
        None => Client::connect(addr.clone()).await?,
    };
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
