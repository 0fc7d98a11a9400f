//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use lynn_proto::ServerConfigBuilder;
use lynn_tokio::{Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Upper bound of every test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `f` with the test deadline.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out")
}

/// A server config on an ephemeral loopback port.
pub fn config() -> ServerConfigBuilder {
    lynn_proto::ServerConfig::builder().addr("127.0.0.1:0")
}

/// A served server: its address, handle and serve task.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub task: JoinHandle<Result<(), lynn_proto::ServerError>>,
}

impl Running {
    /// Shuts down and waits for `serve` to return.
    pub async fn stop(self) {
        self.handle.shutdown();
        self.task.await.expect("serve task").expect("serve");
    }
}

/// Serves `server` in a task.
pub fn spawn<S: Send + Sync + 'static>(server: Server<S>) -> Running {
    let addr = server.tcp_addr().expect("tcp");
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    Running { addr, handle, task }
}

/// Polls `cond` until it holds or 10 s pass.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One frame with the default marks.
pub fn frame(method: u16, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xd9, 0x23];
    v.extend_from_slice(&(body.len() as u64 + 5).to_le_bytes());
    v.push(1);
    v.extend_from_slice(&method.to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(&[0x27, 0x1e]);
    v
}

/// The DESIGN.md sample: method 1, body "hello".
pub const HELLO: [u8; 20] = [
    0xd9, 0x23, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x27,
    0x1e,
];

/// Reads until EOF (or a reset) and returns what came; panics after 10 s.
pub async fn read_to_eof(sock: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let res = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out)).await;
    assert!(res.is_ok(), "no EOF within 10 s");
    out
}

/// Reads exactly `n` bytes.
pub async fn read_exact(sock: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    sock.read_exact(&mut buf).await.expect("read");
    buf
}

/// A raw socket that has written `bytes`.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    s
}

/// Echo handler: same method, same body.
pub async fn echo(ctx: lynn_tokio::Context) -> lynn_tokio::Reply {
    let body = ctx.body().clone();
    ctx.reply(body)
}

/// The value of an unlabelled metric in Prometheus text.
pub fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

/// The value of an unlabelled metric of a running server.
pub fn server_metric(handle: &ServerHandle, name: &str) -> i64 {
    metric(&handle.metrics().render(), name)
}
