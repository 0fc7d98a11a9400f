//! `--idle N`: connections that stay open, for measuring a server's memory per connection.

use std::time::Duration;

use bytes::BytesMut;
use lynn_proto::Marks;
use lynn_proto::codec::{Decoder, FrameKind, OVERHEAD, encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Args, MAX_FRAME, METHOD, connect_all, fill_body};

/// Opens `--idle` connections (pinging each once with `--ping`), says `ready`, holds them.
pub(crate) fn run_idle(args: Args) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let indices: Vec<usize> = (0..args.connections).collect();
    let (mut streams, errors) = local.block_on(&rt, connect_all(&args, args.addr, &indices));
    let mut ping_errors = 0;
    if args.ping {
        let results = local.block_on(&rt, async {
            let mut set = tokio::task::JoinSet::new();
            for (i, mut s) in streams.drain(..) {
                let body = args.body;
                set.spawn_local(async move { (ping(&mut s, i as u32, body).await, s) });
            }
            let mut back = Vec::new();
            while let Some(r) = set.join_next().await {
                back.push(r.expect("ping task"));
            }
            back
        });
        for (res, s) in results {
            if res.is_err() {
                ping_errors += 1;
            }
            streams.push((0, s));
        }
    }
    println!(
        "ready connected={} connect_errors={} ping_errors={}",
        streams.len(),
        errors.len(),
        ping_errors
    );
    if let Some(e) = errors.first() {
        eprintln!("first connect error: {e}");
    }
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    drop(streams);
}

/// One request and its checked echo.
pub(crate) async fn ping<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    conn: u32,
    body_len: usize,
) -> Result<(), String> {
    let marks = Marks::default();
    let mut body = vec![0u8; body_len];
    fill_body(&mut body, conn, 0);
    let mut out = BytesMut::new();
    encode(
        marks,
        FrameKind::Message,
        METHOD,
        &body,
        MAX_FRAME,
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut inbuf = BytesMut::with_capacity(OVERHEAD + body_len);
    let mut decoder = Decoder::new(marks, MAX_FRAME);
    loop {
        if s.read_buf(&mut inbuf).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed".into());
        }
        if let Some(f) = decoder.decode(&mut inbuf).map_err(|e| e.to_string())? {
            return if f.body[..] == body[..] {
                Ok(())
            } else {
                Err("wrong echo".into())
            };
        }
    }
}
