//! Writes the TLS benchmark's certificates: a new CA (`ca.pem`) and a server certificate
//! it signed for `127.0.0.1` and `localhost` (`server.pem`, `server.key`), into DIR
//! (default `target/bench/tls`). bench/run and bench/handshakes call it before their TLS
//! servers start.
//!
//! ```text
//! cargo run --release -p lynn-bench --bin tls_certs -- target/bench/tls
//! ```

fn main() -> Result<(), lynn_bench::tls::BoxError> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/bench/tls".into());
    let files = lynn_bench::tls::write_certs(dir.as_ref())?;
    println!(
        "wrote {} {} {}",
        files.ca.display(),
        files.cert.display(),
        files.key.display()
    );
    Ok(())
}
