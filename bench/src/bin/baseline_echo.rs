//! The benchmark bar: the echo server a user would write by hand with plain tokio, without
//! lynn. One task per connection reads into a buffer, splits lynn_tcp frames off with a
//! hand-rolled length-delimited parse (header mark, length, tail mark checked), and answers
//! every frame of one read with one write ([`lynn_bench::echo`], which the TLS baseline
//! serves too). No limits, timers, ordering machinery or metrics.
//!
//! ```text
//! cargo run --release -p lynn-bench --bin baseline_echo -- --addr 127.0.0.1:9177
//! ```
//!
//! It runs on `#[tokio::main]`'s multi-threaded runtime, as a user's would. With
//! `--current-thread` it runs on tokio's single-threaded one instead (bench/run's
//! `baseline_ct`), to tell the scheduler's part in a result from the server's.

use lynn_bench::echo;
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "127.0.0.1:9177".into());
    let mut runtime = if args.iter().any(|a| a == "--current-thread") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all().build()?.block_on(listen(&addr))
}

async fn listen(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!(
        "baseline echo server listening on {}",
        listener.local_addr()?
    );
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    echo::serve(stream).await
                });
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
