//! [`RawServer`]: a hand-written server on std sockets that answers as a lynn_tcp server
//! would (or, for the correlation extension, out of order), so clients are checked against
//! a peer that shares no code with lynn.
//!
//! It serves [`app`](crate::app)'s methods the plain way, one message after the other per
//! connection: [`ECHO`] echoes, [`SILENT`] answers nothing, [`DELAY`] echoes its payload
//! after the delay, [`TO_ALL`] pushes its body back (method [`PUSH`]) and replies a count
//! of one. In [`Answer::Reversed`] mode it takes request frames (kind 3) in batches and
//! answers each batch last first with reply frames (kind 4).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::app::{DELAY, ECHO, PUSH, SILENT, TO_ALL};
use crate::raw::{DEFAULT_MARKS, RawFrame, frame};

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// As lynn_tcp: message frames (kind 1), answered in order, request frames ignored.
    LynnTcp,
    /// Request frames (kind 3) in batches of this many, each batch answered backwards.
    Reversed(usize),
}

/// A running raw server; dropping it stops it.
#[derive(Debug)]
pub struct RawServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl RawServer {
    /// Listens on a free loopback port.
    pub fn start(answer: Answer) -> io::Result<RawServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Acquire) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let flag = Arc::clone(&flag);
                thread::spawn(move || {
                    let _ = serve(stream, answer, &flag);
                });
            }
        });
        Ok(RawServer {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection until the peer leaves or the server stops.
fn serve(mut stream: TcpStream, answer: Answer, stop: &AtomicBool) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    stream.set_nodelay(true)?;
    let mut batch = Vec::new();
    let mut buf = Vec::new();
    loop {
        let Some(f) = read_frame(&mut stream, &mut buf, stop)? else {
            return stream.shutdown(Shutdown::Both);
        };
        match (answer, f.kind) {
            (Answer::LynnTcp, 1) => answer_message(&mut stream, f)?,
            (Answer::Reversed(n), 3) => {
                batch.push(f);
                if batch.len() == n {
                    for f in batch.drain(..).rev() {
                        // The id leads the body; the reply echoes both.
                        stream.write_all(&frame(DEFAULT_MARKS, 4, f.method, &f.body))?;
                    }
                }
            }
            // Heartbeats and, for lynn_tcp, unknown kinds are ignored.
            _ => {}
        }
    }
}

fn answer_message(stream: &mut TcpStream, f: RawFrame) -> io::Result<()> {
    let reply = |body: &[u8]| frame(DEFAULT_MARKS, 1, f.method, body);
    match f.method {
        ECHO => stream.write_all(&reply(&f.body)),
        DELAY => {
            let ms = u32::from_le_bytes(f.body[..4].try_into().expect("4-byte delay"));
            thread::sleep(Duration::from_millis(ms.into()));
            stream.write_all(&reply(&f.body[4..]))
        }
        TO_ALL => {
            stream.write_all(&frame(DEFAULT_MARKS, 1, PUSH, &f.body))?;
            stream.write_all(&reply(&1u64.to_le_bytes()))
        }
        SILENT => Ok(()),
        _ => Ok(()),
    }
}

/// The next whole frame, `None` at end of stream or once the server stops.
fn read_frame(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    stop: &AtomicBool,
) -> io::Result<Option<RawFrame>> {
    loop {
        if buf.len() >= 10 {
            let len = u64::from_le_bytes(buf[2..10].try_into().expect("8 bytes")) as usize;
            if buf.len() >= 10 + len {
                let rest: Vec<u8> = buf.drain(..10 + len).collect();
                return Ok(Some(RawFrame {
                    kind: rest[10],
                    method: u16::from_le_bytes([rest[11], rest[12]]),
                    body: rest[13..rest.len() - 2].to_vec(),
                }));
            }
        }
        if stop.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
