//! A server whose descriptor limit is smaller than its `max_connections`: it serves what
//! the limit allows, refuses the rest with a clean close (never a hang or a crash), and
//! serves again once connections leave.
//!
//! The server is lynn-blocking's echo example in a child process started under
//! `ulimit -n 128` (the test process keeps its own limit for its clients). The shared server
//! clamps `max_connections` to the limit less 64 descriptors kept for other uses: 64.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lynn_tests::raw::RawPeer;
use lynn_tests::support::wait_for;

/// The child's soft descriptor limit, and the connections it leaves room for.
const LIMIT: usize = 128;
const ROOM: usize = LIMIT - 64;

/// Builds the example once (a no-op when the workspace build made it) and returns its path.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "lynn-blocking"])
        .args(["--example", "blocking_echo_server"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    assert!(build.status().expect("cargo runs").success());
    profile_dir.join("examples").join("blocking_echo_server")
}

/// Kills the child when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a new connection is served (an echo comes back) rather than closed at once.
fn served(addr: SocketAddr) -> Option<RawPeer> {
    let mut peer = RawPeer::connect(addr).ok()?;
    peer.set_read_timeout(Duration::from_secs(30)).unwrap();
    let reply = peer.request(1, b"served?");
    match reply {
        Ok(frame) if frame.body == b"served?" => Some(peer),
        Ok(frame) => panic!("a wrong reply: {frame:?}"),
        Err(_) => {
            // Refused: closed by the server, not left hanging.
            let mut rest = Vec::new();
            assert!(
                matches!(peer.stream().read_to_end(&mut rest), Ok(0) | Err(_)),
                "a refused connection is closed"
            );
            None
        }
    }
}

#[test]
fn past_its_descriptor_limit_the_server_refuses_cleanly_and_recovers() {
    let path = example();
    let script = format!("ulimit -n {LIMIT} && exec \"$0\" --addr 127.0.0.1:0");
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the example");
    let stdout = child.stdout.take().expect("piped stdout");
    let server = Server(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));

    let mut open: Vec<RawPeer> = (0..ROOM)
        .map(|i| served(addr).unwrap_or_else(|| panic!("connection {i} refused")))
        .collect();
    for _ in 0..16 {
        assert!(served(addr).is_none(), "past the limit: refused");
    }
    open.truncate(ROOM - 10);
    // Freed seats come back once the server has seen the closes.
    for i in 0..10 {
        let peer = wait_for(&format!("connection {i} served again"), || served(addr));
        open.push(peer);
    }
    assert!(served(addr).is_none(), "full again");
    drop(server);
}
