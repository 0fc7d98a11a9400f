//! [`apply_socket_options`]: the core's [`SocketOptions`] on a real socket, the same way
//! for every adapter.

use lynn_proto::{SocketOptions, SocketSetting};

/// A socket that socket2 can borrow: `AsFd` on Unix, `AsSocket` on Windows.
#[cfg(unix)]
pub trait SocketHandle: std::os::fd::AsFd {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd> SocketHandle for T {}
/// A socket that socket2 can borrow: `AsFd` on Unix, `AsSocket` on Windows.
#[cfg(windows)]
pub trait SocketHandle: std::os::windows::io::AsSocket {}
#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket> SocketHandle for T {}

/// Applies `options` to a TCP socket; a setting the OS refuses is logged and skipped (a
/// connection works without it).
pub fn apply_socket_options(socket: &impl SocketHandle, options: &SocketOptions) {
    let sock = socket2::SockRef::from(socket);
    for setting in options.settings() {
        let res = match setting {
            SocketSetting::NoDelay(on) => sock.set_tcp_nodelay(on),
            SocketSetting::KeepAlive(Some(idle)) => {
                sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))
            }
            SocketSetting::KeepAlive(None) => sock.set_keepalive(false),
            SocketSetting::RecvBufferSize(n) => sock.set_recv_buffer_size(n),
            SocketSetting::SendBufferSize(n) => sock.set_send_buffer_size(n),
        };
        if let Err(e) = res {
            tracing::debug!(option = setting.name(), error = %e, "socket option not applied");
        }
    }
}

/// A TCP listener bound at `addr`, non-blocking, with `SO_REUSEADDR` (a restarted server
/// takes its port back at once) and a queue of `backlog` connections not yet accepted (the
/// kernel caps it at `net.core.somaxconn`).
pub fn listen_tcp(
    addr: std::net::SocketAddr,
    backlog: u32,
) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog_arg(backlog))?;
    Ok(socket.into())
}

/// A Unix domain socket listener bound at `path`, non-blocking, with a queue of `backlog`.
#[cfg(unix)]
pub fn listen_unix(
    path: impl AsRef<std::path::Path>,
    backlog: u32,
) -> std::io::Result<std::os::unix::net::UnixListener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog_arg(backlog))?;
    Ok(std::os::unix::net::UnixListener::from(
        std::os::fd::OwnedFd::from(socket),
    ))
}

fn backlog_arg(backlog: u32) -> i32 {
    i32::try_from(backlog).unwrap_or(i32::MAX)
}

/// The peer of an accepted Unix stream, with its path when it has one.
#[cfg(unix)]
pub fn unix_peer(addr: &std::os::unix::net::SocketAddr) -> lynn_proto::PeerAddr {
    lynn_proto::PeerAddr::Unix(addr.as_pathname().map(|p| p.display().to_string()))
}

/// The listen backlog used when none is configured: the larger of 1,024 and the system's
/// cap on it (`net.core.somaxconn` on Linux), which the kernel applies anyway.
pub fn default_backlog() -> u32 {
    let system = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    system.unwrap_or(0).max(1024)
}

/// Descriptors a server keeps for other uses than its connections (listeners, the
/// reactor, the metrics endpoint, the application's files).
const RESERVED_DESCRIPTORS: u64 = 64;

/// The most connections the process's descriptor limit leaves room for (each connection
/// is one socket), when the limit is known (`/proc/self/limits` on Linux).
pub fn descriptor_budget() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS).max(1)).ok()
}
