//! The benchmark bar: the echo server a user would write by hand with plain tokio, without
//! lynn. One task per connection reads into a buffer, splits lynn_tcp frames off with a
//! hand-rolled length-delimited parse (header mark, length, tail mark checked), and answers
//! every frame of one read with one write. No limits, timers, ordering machinery or metrics.
//!
//! ```text
//! cargo run --release -p lynn-bench --bin baseline_echo -- --addr 127.0.0.1:9177
//! ```
//!
//! It runs on `#[tokio::main]`'s multi-threaded runtime, as a user's would. With
//! `--current-thread` it runs on tokio's single-threaded one instead (bench/run's
//! `baseline_ct`), to tell the scheduler's part in a result from the server's.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HEADER: [u8; 2] = 9177u16.to_le_bytes();
const TAIL: [u8; 2] = 7719u16.to_le_bytes();
const MAX_LEN: u64 = 10 * 1024 * 1024;

/// Parses every complete frame at the front of `buf` and appends its echo to `out`.
/// `Err` on a malformed frame (the connection is then dropped).
fn echo_frames(buf: &mut BytesMut, out: &mut Vec<u8>) -> Result<(), &'static str> {
    while buf.len() >= 10 {
        if buf[0..2] != HEADER {
            return Err("bad header mark");
        }
        let len = u64::from_le_bytes(buf[2..10].try_into().expect("8 bytes"));
        if !(5..=MAX_LEN).contains(&len) {
            return Err("bad length");
        }
        let total = 10 + len as usize;
        if buf.len() < total {
            break;
        }
        if buf[total - 2..total] != TAIL {
            return Err("bad tail mark");
        }
        let kind = buf[10];
        let method = u16::from_le_bytes([buf[11], buf[12]]);
        let body = &buf[13..total - 2];
        if kind == 1 {
            // The reply: same method, same body.
            out.extend_from_slice(&HEADER);
            out.extend_from_slice(&(body.len() as u64 + 5).to_le_bytes());
            out.push(1);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(&TAIL);
        }
        buf.advance(total);
    }
    Ok(())
}

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        out.clear();
        let res = echo_frames(&mut buf, &mut out);
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
        if res.is_err() {
            return;
        }
    }
}

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
                tokio::spawn(serve(stream));
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
