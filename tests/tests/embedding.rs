//! The embedding examples of lynn-proto (`examples/epoll_server.rs`, `examples/tick_loop.rs`)
//! checked on the wire with the raw peer.
//!
//! Each test starts an example as a child process on an ephemeral loopback port
//! (`--addr 127.0.0.1:0 --stop-on-eof`), reads the bound address from its first stdout line,
//! talks to it with exact bytes, then closes its stdin: the example stops, prints a summary
//! line, and the test checks the counters. A guard kills the child if a test fails first.
//!
//! The examples are binaries of lynn-proto, which this crate cannot name with
//! `CARGO_BIN_EXE_*`, and including their source would make mio a dependency of this crate.
//! So the first test to need them runs `cargo build -p lynn-proto --example …` once (a no-op
//! when `cargo test --workspace` already built them) and runs them from the `examples/`
//! directory beside this test binary's `deps/`.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use lynn_tests::raw::{RawPeer, SAMPLE_HEARTBEAT, SAMPLE_HELLO, message};

/// How long a child may take to start, or to stop after its stdin closed. Generous: the
/// machine is shared with other builds.
const PROCESS_DEADLINE: Duration = Duration::from_secs(60);
/// Read timeout of every raw peer.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// Builds both examples once per test binary; returns the directory holding them.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/embedding-<hash> → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "-p", "lynn-proto"])
            .args(["--example", "epoll_server", "--example", "tick_loop"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the examples failed: {status}");
        profile_dir.join("examples")
    })
}

/// A running example. Dropping it kills the process.
struct Example {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    addr: SocketAddr,
}

