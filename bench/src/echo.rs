//! The baselines' echo: one task per connection reads into a buffer, splits lynn_tcp frames
//! off with a hand-rolled length-delimited parse (header mark, length, tail mark checked),
//! and answers every frame of one read with one write. No limits, timers, ordering
//! machinery or metrics.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const HEADER: [u8; 2] = 9177u16.to_le_bytes();
const TAIL: [u8; 2] = 7719u16.to_le_bytes();
const MAX_LEN: u64 = 10 * 1024 * 1024;

/// Parses every complete frame at the front of `buf` and appends its echo to `out`.
/// `Err` on a malformed frame (the connection is then dropped).
pub fn echo_frames(buf: &mut BytesMut, out: &mut Vec<u8>) -> Result<(), &'static str> {
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

/// Serves one connection until it ends or sends a malformed frame: the echo of every
/// frame of a read leaves in one write (and one flush, which a TLS stream needs to send
/// what its session still holds; a TCP stream's costs nothing).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
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
        if !out.is_empty()
            && (stream.write_all(&out).await.is_err() || stream.flush().await.is_err())
        {
            return;
        }
        if res.is_err() {
            return;
        }
    }
}
