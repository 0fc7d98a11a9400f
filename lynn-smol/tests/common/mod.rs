//! Shared helpers of the integration tests: a server on its own thread, deadlines, and a
//! raw-socket peer that speaks exact bytes.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use async_io::{Async, Timer};
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use lynn_proto::codec::{self, Decoder, Frame, FrameKind};
use lynn_proto::{Marks, PeerAddr, ServerConfigBuilder};
use lynn_smol::{Server, ServerConfig, ServerError, ServerHandle};

/// Every test body is bounded by this.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `f` to completion on the current thread, failing the test after [`TEST_TIMEOUT`].
pub fn run<T>(f: impl Future<Output = T>) -> T {
    async_io::block_on(within(TEST_TIMEOUT, f))
}

/// `f`, or a panic after `limit`.
pub async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    let timeout = async {
        Timer::after(limit).await;
        panic!("timed out after {limit:?}");
    };
    future::or(f, timeout).await
}

/// Polls `cond` every few milliseconds until it holds, failing after 10 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        Timer::after(Duration::from_millis(5)).await;
    }
}

/// A loopback config on an ephemeral port.
pub fn config() -> ServerConfigBuilder {
    ServerConfig::builder().addr("127.0.0.1:0")
}

/// A server running on its own thread.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Running {
    /// `host:port` for clients.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Shuts down and waits for `serve` to return.
    pub fn stop(mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread").expect("serve");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Serves `server` on a new thread.
pub fn spawn<S: Send + Sync + 'static>(server: Server<S>) -> Running {
    let addr = match server.local_addr() {
        PeerAddr::Tcp(a) => a,
        other => panic!("not TCP: {other}"),
    };
    let handle = server.handle();
    let thread = std::thread::spawn(move || async_io::block_on(server.serve()));
    Running {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// A peer on a raw socket.
pub struct Raw {
    pub stream: Async<TcpStream>,
    buf: BytesMut,
    decoder: Decoder,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: Async::<TcpStream>::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
            decoder: Decoder::new(Marks::default(), codec::DEFAULT_MAX_FRAME_LEN),
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, method: u16, body: &[u8]) {
        let frame = frame(method, body);
        self.write(&frame).await;
    }

    /// The next frame, or `None` at end of stream (or reset).
    pub async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).expect("valid frames") {
                return Some(f);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the server closes the connection, returning the frames seen before.
    pub async fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.frame().await {
            frames.push(f);
        }
        frames
    }
}

/// One encoded message frame.
pub fn frame(method: u16, body: &[u8]) -> Bytes {
    codec::encode_to_bytes(
        Marks::default(),
        FrameKind::Message,
        method,
        body,
        codec::DEFAULT_MAX_FRAME_LEN,
    )
    .expect("encode")
}