impl Example {
    fn start(name: &str, flags: &[&str]) -> Example {
        let mut child = Command::new(examples_dir().join(name))
            .args(["--addr", "127.0.0.1:0", "--stop-on-eof"])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut example = Example {
            child,
            stdin,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let first = example
            .lines
            .recv_timeout(PROCESS_DEADLINE)
            .unwrap_or_else(|e| panic!("{name} printed no address: {e}"));
        example.addr = first.parse().expect("first line is the bound address");
        example
    }

    fn connect(&self) -> RawPeer {
        let mut peer = RawPeer::connect(self.addr).expect("connect");
        peer.stream()
            .set_read_timeout(Some(READ_DEADLINE))
            .expect("set read timeout");
        peer
    }

    /// Closes the example's stdin and returns the counters of its summary line.
    fn stop(mut self) -> HashMap<String, u64> {
        drop(self.stdin.take());
        let line = self
            .lines
            .recv_timeout(PROCESS_DEADLINE)
            .expect("a summary line after stdin closed");
        let status = self.child.wait().expect("wait for the example");
        assert!(status.success(), "example exited with {status}");
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .chunks(2)
            .map(|kv| (kv[0].to_string(), kv[1].parse().expect("a count")))
            .collect()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The spec sample comes back byte for byte; a heartbeat gets no reply.
fn sample_is_echoed_byte_for_byte(example: &Example) {
    let mut peer = example.connect();
    peer.write(SAMPLE_HELLO).unwrap();
    assert_eq!(peer.read_bytes(SAMPLE_HELLO.len()).unwrap(), SAMPLE_HELLO);
    peer.write(SAMPLE_HEARTBEAT).unwrap();
    let after = message(2, b"after the heartbeat");
    peer.write(&after).unwrap();
    // Had the heartbeat been answered, its bytes would come first.
    assert_eq!(peer.read_bytes(after.len()).unwrap(), after);
}

/// Frames written one byte per write come back whole and in order.
fn frames_split_byte_by_byte(example: &Example) {
    let mut peer = example.connect();
    let tail = message(300, b"bytewise");
    let wire = [SAMPLE_HELLO, SAMPLE_HEARTBEAT, &tail].concat();
    peer.write_bytewise(&wire).unwrap();
    let expected = [SAMPLE_HELLO, &tail].concat();
    assert_eq!(peer.read_bytes(expected.len()).unwrap(), expected);
}

/// Many frames in one write, of many sizes, come back in order.
fn coalesced_frames(example: &Example) {
    let mut peer = example.connect();
    let frames: Vec<Vec<u8>> = (0..100u16)
        .map(|i| message(i * 7, &vec![i as u8; usize::from(i) * 37 % 3000]))
        .collect();
    let wire = frames.concat();
    peer.write(&wire).unwrap();
    assert_eq!(peer.read_bytes(wire.len()).unwrap(), wire);
}

/// A bad header mark ends that connection, after answering the frame before it; another
/// connection carries on.
fn invalid_header_closes_only_that_connection(example: &Example) {
    let mut good = example.connect();
    let mut bad = example.connect();
    bad.write(&[SAMPLE_HELLO, b"\x00\x00 not a frame"].concat())
        .unwrap();
    assert_eq!(bad.read_bytes(SAMPLE_HELLO.len()).unwrap(), SAMPLE_HELLO);
    assert!(bad.closed_by_peer(), "the bad connection must close");
    good.write(SAMPLE_HELLO).unwrap();
    assert_eq!(good.read_bytes(SAMPLE_HELLO.len()).unwrap(), SAMPLE_HELLO);
}

/// Runs the four wire checks against `name` and checks the summary.
fn wire_checks(name: &str) {
    let example = Example::start(name, &[]);
    sample_is_echoed_byte_for_byte(&example);
    frames_split_byte_by_byte(&example);
    coalesced_frames(&example);
    invalid_header_closes_only_that_connection(&example);
    let summary = example.stop();
    assert_eq!(summary["accepted"], 5);
    assert_eq!(summary["rejected"], 0);
    // 2 + 2 + 100 + 1 + 1 messages, each answered once.
    assert_eq!(summary["responses"], 106);
}

#[test]
fn epoll_server_speaks_the_wire_format() {
    wire_checks("epoll_server");
}

#[test]
fn tick_loop_speaks_the_wire_format() {
    wire_checks("tick_loop");
}

/// The soft limit on open files, from /proc (no libc here); `None` where unreadable.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn epoll_server_serves_1000_concurrent_connections_in_order() {
    // The client ends live in this process, the server ends in the example's: each side
    // needs one descriptor per connection plus some room for the other tests.
    let connections = match open_files_limit() {
        Some(limit) => 1000.min(limit.saturating_sub(256) as usize),
        None => 1000,
    };
    assert!(connections >= 100, "open-file limit too low for this test");
    const THREADS: usize = 4;
    const ROUNDS: usize = 3;
    const PIPELINED: usize = 2;
    let example = Example::start("epoll_server", &[]);
    let all_open = Arc::new(Barrier::new(THREADS));
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let all_open = Arc::clone(&all_open);
            let mine = connections / THREADS + usize::from(t < connections % THREADS);
            let peers: Vec<RawPeer> = (0..mine).map(|_| example.connect()).collect();
            thread::spawn(move || {
                let mut peers = peers;
                all_open.wait(); // every connection is open before any request
                for round in 0..ROUNDS {
                    let request = |c: usize, k: usize| {
                        let method = (round * PIPELINED + k) as u16;
                        (method, format!("thread {t} conn {c} round {round} req {k}"))
                    };
                    for (c, peer) in peers.iter_mut().enumerate() {
                        let wire: Vec<u8> = (0..PIPELINED)
                            .flat_map(|k| {
                                let (method, body) = request(c, k);
                                message(method, body.as_bytes())
                            })
                            .collect();
                        peer.write(&wire).unwrap();
                    }
                    for (c, peer) in peers.iter_mut().enumerate() {
                        for k in 0..PIPELINED {
                            let (method, body) = request(c, k);
                            let reply = peer.read_frame().unwrap();
                            assert_eq!((reply.kind, reply.method), (1, method));
                            assert_eq!(reply.body, body.as_bytes(), "lost or reordered reply");
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client thread");
    }
    let elapsed = started.elapsed();
    let summary = example.stop();
    assert_eq!(summary["accepted"], connections as u64);
    assert_eq!(summary["rejected"], 0);
    assert_eq!(
        summary["responses"],
        (connections * ROUNDS * PIPELINED) as u64
    );
    assert!(
        elapsed < Duration::from_secs(300),
        "took {elapsed:?} for {connections} connections"
    );
}

/// A peer that writes without reading its replies is pushed back on: the server stops
/// reading once its send queue is full (the peer's writes then block), and resumes by
/// itself once the replies drain, with no new readiness edge for the input it left
/// unread. Every reply arrives, in order.
fn pushes_back_on_a_peer_that_does_not_read(example: &Example) {
    const FRAMES: usize = 16 * 1024;
    const BODY: usize = 4096; // 64 MiB in all: more than every buffer on the way
    let mut peer = example.connect();
    let wire: Vec<u8> = (0..FRAMES)
        .flat_map(|i| message(i as u16, &[i as u8; BODY]))
        .collect();
    // Write without reading until the socket makes no progress for a while: the server
    // has stopped reading. (If this heuristic fires early, the test only checks less.)
    let stream = peer.stream();
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut written = 0;
    while written < wire.len() {
        match io::Write::write(stream, &wire[written..]) {
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(
        written < wire.len(),
        "the server read 64 MiB without pushing back"
    );
    // Now read every reply while writing the rest.
    let mut writer = stream.try_clone().unwrap();
    writer.set_write_timeout(None).unwrap();
    let rest = wire[written..].to_vec();
    let writing = thread::spawn(move || io::Write::write_all(&mut writer, &rest));
    for i in 0..FRAMES {
        let reply = peer.read_frame().unwrap();
        assert_eq!(reply.method, i as u16, "reply {i} out of order");
        assert_eq!(reply.body, [i as u8; BODY], "reply {i} body");
    }
    writing.join().unwrap().unwrap();
}

#[test]
fn epoll_server_pushes_back_on_a_peer_that_does_not_read() {
    let example = Example::start("epoll_server", &[]);
    pushes_back_on_a_peer_that_does_not_read(&example);
    assert_eq!(example.stop()["responses"], 16 * 1024);
}

#[test]
fn tick_loop_pushes_back_on_a_peer_that_does_not_read() {
    let example = Example::start("tick_loop", &[]);
    pushes_back_on_a_peer_that_does_not_read(&example);
    assert_eq!(example.stop()["responses"], 16 * 1024);
}

#[test]
fn epoll_server_enforces_the_connection_limit_and_frees_places() {
    let example = Example::start("epoll_server", &["--max-connections", "2"]);
    let mut a = example.connect();
    let mut b = example.connect();
    for peer in [&mut a, &mut b] {
        peer.write(SAMPLE_HELLO).unwrap();
        assert_eq!(peer.read_bytes(SAMPLE_HELLO.len()).unwrap(), SAMPLE_HELLO);
    }
    let mut refused = example.connect();
    assert!(refused.closed_by_peer(), "a third connection is refused");
    // Closing one frees its place. The server handles closes before accepts in each turn,
    // so the next connection is normally admitted at once; loopback may still deliver our
    // FIN after the next SYN, so a refusal is retried (a bounded number of times).
    drop(a);
    let admitted = (1..=100).find(|_| {
        let mut c = example.connect();
        c.write(SAMPLE_HELLO).is_ok()
            && c.read_bytes(SAMPLE_HELLO.len())
                .is_ok_and(|b| b == SAMPLE_HELLO)
    });
    let attempts = admitted.expect("a freed place is given to a new connection");
    let summary = example.stop();
    assert_eq!(summary["accepted"], 3);
    assert_eq!(summary["rejected"], attempts);
}

#[test]
fn tick_loop_heartbeats_and_never_times_out_early() {
    let idle = Duration::from_millis(1500);
    let idle_ms = idle.as_millis().to_string();
    let example = Example::start(
        "tick_loop",
        &["--heartbeat-ms", "100", "--idle-timeout-ms", &idle_ms],
    );
    let connected = Instant::now();
    let mut peer = example.connect();
    // The peer stays silent: the server heartbeats it, and then evicts it, because its own
    // heartbeats are not a sign of the peer's life.
    let mut heartbeats = 0;
    let end = loop {
        match peer.read_frame() {
            Ok(frame) => {
                assert_eq!((frame.kind, frame.method, frame.body.len()), (2, 0, 0));
                heartbeats += 1;
            }
            Err(e) => break e,
        }
    };
    let evicted_after = connected.elapsed();
    assert!(
        matches!(
            end.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ),
        "expected the server to close the connection, got {end}"
    );
    assert!(heartbeats >= 1, "no heartbeat in {evicted_after:?}");
    assert!(
        evicted_after >= idle,
        "evicted after {evicted_after:?}, before the idle timeout"
    );
    let summary = example.stop();
    assert_eq!(summary["accepted"], 1);
    assert_eq!(summary["responses"], 0);
}
