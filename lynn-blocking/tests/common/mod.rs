//! Helpers shared by the integration tests: servers on loopback port 0, raw-socket peers,
//! and waiting on conditions with a deadline.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use lynn_blocking::{Server, ServerConfig, ServerError, ServerHandle};
use lynn_proto::codec::{self, Decoder, Frame, FrameKind, Marks};
use lynn_proto::{ConfigError, Instant};

/// Every test gives up after this long.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A server running on its own thread; shut down and joined on drop.
pub struct Running {
    pub addr: String,
    pub handle: ServerHandle,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Running {
    pub fn start<S: Send + Sync + 'static>(server: Server<S>) -> Running {
        let addr = server.local_addr().to_string();
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.serve());
        Running {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// Shuts down and waits for `serve` to return.
    pub fn stop(mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().expect("serve panicked").expect("serve failed");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loopback config builder with port 0.
pub fn config() -> lynn_proto::ServerConfigBuilder {
    ServerConfig::builder().addr("127.0.0.1:0")
}

pub fn build(b: lynn_proto::ServerConfigBuilder) -> ServerConfig {
    b.build().unwrap_or_else(|e: ConfigError| panic!("{e}"))
}

/// Polls `cond` until true or the deadline; panics with `what` otherwise.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(2));
    }
}

/// One frame's bytes with the default marks.
pub fn frame(method: u16, body: &[u8]) -> Vec<u8> {
    codec::encode_to_bytes(Marks::default(), FrameKind::Message, method, body, u64::MAX)
        .unwrap()
        .to_vec()
}

/// A raw TCP peer that writes exact bytes and decodes what comes back.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Raw {
    pub fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Raw {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(Marks::default(), codec::DEFAULT_MAX_FRAME_LEN),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame; `None` on EOF or reset.
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    panic!("no frame within the deadline")
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads until EOF (or reset); panics if a frame arrives or the deadline passes.
    pub fn expect_closed(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    panic!("connection not closed within the deadline")
                }
                Err(_) => return,
            }
        }
    }
}

/// Threads of this process (Linux `/proc/self/status`).
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Open descriptors of this process (Linux `/proc/self/fd`).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
