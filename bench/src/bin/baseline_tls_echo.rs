//! The TLS benchmark bar: `baseline_echo`'s hand-written tokio echo
//! behind tokio-rustls, as a user would write it without lynn. Each accepted connection's
//! task runs the TLS handshake (rustls with the ring provider and TLS 1.3 only, rustls's
//! defaults otherwise: the configuration lynn_service::tls makes, so the same cipher
//! suite, key exchange and session tickets), then serves [`lynn_bench::echo`]. No
//! handshake deadline, limits, timers or metrics.
//!
//! ```text
//! cargo run --release -p lynn-bench --bin baseline_tls_echo -- --addr 127.0.0.1:9177 \
//!     --tls-cert target/bench/tls/server.pem --tls-key target/bench/tls/server.key
//! ```
//!
//! It runs on `#[tokio::main]`'s multi-threaded runtime, as a user's would, or with
//! `--current-thread` on tokio's single-threaded one.

use std::path::PathBuf;

use lynn_bench::{echo, tls};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn main() -> Result<(), tls::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let addr = flag("--addr").unwrap_or_else(|| "127.0.0.1:9177".into());
    let (Some(cert), Some(key)) = (flag("--tls-cert"), flag("--tls-key")) else {
        return Err(
            "usage: baseline_tls_echo [--addr HOST:PORT] --tls-cert PEM --tls-key PEM \
                    [--current-thread]"
                .into(),
        );
    };
    let config = tls::server_config(&PathBuf::from(cert), &PathBuf::from(key))?;
    let mut runtime = if args.iter().any(|a| a == "--current-thread") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime
        .enable_all()
        .build()?
        .block_on(listen(&addr, TlsAcceptor::from(config)))?;
    Ok(())
}

async fn listen(addr: &str, acceptor: TlsAcceptor) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!(
        "baseline TLS echo server listening on {}",
        listener.local_addr()?
    );
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    if let Ok(stream) = acceptor.accept(stream).await {
                        echo::serve(stream).await;
                    }
                });
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
